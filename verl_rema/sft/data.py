"""Turn a ``rema.sft`` block into veRL multi-turn SFT parquet files, built once into the cache.

``${rema_sft:train}`` / ``${rema_sft:val}`` (:mod:`.resolvers`) resolve to these files, so ``data.train_files``
follows ``rema.sft`` unless set by hand. The cache key hashes everything the rows depend on (the settings, the
prompt set's text, each source file's bytes), and builds go to a temporary folder renamed into place under a file
lock, as for the embedded default: torchrun's ranks and concurrent runs never see a half-written file.

Also a command line, for looking at the data or preparing it elsewhere::

    python -m verl_rema.sft.data build --out DIR [--source mamrp] [--roles meta reasoning] [--val-dialogues N]
    python -m verl_rema.sft.data convert --meta MTA.jsonl --reasoning RA.jsonl --out dialogues.jsonl.gz
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from verl_rema.build_cache import BuildFile, build_once, cache_root
from verl_rema.data.schema import BadRowError, BadRowPolicy
from verl_rema.embedded.dialogues import FLAW_SALT
from verl_rema.embedded.task import task_ranges
from verl_rema.prompts import load_prompt_set
from verl_rema.protocol import ROLES, Role
from verl_rema.sft.config import ReMASFTDataConfig
from verl_rema.sft.dialogues import TwoRoleDialogue, read_llama_factory, read_plain, write_plain
from verl_rema.sft.views import MESSAGES, ORIGIN, QUESTION, ROLE, STOP, ViewStats, sft_rows, single_agent_row

BUILD_VERSION = 1
EMBEDDED_TEACHER_VERSION = 1  # bump when the imperfect teacher's plans or the drill text change
ASSETS = Path(__file__).resolve().parent.parent / "data" / "assets"
MAMRP_ASSET = ASSETS / "mamrp_sft_dialogues.jsonl.gz"
EMBEDDED_SEED_OFFSET = 3  # the embedded RL data use seed+1 (val) and seed+2 (train)
EMBEDDED_SOURCE = "<embedded arithmetic solutions>"
DRILL_PROMPT = "Practice."

ROW_SCHEMA = pa.schema(
    [
        (MESSAGES, pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        (ROLE, pa.string()),
        (STOP, pa.list_(pa.string())),
        (QUESTION, pa.string()),
        (ORIGIN, pa.string()),
    ]
)


@dataclass(frozen=True)
class SFTDataPaths:
    """One built SFT data set: the splits and the build report (``val``: None when nothing was held out)."""

    root: Path
    train = BuildFile("train.parquet")
    report = BuildFile("report.json")

    @property
    def val(self) -> Path | None:
        path = self.root / "val.parquet"
        return path if path.exists() else None


# ---------------------------------------------------------------------------------------------------------------
# Reading and building
# ---------------------------------------------------------------------------------------------------------------


def embedded_validation_expressions(task: str = "embedded") -> set[str]:
    """The embedded RL validation set's expressions (of ``task``'s data): the embedded dialogues never use them."""
    import pandas as pd

    from verl_rema.embedded import embedded_paths

    return {extra["expression"] for extra in pd.read_parquet(embedded_paths(task=task).val)["extra_info"]}


def read_dialogues(config: ReMASFTDataConfig, policy: BadRowPolicy) -> list[TwoRoleDialogue]:
    """Every source's dialogues, in order; bad rows go to ``policy``."""
    dialogues: list[TwoRoleDialogue] = []
    for source in config.sources:
        if source == "embedded":
            from verl_rema.embedded.dialogues import make_dialogues

            seed = config.seed + EMBEDDED_SEED_OFFSET
            dialogues += make_dialogues(
                config.embedded_dialogues,
                seed,
                embedded_validation_expressions(config.embedded_task),
                wrong_plan_share=config.wrong_plan_share,
                wrong_plan_forms=config.wrong_plan_forms,
                ranges=task_ranges(config.embedded_task),
                repeats=config.embedded_repeats,
            )
        elif source == "mamrp":
            dialogues += read_plain(MAMRP_ASSET, policy)
        elif isinstance(source, dict):
            dialogues += read_llama_factory(source[Role.META.value], source[Role.REASONING.value], policy)
        else:
            dialogues += read_plain(source, policy)
    return dialogues


def build(config: ReMASFTDataConfig, out: Path) -> dict[str, Any]:
    """Write ``out/train.parquet`` (and ``val.parquet`` with ``val_dialogues``) and ``out/report.json``."""
    policy = BadRowPolicy("error" if config.on_bad_row == "error" else "skip")
    prompts = load_prompt_set(config.prompt_set)
    stats = ViewStats()
    rows: list[list[dict[str, Any]]] = []
    if not prompts.has_meta:  # a single-agent prompt set (cot): one-message solutions
        rows = single_agent_rows(config, prompts, stats)
    else:
        for dialogue in read_dialogues(config, policy):
            try:
                missing = config.missing_finish
                rows.append(sft_rows(dialogue, prompts, config.role_views, missing, stats))  # type: ignore[arg-type]
            except BadRowError as error:
                policy.handle(error)
    rows = [dialogue_rows for dialogue_rows in rows if dialogue_rows]
    if len(rows) <= config.val_dialogues:
        raise ValueError(
            f"rema.sft: {len(rows)} usable dialogues from {config.source!r}, but val_dialogues={config.val_dialogues} "
            "are to be held out (and at least one must train)"
        )
    held_out = set(random.Random(config.seed).sample(range(len(rows)), config.val_dialogues))
    splits = {
        "train": [row for i, group in enumerate(rows) if i not in held_out for row in group] + drill_rows(config),
        "val": [row for i, group in enumerate(rows) if i in held_out for row in group],
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, split_rows in splits.items():
        if split_rows:
            pq.write_table(pa.Table.from_pylist(split_rows, schema=ROW_SCHEMA), out / f"{split}.parquet")
    report = {
        **stats.as_dict(),
        "train_rows": len(splits["train"]),
        "val_rows": len(splits["val"]),
        "prompt_set": prompts.name,
        "skipped_bad_rows": [str(error) for error in policy.skipped],
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def single_agent_rows(config: ReMASFTDataConfig, prompts: Any, stats: ViewStats) -> list[list[dict[str, Any]]]:
    """A prompt set without a meta role (``cot``): the embedded problems' one-message solutions, by the same teacher
    (its wrong plans included), one RA row each: the single-agent baseline's SFT data."""
    from verl_rema.embedded.dialogues import cot_solution, has_wrong_plan
    from verl_rema.embedded.task import make_split

    if config.sources != ["embedded"]:
        raise ValueError(
            f"rema.sft.prompt_set={prompts.name!r} has no meta role: single-agent rows are built from "
            f"source=embedded only, got {config.source!r}"
        )
    seed = config.seed + EMBEDDED_SEED_OFFSET
    unique = -(-config.embedded_dialogues // config.embedded_repeats)  # as make_dialogues: each problem `repeats` times
    exclude = embedded_validation_expressions(config.embedded_task)
    problems = make_split(unique, seed=seed, exclude=exclude, ranges=task_ranges(config.embedded_task))
    rows = []
    for index in range(config.embedded_dialogues):
        problem, occurrence = problems[index % len(problems)], index // len(problems)
        wrong = has_wrong_plan(problem, config.wrong_plan_share, config.wrong_plan_forms, occurrence)
        origin = f"{EMBEDDED_SOURCE}:{index}"
        rows.append([single_agent_row(problem.question, cot_solution(problem, wrong), prompts, origin, stats)])
    return rows


def drill_rows(config: ReMASFTDataConfig) -> list[dict[str, Any]]:
    """``config.drill_rows`` rows of packed equations (training only): a one-message chat whose whole reply is
    trained, no system prompt, the validation problems excluded."""
    if not config.drill_rows:
        return []
    from verl_rema.embedded.dialogues import DRILL_SOURCE, drill_texts

    seed = config.seed + EMBEDDED_SEED_OFFSET + 1
    exclude = embedded_validation_expressions(config.embedded_task)
    texts = drill_texts(config.drill_rows, seed, exclude, ranges=task_ranges(config.embedded_task))
    return [
        {
            MESSAGES: [{"role": "user", "content": DRILL_PROMPT}, {"role": "assistant", "content": text}],
            ROLE: Role.REASONING.value,
            STOP: [],
            QUESTION: DRILL_PROMPT,
            ORIGIN: f"{DRILL_SOURCE}:{index}",
        }
        for index, text in enumerate(texts)
    ]


# ---------------------------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------------------------


def _file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


def cache_key(config: ReMASFTDataConfig) -> str:
    """A hash of everything the rows depend on."""
    sources = []
    for source in config.sources:
        if source == "embedded":
            sources.append(
                ["embedded", config.embedded_dialogues, sorted(embedded_validation_expressions(config.embedded_task))]
            )
            if config.wrong_plan_share or config.drill_rows:
                sources.append(["embedded teacher", FLAW_SALT, EMBEDDED_TEACHER_VERSION])
        elif source == "mamrp":
            sources.append(["mamrp", _file_digest(MAMRP_ASSET)])
        elif isinstance(source, dict):
            sources.append({role: _file_digest(path) for role, path in source.items()})
        else:
            sources.append(_file_digest(source))
    settings = {
        f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in ("_target_", "source")
    }
    settings["prompt_set"] = dataclasses.asdict(load_prompt_set(config.prompt_set))
    payload = json.dumps({"v": BUILD_VERSION, "sources": sources, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def sft_data(config: ReMASFTDataConfig, root: Path | None = None) -> SFTDataPaths:
    """The SFT files of ``config``, built on first use."""
    target = (root or cache_root()) / "sft" / cache_key(config)
    report = build_once(target, lambda staging: build(config, staging), {"source": str(config.source)})
    if report is not None:
        print(f"verl-rema SFT data: {target} {json.dumps(report)[:400]}", flush=True)
    return SFTDataPaths(target)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verl_rema.sft.data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="write DIR/train.parquet (and val.parquet) and DIR/report.json")
    build_cmd.add_argument("--out", required=True, type=Path)
    build_cmd.add_argument("--source", nargs="+", default=["mamrp"], help="embedded, mamrp or .jsonl paths")
    build_cmd.add_argument("--prompt-set", default="multiturn")
    build_cmd.add_argument("--roles", nargs="+", default=list(ROLES))
    build_cmd.add_argument("--missing-finish", default="append")
    build_cmd.add_argument("--on-bad-row", default="error")
    build_cmd.add_argument("--val-dialogues", type=int, default=0)
    build_cmd.add_argument("--seed", type=int, default=0)
    convert = commands.add_parser("convert", help="a LLaMA-Factory pair to the plain format (.jsonl or .jsonl.gz)")
    convert.add_argument("--meta", required=True, type=Path)
    convert.add_argument("--reasoning", required=True, type=Path)
    convert.add_argument("--out", required=True, type=Path)
    convert.add_argument("--on-bad-row", default="error")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "convert":
            policy = BadRowPolicy("error" if args.on_bad_row == "error" else "skip")
            dialogues = read_llama_factory(args.meta, args.reasoning, policy)
            print(f"{write_plain(dialogues, args.out)}: {len(dialogues)} dialogues, {len(policy.skipped)} bad rows")
            return 0
        # build's options are rema.sft settings, named as ReMASFTDataConfig's fields
        settings = {name: value for name, value in vars(args).items() if name not in ("command", "out")}
        print(json.dumps(build(ReMASFTDataConfig(**settings), args.out), indent=1))
        return 0
    except (BadRowError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["MAMRP_ASSET", "SFTDataPaths", "build", "cache_key", "read_dialogues", "sft_data"]
