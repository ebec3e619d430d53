"""``rema_eval`` trainer mode: ``rema_sync`` plus a per-sample record beside veRL's validation dump.

veRL's validation dump (``trainer.validation_data_dir/<step>.jsonl``) holds each row's decoded input and output,
ground truth, score, the reward's extra keys and the row key ``{uid}_{session}_{index}``, but not the row's data
source (our ``subset``), its number of turns, nor the ReMA agent loop's ``extra_fields`` (finish reason, rounds,
collapse metrics in ``rema_metrics``). This trainer reads those fields from TransferQueue for every validation
batch, right after veRL samples the batch and before it clears it, and writes them keyed by the same row key to
``<step>.rema.jsonl``: the report joins the two files on the row key, exactly.

It also prints one progress line per validation batch (veRL's validation has no progress bar). Training steps
are ``rema_sync``'s, unchanged, so ``trainer.v1.trainer_mode=rema_eval`` may be used for training runs as well.
``rema_separate_eval`` is the same record on the separate-models trainer (``rema.models``): both role models are
loaded from the checkpoint and each role's turns go to its own model.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import transfer_queue as tq
from tqdm import tqdm
from verl.trainer.ppo.v1 import register_trainer

from verl_rema.protocol import FINISH_REASON_FIELD, METRICS_FIELD, NUM_ROUNDS_FIELD, ROLE_FIELD, RowKey, TrainerMode
from verl_rema.separate.trainer import ReMASeparateTrainer
from verl_rema.trainer.rema_trainer import ReMATrainer, as_list

TRAINER_MODE = TrainerMode.EVAL.value
SEPARATE_TRAINER_MODE = TrainerMode.SEPARATE_EVAL.value
SIDECAR_SUFFIX = ".rema.jsonl"
FIELDS: tuple[str, ...] = ("data_source", "num_turns", "extra_fields")
EXTRA_FIELDS: tuple[str, ...] = (ROLE_FIELD, FINISH_REASON_FIELD, NUM_ROUNDS_FIELD, METRICS_FIELD)


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, as veRL's own dump writer does."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def sidecar_records(keys: Sequence[str], columns: Mapping[str, Sequence[Any] | None]) -> list[dict[str, Any]]:
    """One record per TransferQueue row: its key, data source, turns and the ReMA fields of ``extra_fields``."""
    records = []
    for i, key in enumerate(keys):
        record: dict[str, Any] = {"key": str(key)}
        for name in ("data_source", "num_turns"):
            values = columns.get(name)
            record[name] = values[i] if values is not None else None
        extra = columns.get("extra_fields")
        fields = extra[i] if extra is not None else None
        if isinstance(fields, Mapping):
            record.update({name: fields[name] for name in EXTRA_FIELDS if name in fields})
        records.append(record)
    return records


class ValidationProgress:
    """One printed line per finished validation batch: questions done, rate and time left.

    Printed as plain lines (not a redrawn bar) because it runs in a Ray actor whose output reaches the
    terminal line by line."""

    def __init__(self, total: int, printer: Callable[[str], None] = print) -> None:
        self.total, self.done, self.start, self.printer = total, 0, time.monotonic(), printer

    def update(self, questions: int) -> None:
        self.done += questions
        meter = tqdm.format_meter(
            self.done, self.total, time.monotonic() - self.start, prefix="verl-rema validation", unit="question"
        )
        self.printer(meter)


class ValidationRecords:
    """Mixed into a ReMA trainer: its validation also writes ``<step>.rema.jsonl`` and prints its progress."""

    config: Any
    global_steps: int
    replay_buffer: Any
    val_dataset: Any

    def _validate(self) -> dict[str, float]:
        records: list[dict[str, Any]] = []
        progress = ValidationProgress(len(self.val_dataset), printer=lambda line: print(line, flush=True))
        buffer = self.replay_buffer
        sample = buffer.sample
        own_attribute = "sample" in vars(buffer)  # a custom sampler may set it per instance

        def sample_and_record(*args: Any, **kwargs: Any):
            batch, aux = sample(*args, **kwargs)
            records.extend(sidecar_records(list(batch.keys), self._fetch_columns(batch)))
            progress.update(len({RowKey.parse(key).uid for key in batch.keys}))
            return batch, aux

        buffer.sample = sample_and_record
        try:
            metrics = super()._validate()  # type: ignore[misc]
        finally:
            if own_attribute:
                buffer.sample = sample
            else:
                del buffer.sample  # back to the class's method
        directory = self.config.trainer.get("validation_data_dir", None)
        if directory:
            self._write_sidecar(directory, records)
        return metrics

    @staticmethod
    def _fetch_columns(batch) -> dict[str, list | None]:
        """The fields as veRL's own ``_validate`` reads them (one get, then ``pop(...).tolist()``). A failure
        leaves the records without them and says so: the report then stops with a message naming the file."""
        try:
            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(FIELDS))
        except Exception as error:  # noqa: BLE001  (TransferQueue raises several types for a missing field)
            print(f"verl-rema eval: could not read {FIELDS} for the validation record: {error!r}", file=sys.stderr)
            return dict.fromkeys(FIELDS)
        columns: dict[str, list | None] = {}
        for name in FIELDS:
            value = data.pop(name, None)
            columns[name] = as_list(value) if value is not None else None
        return columns

    def _write_sidecar(self, directory: str, records: list[dict[str, Any]]) -> None:
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{self.global_steps}{SIDECAR_SUFFIX}")
        with open(path, "w") as file:
            for record in records:
                file.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
        print(f"verl-rema: wrote {len(records)} validation records to {path}", flush=True)


@register_trainer(TRAINER_MODE)
class ReMAEvalTrainer(ValidationRecords, ReMATrainer):
    """One shared model."""


@register_trainer(SEPARATE_TRAINER_MODE)
class ReMASeparateEvalTrainer(ValidationRecords, ReMASeparateTrainer):
    """A model per role. The checkpoint's training schedule is not compared: evaluation only reads the models."""

    def _restore_schedule(self, saved: dict[str, Any], folder: str) -> None:
        return None
