"""Role prompts as configuration: named prompt sets shipped with the package, or the user's own.

A prompt set gives each role its system prompt and the template of its first user message, plus the
finish token the meta-thinking agent (MTA) uses to end the dialogue (``null`` when the protocol has none).
The two roles share one model and are told apart only by these prompts, so a set must give them different
system prompts. A set without a ``meta`` role is a single-agent baseline (e.g. ``cot``): the reasoning
agent (RA) answers the question once.

Templates use ``{question}`` (the dataset row's question) and, in the RA's first message, ``{instruction}`` (the
MTA's first message). A set may also declare ``row_fields``: further placeholders filled from the dataset row
(its column, else its ``extra_info`` entry of that name), e.g. the two responses of the LLM-as-a-judge task.

Shipped sets (``verl_rema/prompts/sets/*.yaml``): ``multiturn``, ``singleturn`` and ``cot``, with the
exact strings of the paper. ``load_prompt_set`` also accepts a path to a YAML file of the same shape, or a
mapping (e.g. an inline Hydra block); a mapping may name a ``base`` set and override only some fields::

    rema:
      rollout:
        prompt_set:
          base: multiturn
          meta: {system: "You are a planner ..."}
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from verl_rema.protocol import ROLES, Role

META, REASONING = Role.META.value, Role.REASONING.value  # the role keys of a prompt-set file

SETS_DIR = Path(__file__).resolve().parent / "sets"
PLACEHOLDERS = ("question", "instruction")
_ROLE_KEYS = ("system", "first_user")
_TOP_KEYS = (*ROLES, "finish_token", "row_fields")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RolePrompt:
    """One role's fixed text: its system prompt and the template of its first user message."""

    system: str
    first_user: str


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one protocol variant; ``meta`` is None for a single-agent (reasoning-only) set."""

    name: str
    reasoning: RolePrompt
    meta: RolePrompt | None = None
    finish_token: str | None = None
    row_fields: tuple[str, ...] = ()  # extra placeholders, filled from the dataset row

    @property
    def has_meta(self) -> bool:
        return self.meta is not None


@functools.lru_cache(maxsize=64)
def _placeholder_re(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\{(" + "|".join(map(re.escape, names)) + r")\}")


def render(template: str, row_fields: tuple[str, ...] = (), **values: str) -> str:
    """Fill ``{question}``, ``{instruction}`` and the set's ``row_fields`` in one pass.

    Not ``str.format``: templates and questions are full of LaTeX braces (``\\boxed{}``, ``\\frac{1}{2}``),
    and a value that happens to contain ``{instruction}`` must not be substituted again.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"prompt template needs {{{name}}} but no value was given: {template!r}")
        return values[name]

    return _placeholder_re((*PLACEHOLDERS, *row_fields)).sub(fill, template)


def available_prompt_sets() -> list[str]:
    """Names of the prompt sets shipped with the package."""
    return sorted(path.stem for path in SETS_DIR.glob("*.yaml"))


def load_prompt_set(spec: str | os.PathLike[str] | Mapping[str, Any] | PromptSet) -> PromptSet:
    """Resolve a prompt-set spec: a shipped name, a YAML file path, a mapping, or a PromptSet."""
    if isinstance(spec, PromptSet):
        return spec
    if isinstance(spec, Mapping) or _is_dict_config(spec):
        raw = _to_plain_dict(spec)
        base_name = raw.pop("base", None)
        if base_name is None:
            return prompt_set_from_mapping(raw, name="<inline>")
        return _override(load_prompt_set(str(base_name)), raw)
    if not isinstance(spec, str | os.PathLike):
        raise TypeError(f"prompt_set must be a name, a YAML path or a mapping, got {type(spec).__name__}: {spec!r}")
    text = os.fspath(spec)
    if text in available_prompt_sets():
        return _load_file(str(SETS_DIR / f"{text}.yaml"), text)
    path = Path(text).expanduser()
    if path.is_file():
        return _load_file(str(path.resolve()), str(path))
    raise ValueError(
        f"unknown prompt set {text!r}: not one of the shipped sets {available_prompt_sets()} and not an existing file"
    )


def prompt_set_from_mapping(raw: Mapping[str, Any], name: str) -> PromptSet:
    """Build and validate a PromptSet from ``{meta: {system, first_user}, reasoning: {...}, finish_token}``."""
    unknown = set(raw) - set(_TOP_KEYS)
    if unknown:
        raise ValueError(f"prompt set {name!r}: unknown keys {sorted(unknown)}; allowed: {list(_TOP_KEYS)}")
    if raw.get(REASONING) is None:
        raise ValueError(f"prompt set {name!r}: the {REASONING!r} role is required")
    meta = _role(raw[META], name, META) if raw.get(META) is not None else None
    reasoning = _role(raw[REASONING], name, REASONING)
    finish_token = raw.get("finish_token")
    if finish_token is not None and not (isinstance(finish_token, str) and finish_token.strip()):
        raise ValueError(f"prompt set {name!r}: finish_token must be a non-empty string or null, got {finish_token!r}")
    row_fields = tuple(raw.get("row_fields") or ())
    bad = [f for f in row_fields if not isinstance(f, str) or not _IDENTIFIER.fullmatch(f) or f in PLACEHOLDERS]
    if bad:
        raise ValueError(f"prompt set {name!r}: row_fields must be identifiers other than {PLACEHOLDERS}, got {bad}")
    prompt_set = PromptSet(
        name=name, reasoning=reasoning, meta=meta, finish_token=finish_token or None, row_fields=row_fields
    )
    _validate(prompt_set)
    return prompt_set


def _validate(prompt_set: PromptSet) -> None:
    name, meta, reasoning = prompt_set.name, prompt_set.meta, prompt_set.reasoning
    if meta is None:
        if "{question}" not in reasoning.first_user:
            raise ValueError(f"prompt set {name!r}: reasoning.first_user must contain {{question}}")
        if "{instruction}" in reasoning.first_user:
            raise ValueError(f"prompt set {name!r}: {{instruction}} needs a meta role to write it")
        if prompt_set.finish_token is not None:
            raise ValueError(f"prompt set {name!r}: a finish_token needs a meta role to write it")
        return
    if "{question}" not in meta.first_user:
        raise ValueError(f"prompt set {name!r}: meta.first_user must contain {{question}}")
    if "{question}" not in reasoning.first_user or "{instruction}" not in reasoning.first_user:
        raise ValueError(f"prompt set {name!r}: reasoning.first_user must contain {{question}} and {{instruction}}")
    if "{instruction}" in meta.first_user:
        raise ValueError(f"prompt set {name!r}: meta.first_user cannot use {{instruction}} (the MTA speaks first)")
    if meta.system == reasoning.system:
        # One model plays both roles and only the system prompt tells it which one it is.
        raise ValueError(f"prompt set {name!r}: meta and reasoning need different system prompts")


def _role(raw: Any, set_name: str, role: str) -> RolePrompt:
    if not isinstance(raw, Mapping):
        raise ValueError(f"prompt set {set_name!r}: {role} must be a mapping with keys {list(_ROLE_KEYS)}")
    unknown = set(raw) - set(_ROLE_KEYS)
    missing = [key for key in _ROLE_KEYS if key not in raw]
    if unknown or missing:
        raise ValueError(
            f"prompt set {set_name!r}: {role} has unknown keys {sorted(unknown)} / missing keys {missing}; "
            f"expected exactly {list(_ROLE_KEYS)}"
        )
    for key in _ROLE_KEYS:
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise ValueError(f"prompt set {set_name!r}: {role}.{key} must be a non-empty string, got {raw[key]!r}")
    return RolePrompt(system=raw["system"], first_user=raw["first_user"])


def _override(base: PromptSet, raw: dict[str, Any]) -> PromptSet:
    """Apply a partial mapping on top of a shipped set (role fields merge key by key)."""
    merged: dict[str, Any] = {
        "finish_token": base.finish_token,
        "row_fields": list(base.row_fields),
        REASONING: {"system": base.reasoning.system, "first_user": base.reasoning.first_user},
        META: None if base.meta is None else {"system": base.meta.system, "first_user": base.meta.first_user},
    }
    for key, value in raw.items():
        if key in ROLES and isinstance(value, Mapping) and merged.get(key) is not None:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return prompt_set_from_mapping(merged, name=f"{base.name}+overrides")


@functools.lru_cache(maxsize=32)
def _load_file(path: str, name: str) -> PromptSet:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, Mapping):
        raise ValueError(f"prompt set file {path}: expected a mapping at the top level")
    return prompt_set_from_mapping(raw, name=name)


def _is_dict_config(value: Any) -> bool:
    try:
        from omegaconf import DictConfig
    except ImportError:  # pragma: no cover - omegaconf ships with veRL
        return False
    return isinstance(value, DictConfig)


def _to_plain_dict(value: Any) -> dict[str, Any]:
    if _is_dict_config(value):
        from omegaconf import OmegaConf

        return dict(OmegaConf.to_container(value, resolve=True))
    return dict(value)


__all__ = [
    "PLACEHOLDERS",
    "SETS_DIR",
    "PromptSet",
    "RolePrompt",
    "available_prompt_sets",
    "load_prompt_set",
    "prompt_set_from_mapping",
    "render",
]
