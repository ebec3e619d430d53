"""The evaluation parquet a run actually reads: chosen subsets and sample, ``data_source`` set to ``subset``.

veRL groups validation metrics by ``data_source`` and the report groups by it too (via the ``rema_eval``
trainer's record), so each row's ``data_source`` must name its benchmark. The bundled reference file labels every
row ``ReMA-math`` and keeps the benchmark in ``subset``; files built by ``python -m verl_rema.data`` already have
``data_source == subset``. The default (no files) is the bundled set as cleaned by ``verl_rema.data``'s
``eval_7bench`` builder (3,248 rows; the three rows without a gold answer are left out).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)


def bundled_frame() -> pd.DataFrame:
    from verl_rema.data.builders import build_eval_7bench
    from verl_rema.data.schema import COLUMNS

    result = build_eval_7bench(None)
    return pd.DataFrame(result.rows, columns=list(COLUMNS))


def read_frames(files: Sequence[str | Path]) -> pd.DataFrame:
    """Rows of the given parquet files, each checked for what the run and the report need."""
    frames = []
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"evaluation file {path} does not exist")
        frame = pd.read_parquet(path)
        if "reward_model" not in frame.columns or "prompt" not in frame.columns:
            raise ValueError(f"{path}: needs veRL's RL columns 'prompt' and 'reward_model'")
        if "subset" not in frame.columns:
            if "data_source" not in frame.columns:
                raise ValueError(f"{path}: neither a 'subset' nor a 'data_source' column to group results by")
            frame["subset"] = frame["data_source"]
        missing = frame["subset"].isna() | (frame["subset"].astype(str).str.strip() == "")
        if missing.any():
            raise ValueError(f"{path}: rows {list(frame.index[missing][:5])} have no subset")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def select(frame: pd.DataFrame, subsets: Sequence[str] | None, per_subset: int | None, source: str) -> pd.DataFrame:
    """Keep the named subsets (in file order) and the first ``per_subset`` rows of each."""
    if subsets:
        available = sorted(frame["subset"].astype(str).unique())
        unknown = sorted(set(subsets) - set(available))
        if unknown:
            raise ValueError(f"eval.subsets {unknown} not in {source}; available: {available}")
        frame = frame[frame["subset"].isin(list(subsets))]
    if per_subset is not None:
        frame = frame.groupby("subset", sort=False, group_keys=False).head(per_subset)
    if frame.empty:
        raise ValueError(f"no evaluation rows left in {source} after the subset selection")
    return frame.reset_index(drop=True)


def prepare_eval_data(
    files: Sequence[str | Path] | None,
    out_path: str | Path,
    subsets: Sequence[str] | None = None,
    per_subset: int | None = None,
) -> tuple[Path, dict[str, int]]:
    """Write the run's evaluation parquet to ``out_path``; return it and the number of questions per subset."""
    source = ", ".join(map(str, files)) if files else "the bundled evaluation set"
    frame = read_frames(files) if files else bundled_frame()
    frame = select(frame, subsets, per_subset, source)
    frame = frame.assign(data_source=frame["subset"].astype(str), subset=frame["subset"].astype(str))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    counts = {str(k): int(v) for k, v in frame["subset"].value_counts(sort=False).items()}
    logger.info("evaluation data: %s (%s)", out, counts)
    return out, counts
