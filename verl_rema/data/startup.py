"""The data check at the start of ``main_ppo`` / ``evaluate``: every local file of ``data.train_files`` and
``data.val_files`` through :mod:`verl_rema.data.check`, before Ray starts.

A validation row whose opening chat is over the context cap is kept (it scores 0, as ``context_overflow``) and
reported: dropping it would change what the evaluation measures; in training data it is a bad row.
``rema.on_bad_row=error`` (default) stops at the first bad row, naming file, row and field. ``skip`` lists the bad
rows, writes each affected file's good rows to ``<trainer.default_local_dir>/checked_data/`` and points the data
key at that copy (the same copy, deterministically, when a run resumes), so veRL trains on the good rows only.
A remote file (``hdfs://...``) is left to veRL.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from verl_rema.protocol import EVALUATION_MODES

if TYPE_CHECKING:  # the check imports veRL (through the rollout settings): not for `python -m verl_rema.data list`
    from verl_rema.data.check import FileCheck, OpeningLengths
    from verl_rema.rollout.config import ReMARolloutConfig

logger = logging.getLogger(__name__)
POLICY_KEY = "rema.on_bad_row"
TRAIN_KEY = "data.train_files"  # over-long openings are bad rows here; in data.val_files they are kept and listed
DATA_KEYS: tuple[str, ...] = (TRAIN_KEY, "data.val_files")


def _files(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, ListConfig | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def opening_lengths(config: DictConfig, settings: ReMARolloutConfig) -> OpeningLengths | None:
    """The length check with the run's tokenizer; None (and a warning) when the tokenizer cannot be loaded here."""
    from verl_rema.data.check import OpeningLengths
    from verl_rema.rollout.config import total_tokens

    try:
        from verl.utils import hf_tokenizer

        model = config.actor_rollout_ref.model
        tokenizer = hf_tokenizer(str(model.path), trust_remote_code=bool(model.get("trust_remote_code", False)))
    except Exception as error:  # noqa: BLE001  (veRL loads it again later and reports its own error)
        logger.warning("verl_rema data check: no tokenizer (%s); opening lengths not checked", error)
        return None
    caps = {role: settings.context_cap(role, total_tokens(config)) for role in settings.roles}
    kwargs = OmegaConf.select(config, "data.apply_chat_template_kwargs", default=None) or {}
    kwargs = OmegaConf.to_container(kwargs, resolve=True) if OmegaConf.is_config(kwargs) else dict(kwargs)
    return OpeningLengths(settings, tokenizer, caps, kwargs)


def check_data(config: DictConfig, settings: ReMARolloutConfig) -> list[FileCheck]:
    """Check the run's data files (see the module doc); may repoint ``data.*_files`` at checked copies."""
    from verl_rema.data.check import READABLE, check_file, write_kept
    from verl_rema.data.schema import BadRowError, BadRowPolicy

    mode = OmegaConf.select(config, POLICY_KEY, default="error")
    try:
        policy = BadRowPolicy(mode)
    except ValueError:
        raise ValueError(f"verl-rema config: {POLICY_KEY}={mode!r}; allowed: ['error', 'skip']") from None
    lengths = opening_lengths(config, settings)
    out_dir = Path(str(config.trainer.default_local_dir)) / "checked_data"
    results = []
    # ``python -m verl_rema.evaluate`` runs the evaluation modes: they read data.val_files only (data.train_files is
    # the recipe's, e.g. the embedded math set under a judge recipe, and is never loaded).
    evaluating = OmegaConf.select(config, "trainer.v1.trainer_mode", default=None) in EVALUATION_MODES
    for key in DATA_KEYS[1:] if evaluating else DATA_KEYS:
        value = OmegaConf.select(config, key)
        files, changed = _files(value), False
        for i, name in enumerate(files):
            if not Path(name).is_file() or Path(name).suffix.lower() not in READABLE:
                continue
            try:
                result = check_file(name, settings, policy, lengths, overlong_is_bad=key == TRAIN_KEY)
            except BadRowError as error:
                raise ValueError(
                    f"verl-rema data: {key}: {error} ({POLICY_KEY}=error; {POLICY_KEY}=skip trains on the other rows)"
                ) from None
            results.append(result)
            print(f"verl-rema data check ({key}): {result.summary()}", flush=True)
            if result.overlong:
                logger.warning(
                    "verl-rema data: %s: %d rows start over the context cap and will score 0, e.g. %s; raise "
                    "rema.rollout.max_context_tokens to evaluate them", key, len(result.overlong), result.overlong[0],
                )  # fmt: skip
            if result.bad:
                if not result.kept:
                    raise ValueError(f"verl-rema data: {key}: every row of {name} is malformed, e.g. {result.bad[0]}")
                for error in result.bad:
                    print(f"  skipped: {error}", flush=True)
                files[i] = str(write_kept(name, result, out_dir / f"{key.split('.')[1]}_{i}_{Path(name).stem}.parquet"))  # fmt: skip
                changed = True
        if changed:
            OmegaConf.update(config, key, files if isinstance(value, ListConfig | list | tuple) else files[0])
    return results


def add_check_command(commands: Any) -> None:
    """``python -m verl_rema.data check FILE... [--on-bad-row skip|error] [--out DIR] [--prompt-set NAME]
    [--tokenizer PATH [--max-context-tokens N]]``."""
    check = commands.add_parser("check", help="check RL data files (parquet/json/jsonl) as ReMA reads them")
    check.add_argument("files", nargs="+", type=Path, help="files in veRL's RL schema (data.train_files/val_files)")
    check.add_argument("--on-bad-row", choices=("skip", "error"), default="error", help="stop at the first bad row (default) or list them all")  # fmt: skip
    check.add_argument("--out", type=Path, help="skip: write each file's good rows to OUT/<name>.parquet")
    check.add_argument("--prompt-set", default="multiturn", help="the run's rema.rollout.prompt_set (judge_*: needs response_a/b)")  # fmt: skip
    check.add_argument("--tokenizer", help="check each role's opening chat against --max-context-tokens")
    check.add_argument("--max-context-tokens", type=int, default=4096, help="the run's rema.rollout.max_context_tokens")  # fmt: skip


def run_check_command(args: Any) -> int:
    """Exit status 0 when every file was read (``skip``: bad rows listed), 1 on a bad row under ``error``."""
    import sys

    from verl_rema.data.check import OpeningLengths, check_file, write_kept
    from verl_rema.data.schema import BadRowError, BadRowPolicy
    from verl_rema.rollout.config import ReMARolloutConfig

    settings = ReMARolloutConfig(prompt_set=args.prompt_set, max_context_tokens=args.max_context_tokens)
    lengths = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        lengths = OpeningLengths(settings, tokenizer, {role: args.max_context_tokens for role in settings.roles})
    policy = BadRowPolicy(args.on_bad_row)
    for path in args.files:
        try:
            result = check_file(path, settings, policy, lengths)
        except BadRowError as error:
            print(f"error: malformed row: {error}", file=sys.stderr)
            return 1
        except (OSError, ValueError) as error:  # unreadable file: say which
            print(f"error: {path}: {error}", file=sys.stderr)
            return 1
        print(result.summary())
        for error in result.bad:
            print(f"  skipped: {error}")
        if args.out and result.bad and result.kept:
            print(f"  wrote {write_kept(path, result, args.out / f'{Path(path).stem}.parquet')}")
    return 0


__all__ = ["POLICY_KEY", "add_check_command", "check_data", "opening_lengths", "run_check_command"]
