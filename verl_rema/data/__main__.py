"""``python -m verl_rema.data``: build the ReMA datasets as veRL RL parquet files.

    python -m verl_rema.data list
    python -m verl_rema.data check FILE... [--on-bad-row skip|error] [--out DIR] [--prompt-set NAME] [--tokenizer T]
    python -m verl_rema.data build NAME --out DIR [--source PATH_OR_HUB_ID] [--on-bad-row skip|error]
                                                  [--seed N] [--per-type N]
                                                  [--split strict|loose] [--test-size N] [--games 1|2]
                                                  [--max-length N [--tokenizer T] [--overlong truncate|filter]]

``build`` writes ``DIR/NAME.parquet`` (rewardbench970: ``DIR/rewardbench970_<split>_{train,test}.parquet`` and
``_split.json``, the per-subset counts) and prints what it read, filtered and skipped. Exit status 1 on a malformed
row under ``--on-bad-row error`` (the message names file, row and field) or when the source cannot be read.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from verl_rema.data import judge
from verl_rema.data.builders import BUILDERS, BUNDLED_EVAL
from verl_rema.data.schema import BadRowError, write_parquet
from verl_rema.data.startup import add_check_command, run_check_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verl_rema.data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the datasets and their default sources")
    build = commands.add_parser("build", help="build one dataset into DIR/NAME.parquet")
    build.add_argument("name", choices=sorted(BUILDERS), metavar="NAME", help="dataset name (see `list`)")
    build.add_argument("--out", required=True, type=Path, help="output folder")
    build.add_argument(
        "--source",
        help="local .jsonl/.json/.parquet file or folder, or a Hugging Face dataset id (default: see `list`); "
        "eval_7bench also takes 'hub' (every benchmark from its hub source)",
    )
    build.add_argument(
        "--on-bad-row",
        choices=("skip", "error"),
        default="skip",
        help="malformed rows: skip them with a count (default) or stop at the first one",
    )
    build.add_argument("--seed", type=int, default=42, help="math_133, rewardbench970: sampling seed (default 42)")
    build.add_argument("--per-type", type=int, default=19, help="math_133: questions per MATH subject (default 19)")
    judge.add_cli_arguments(build)
    add_check_command(commands)  # check FILE...: training/evaluation files as ReMA reads them (data/startup.py)
    return parser


def _list() -> None:
    width = max(map(len, BUILDERS))
    for name, builder in BUILDERS.items():
        print(f"{name:<{width}}  {builder.kind:<5}  source: {builder.default_source}")
        print(f"{'':<{width}}         {builder.description}")
    print(f"\nbundled evaluation set: {BUNDLED_EVAL} ({'present' if BUNDLED_EVAL.is_file() else 'MISSING'})")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.command == "list":
        _list()
        return 0
    if args.command == "check":
        return run_check_command(args)
    kwargs: dict = {"on_bad_row": args.on_bad_row}
    if args.name == "math_133":
        kwargs.update(seed=args.seed, per_type=args.per_type)
    try:
        kwargs.update(judge.cli_kwargs(args.name, args))
        result = BUILDERS[args.name].fn(args.source, **kwargs)
        writer = getattr(result, "write", None)  # a train/test build writes its own files
        paths = writer(args.out) if writer else [write_parquet(result.rows, args.out / f"{args.name}.parquet")]
    except BadRowError as exc:
        print(f"error: malformed row: {exc}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    print("\n".join(f"wrote {path}" for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
