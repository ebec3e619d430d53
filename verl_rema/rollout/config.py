"""``rema.rollout``: the dialogue settings of the ``rema`` agent loop, one typed dataclass (veRL's ``BaseConfig``).

The dataclass is the one source of defaults. It is also registered as the Hydra schema of the ``rema.rollout``
node (:func:`register_schema`, called by the entry points before they compose), so at composition time an unknown
key (``rema.rollout.max_turn=3``) or a value of the wrong type (``rema.rollout.max_turns=abc``) fails with the key's
full path; the range checks of ``__post_init__`` run when the entry point instantiates the block, before Ray
starts. Recipes override fields in YAML, users on the command line, as for any veRL key::

    rema.rollout.max_turns=2 rema.rollout.max_tokens_per_message=32
    'rema.rollout.max_tokens_per_message={meta: 128, reasoning: 512}'   # per role

Defaults are the reference multi-turn run (arXiv 2503.09501 App. D.2: 30 rounds, 512 tokens a message, a 4096-token
chat per role, stop when a message is truncated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from verl.base_config import BaseConfig

from verl_rema.prompts import PromptSet, load_prompt_set
from verl_rema.protocol import ROLES, Role

CONFIG_PATH = "rema.rollout"
AUTO = "auto"


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class ReMARolloutConfig(BaseConfig):
    """The ReMA dialogue: who speaks, how long, when an episode ends.

    Per-role fields take one value for both roles or ``{meta: ..., reasoning: ...}``.
    """

    _target_: str = "verl_rema.rollout.config.ReMARolloutConfig"
    prompt_set: Any = _help(
        "Role prompts: a shipped set (multiturn, singleturn, cot, ...), a YAML file, or an inline mapping that may "
        "name a `base` set and override some fields. A set without a meta role is the single-agent baseline.",
        "multiturn",
    )
    max_turns: int = _help("Rounds at most (one MTA message and one RA reply each).", 30)
    max_tokens_per_message: Any = _help("New tokens per message, per role.", 512)
    max_context_tokens: Any = _help(
        "Each role's whole chat (its prompt, both roles' messages, template tokens) may reach this many tokens "
        "before its turn; null: no cap beyond the engine's max_model_len. Per role.",
        4096,
    )
    stop_when_truncated: bool = _help(
        "End the episode (finish reason `truncated`) when a message uses its whole token budget without stopping.",
        True,
    )
    finish_token: Optional[str] = _help(  # noqa: UP045  (OmegaConf reads Optional, not `str | None`)
        "The MTA's end-of-dialogue marker: `auto` = the prompt set's, null = no finish protocol (single-turn).",
        AUTO,
    )

    def __post_init__(self) -> None:
        # Resolved once; not dataclass fields (BaseConfig freezes fields, and these are derived).
        object.__setattr__(self, "_prompts", load_prompt_set(self.prompt_set))
        _positive_int(self.max_turns, "max_turns")
        object.__setattr__(self, "_per_message", _per_role(self.max_tokens_per_message, "max_tokens_per_message"))
        object.__setattr__(self, "_context", _per_role(self.max_context_tokens, "max_context_tokens", optional=True))
        if not isinstance(self.stop_when_truncated, bool):
            raise ValueError(f"{CONFIG_PATH}.stop_when_truncated must be true/false, got {self.stop_when_truncated!r}")
        token = self.finish_token
        if token is not None and not isinstance(token, str):
            raise ValueError(f"{CONFIG_PATH}.finish_token must be a string, '{AUTO}' or null, got {token!r}")
        token = self._prompts.finish_token if token == AUTO else (token or None)
        if token is not None and not self._prompts.has_meta:
            raise ValueError(f"{CONFIG_PATH}.finish_token={token!r} needs a prompt set with a meta role")
        object.__setattr__(self, "_finish", token)

    @classmethod
    def from_config(cls, block: Any) -> ReMARolloutConfig:
        """The block of a composed config (a ``DictConfig`` or mapping; None: all defaults), checked."""
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block) else dict(block or {})
        values.pop("_target_", None)
        unknown = sorted(set(values) - {f for f in cls.__dataclass_fields__ if f != "_target_"})
        if unknown:
            raise ValueError(f"{CONFIG_PATH}: unknown keys {[f'{CONFIG_PATH}.{k}' for k in unknown]}")
        return cls(**values)

    @property
    def prompts(self) -> PromptSet:
        return self._prompts  # type: ignore[attr-defined]

    @property
    def finish(self) -> str | None:
        """The finish token in force (``auto`` resolved), or None."""
        return self._finish  # type: ignore[attr-defined]

    @property
    def roles(self) -> tuple[Role, ...]:
        """Speaking order within a round: MTA then RA, or the RA alone (single-agent baseline)."""
        return (Role.META, Role.REASONING) if self.prompts.has_meta else (Role.REASONING,)

    def message_tokens(self, role: Role) -> int:
        return self._per_message[role]  # type: ignore[attr-defined]

    def context_cap(self, role: Role) -> int | None:
        return self._context[role]  # type: ignore[attr-defined]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{CONFIG_PATH}.{name} must be a positive integer, got {value!r}")
    return value


def _per_role(value: Any, name: str, optional: bool = False) -> dict[Role, int | None]:
    """An int (or None when ``optional``) for both roles, or ``{meta: ..., reasoning: ...}`` (a role left out keeps
    the field's default)."""
    if isinstance(value, Mapping) or hasattr(value, "items"):
        value = dict(value.items())
        unknown = set(value) - set(ROLES)
        if unknown:
            raise ValueError(f"{CONFIG_PATH}.{name}: unknown roles {sorted(unknown)}; use {list(ROLES)}")
        default = ReMARolloutConfig.__dataclass_fields__[name].default
        return {role: _one(value.get(role.value, default), f"{name}.{role.value}", optional) for role in Role}
    return dict.fromkeys(Role, _one(value, name, optional))


def _one(value: Any, name: str, optional: bool) -> int | None:
    if value is None and optional:
        return None
    return _positive_int(value, name)


def register_schema() -> None:
    """Make :class:`ReMARolloutConfig` the Hydra schema of ``rema.rollout`` (the entry config lists it)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="rema_schema", name="rollout", node=ReMARolloutConfig)


__all__ = ["CONFIG_PATH", "ReMARolloutConfig", "register_schema"]
