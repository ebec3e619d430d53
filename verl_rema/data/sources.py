"""Where a builder's input rows come from: local files or the Hugging Face hub, both read with ``datasets``.

``source`` is a local path (a ``.jsonl``/``.json``/``.parquet`` file, or a folder searched recursively for them,
e.g. the original MATH release's one-JSON-object-per-problem tree) or a hub dataset id. Every row comes out as a
:class:`Record` that knows its file and row index (0-based: parquet row, JSON-lines record, JSON array position),
so a malformed row can be reported where it is.

A local file is read with ``datasets.load_dataset`` like a hub dataset. A JSON file that ``datasets`` cannot
parse (an undecodable line, a row that is not an object, types that differ between rows) is re-read line by
line, so that its good rows are kept and each bad one is located: it comes through as a :class:`Record` whose
``data`` is the :class:`BadRowError` to report.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl_rema.data.schema import BadRowError

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
_BUILDER_OF_SUFFIX = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class Record:
    """One raw input row and where it came from (``file``: full path or hub label, used in error messages)."""

    file: str
    row: int
    data: Mapping[str, Any] | BadRowError
    label: str = ""  # short, machine-independent file name for ``extra_info.origin``

    @property
    def origin(self) -> str:
        return f"{self.label or self.file}#{self.row}"


def is_local_source(source: str | Path) -> bool:
    """A path that exists, or one that clearly names a file; everything else is taken for a hub dataset id."""
    text = str(source)
    return Path(text).exists() or text.startswith((".", "/", "~")) or text.lower().endswith(LOCAL_SUFFIXES)


def local_files(path: Path) -> list[Path]:
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOCAL_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no {'/'.join(LOCAL_SUFFIXES)} files under {path}")
    return files


def _quiet_datasets() -> Any:
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def _read_with_datasets(path: Path, cache_dir: str) -> list[Any] | None:
    """The file's rows through ``datasets``; None when it cannot parse a JSON file (then it is read line by line)."""
    datasets = _quiet_datasets()
    builder = _BUILDER_OF_SUFFIX[path.suffix.lower()]
    try:
        return list(datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache_dir))
    except Exception:  # noqa: BLE001  (arrow, json and datasets' own errors: all mean "locate the bad rows")
        if builder == "parquet":
            raise
        return None


def _json_rows_located(path: Path) -> Iterator[tuple[int, Any]]:
    """(row, object or BadRowError) of a JSON file: one per line of JSON lines, else the array's items."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield 0, BadRowError(str(path), 0, "<json>", f"invalid JSON: {exc.msg}")
            return
        yield from enumerate(data if isinstance(data, list) else [data])  # the MATH release: one object per file
        return
    for row, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            yield row, json.loads(line)
        except json.JSONDecodeError as exc:
            yield row, BadRowError(str(path), row, "<json>", f"invalid JSON: {exc.msg}")


def iter_local_records(source: str | Path) -> Iterator[Record]:
    """Rows of every ``.jsonl``/``.json``/``.parquet`` file at ``source`` (a file or a folder), in path order."""
    root = Path(source).expanduser()
    with tempfile.TemporaryDirectory(prefix="verl_rema_data_") as cache_dir:  # datasets' arrow cache, not kept
        for path in local_files(root):
            label = path.relative_to(root).as_posix() if root.is_dir() else path.name
            rows = _read_with_datasets(path, cache_dir)
            located = enumerate(rows) if rows is not None else _json_rows_located(path)
            for row, data in located:
                if not isinstance(data, Mapping | BadRowError):
                    data = BadRowError(str(path), row, "<row>", f"expected an object, got {type(data).__name__}")
                yield Record(str(path), row, data, label)


def iter_hub_records(hub_id: str, configs: Sequence[str | None], splits: Sequence[str]) -> Iterator[Record]:
    """Rows of a hub dataset, config by config and split by split (``datasets`` caches the download)."""
    datasets = _quiet_datasets()
    for config in configs:
        for split in splits:
            label = f"hf://{hub_id}" + (f"/{config}" if config else "") + f"[{split}]"
            try:
                dataset = datasets.load_dataset(hub_id, config, split=split)
            except Exception as exc:
                raise RuntimeError(
                    f"could not load {label} from the Hugging Face hub ({type(exc).__name__}: {exc}); "
                    "offline? pass --source with a local .jsonl/.json/.parquet file or folder"
                ) from exc
            for row, item in enumerate(dataset):
                yield Record(label, row, item)


def iter_records(source: str | Path, hub_id: str, configs: Sequence[str | None], splits: Sequence[str]):
    """A local source, or a hub id (the default's configs and splits; another id's default config)."""
    if is_local_source(source):
        return iter_local_records(source)
    return iter_hub_records(str(source), configs if str(source) == hub_id else (None,), splits)


__all__ = ["LOCAL_SUFFIXES", "Record", "is_local_source", "iter_hub_records", "iter_local_records", "iter_records"]
