"""``rema.sft``: which two-role dialogues the SFT warm-up trains on and how they become rows, one typed dataclass.

As for ``rema.rollout``, the dataclass is the one source of defaults and the Hydra schema of its node
(:func:`register_schema`, called when ``verl_rema_configs.sft`` is imported), so a typo or a wrong type fails at
composition with the key's full path, and a bad value when the entry point reads the block::

    rema.sft.source=mamrp 'rema.sft.roles=[reasoning]' rema.sft.val_dialogues=32
    'rema.sft.source={meta: data/mta.jsonl, reasoning: data/ra.jsonl}'      # LLaMA-Factory pair
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from verl.base_config import BaseConfig

from verl_rema.protocol import ROLES, Role
from verl_rema.sft.views import MISSING_FINISH

CONFIG_PATH = "rema.sft"
NAMED_SOURCES = ("embedded", "mamrp")


def _help(text: str, default: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class ReMASFTDataConfig(BaseConfig):
    """Where the dialogues come from and which role views become SFT rows."""

    _target_: str = "verl_rema.sft.config.ReMASFTDataConfig"
    source: Any = _help(
        "embedded (arithmetic dialogues of the embedded task), mamrp (the paper's 804 LIMO dialogues, shipped), a "
        "plain .jsonl[.gz] of {question, turns: [{role, content}]}, a LLaMA-Factory pair {meta: PATH, reasoning: "
        "PATH}, or a list of these.",
        "embedded",
    )
    prompt_set: Any = _help(
        "The rollout prompt set whose role prompts render the chats (see rema.rollout).", "multiturn"
    )
    roles: Any = _help(
        "Role views to train on: both (one model plays both roles, parameter sharing) or one role (separate models, "
        "one SFT run per role).",
        list(ROLES),
    )
    missing_finish: str = _help(
        "An MTA last message without the finish token: append it, keep it as is, or drop the dialogue.", "append"
    )
    on_bad_row: str = _help(
        "A malformed dialogue: error (stop, naming file, line, field) or skip (report, go on).", "error"
    )
    val_dialogues: int = _help("Dialogues held out for veRL's validation loss (both views go to the same side).", 0)
    embedded_dialogues: int = _help("How many arithmetic dialogues source=embedded generates.", 2048)
    embedded_task: str = _help(
        "source=embedded: the operand ranges of the problems (verl_rema/embedded/task.py TASKS): embedded (the "
        "embedded default's RL data) or toy (single digits: the learning experiment's).",
        "embedded",
    )
    embedded_repeats: int = _help(
        "source=embedded: each problem is taught this many times, each time with its own draw of the imperfect "
        "teacher's plan (a small task then teaches the teacher's error rate, not which problems it errs on).",
        1,
    )
    wrong_plan_share: float = _help(
        "source=embedded: the imperfect teacher's share of wrong plans (the MTA names the wrong second operation, "
        "the RA follows it) among the dialogues of wrong_plan_forms, fixed per problem (verl_rema/embedded/"
        "dialogues.py). 0: a perfect teacher.",
        0.0,
    )
    wrong_plan_forms: Any = _help(
        "source=embedded: the question forms (0: a+b-c, 1: a-b+c, 2: (a+b)*c) it errs on.", [0]
    )
    drill_rows: int = _help(
        "Extra training rows of packed equations of the embedded task in the RA's surface form (arithmetic practice).",
        0,
    )
    seed: int = _help("Seed of the held-out split and of the embedded dialogues.", 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_roles", _roles(self.roles))
        _sources(self.source)
        if self.missing_finish not in MISSING_FINISH:
            raise ValueError(
                f"{CONFIG_PATH}.missing_finish must be one of {list(MISSING_FINISH)}, got {self.missing_finish!r}"
            )
        if self.on_bad_row not in ("error", "skip"):
            raise ValueError(f"{CONFIG_PATH}.on_bad_row must be error or skip, got {self.on_bad_row!r}")
        counts = (
            ("val_dialogues", 0),
            ("embedded_dialogues", 1),
            ("embedded_repeats", 1),
            ("seed", 0),
            ("drill_rows", 0),
        )
        for name, least in counts:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{CONFIG_PATH}.{name} must be an integer >= {least}, got {value!r}")
        from verl_rema.embedded.task import TASKS

        if self.embedded_task not in TASKS:
            raise ValueError(f"{CONFIG_PATH}.embedded_task must be one of {sorted(TASKS)}, got {self.embedded_task!r}")
        share = self.wrong_plan_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"{CONFIG_PATH}.wrong_plan_share must be a number in [0, 1], got {share!r}")
        forms = self.wrong_plan_forms
        if not isinstance(forms, Sequence) or isinstance(forms, str) or any(f not in (0, 1, 2) for f in forms):
            raise ValueError(f"{CONFIG_PATH}.wrong_plan_forms must be a list of forms from [0, 1, 2], got {forms!r}")

    @classmethod
    def from_config(cls, block: Any) -> ReMASFTDataConfig:
        """The block of a composed config (a ``DictConfig`` or mapping; None: all defaults), checked."""
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block) else dict(block or {})
        values.pop("_target_", None)
        unknown = sorted(set(values) - {f for f in cls.__dataclass_fields__ if f != "_target_"})
        if unknown:
            raise ValueError(f"{CONFIG_PATH}: unknown keys {[f'{CONFIG_PATH}.{k}' for k in unknown]}")
        return cls(**values)

    @property
    def role_views(self) -> tuple[Role, ...]:
        """The roles whose chats become rows, in speaking order."""
        return self._roles  # type: ignore[attr-defined]

    @property
    def sources(self) -> list[str | dict[str, str]]:
        """``source`` as a list of named sources, plain files and ``{meta, reasoning}`` pairs."""
        return _sources(self.source)


def _roles(value: Any) -> tuple[Role, ...]:
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if names == ["both"]:
        names = list(ROLES)
    if not names or any(name not in ROLES for name in names) or len(set(names)) != len(names):
        raise ValueError(
            f"{CONFIG_PATH}.roles must be a non-empty list of distinct roles from {list(ROLES)}, got {value!r}"
        )
    return tuple(role for role in Role if role.value in names)


def _sources(value: Any) -> list[str | dict[str, str]]:
    items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if not items:
        raise ValueError(f"{CONFIG_PATH}.source is empty")
    sources: list[str | dict[str, str]] = []
    for item in items:
        if isinstance(item, Mapping):
            if set(item) != set(ROLES) or not all(isinstance(item[k], str) and item[k] for k in ROLES):
                raise ValueError(
                    f"{CONFIG_PATH}.source: a LLaMA-Factory pair is {{meta: PATH, reasoning: PATH}}, got {dict(item)!r}"
                )
            sources.append({role: str(item[role]) for role in ROLES})
        elif isinstance(item, str) and item.strip():
            sources.append(item)
        else:
            raise ValueError(
                f"{CONFIG_PATH}.source: expected {list(NAMED_SOURCES)}, a .jsonl path or a {{meta, reasoning}} pair, "
                f"got {item!r}"
            )
    return sources


def register_schema() -> None:
    """Make :class:`ReMASFTDataConfig` the Hydra schema of ``rema.sft`` (the SFT entry config lists it)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="rema_schema", name="sft", node=ReMASFTDataConfig)


__all__ = ["CONFIG_PATH", "NAMED_SOURCES", "ReMASFTDataConfig", "register_schema"]
