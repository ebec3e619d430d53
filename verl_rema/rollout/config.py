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
from typing import Any, ClassVar, Optional

from verl.base_config import BaseConfig

from verl_rema.config_block import ConfigBlock, require_int
from verl_rema.prompts import PromptSet, load_prompt_set
from verl_rema.protocol import ROLES, Role

CONFIG_PATH = "rema.rollout"
AUTO = "auto"
ROW_TOKENS_RESOLVER = "rema_row_tokens"


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass
class ReMARolloutConfig(ConfigBlock, BaseConfig):
    """The ReMA dialogue: who speaks, how long, when an episode ends.

    Per-role fields take one value for both roles or ``{meta: ..., reasoning: ...}``.
    """

    CONFIG_PATH: ClassVar[str] = CONFIG_PATH

    _target_: str = "verl_rema.rollout.config.ReMARolloutConfig"
    prompt_set: Any = _help(
        "Role prompts: a shipped set (multiturn, singleturn, cot, ...), a YAML file, or an inline mapping that may "
        "name a `base` set and override some fields. A set without a meta role is the single-agent baseline.",
        "multiturn",
    )
    max_turns: int = _help("Rounds at most (one MTA message and one RA reply each).", 30)
    max_tokens_per_message: Any = _help("New tokens per message, per role.", 512)
    max_context_tokens: Any = _help(
        "Each role's whole chat (its prompt, both roles' messages, template tokens) may hold this many tokens when "
        "its turn starts; a longer chat ends the episode (context_overflow) and a turn that starts within it gets "
        "its full message budget, as in the reference run. null: data.max_prompt_length + data.max_response_length "
        "minus the message budget. Per role.",
        4096,
    )
    strict_context_cap: bool = _help(
        "Deviation from the reference (off by default): the chat *including* the reply must fit the cap; a reply "
        "is given only the room left and, when that room cuts it, the episode ends context_overflow.",
        False,
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
        try:
            object.__setattr__(self, "_prompts", load_prompt_set(self.prompt_set))
        except (TypeError, ValueError, OSError) as error:  # name the key: the loader only knows the value
            raise ValueError(f"{CONFIG_PATH}.prompt_set: {error}") from None
        _positive_int(self.max_turns, "max_turns")
        object.__setattr__(self, "_per_message", _per_role(self.max_tokens_per_message, "max_tokens_per_message"))
        object.__setattr__(self, "_context", _per_role(self.max_context_tokens, "max_context_tokens", optional=True))
        for name in ("stop_when_truncated", "strict_context_cap"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{CONFIG_PATH}.{name} must be true/false, got {getattr(self, name)!r}")
        token = self.finish_token
        if token is not None and not isinstance(token, str):
            raise ValueError(f"{CONFIG_PATH}.finish_token must be a string, '{AUTO}' or null, got {token!r}")
        token = self._prompts.finish_token if token == AUTO else (token or None)
        if token is not None and not self._prompts.has_meta:
            raise ValueError(f"{CONFIG_PATH}.finish_token={token!r} needs a prompt set with a meta role")
        object.__setattr__(self, "_finish", token)

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

    def context_cap(self, role: Role, total_tokens: int) -> int:
        """The chat length at which ``role`` may still start a turn; ``total_tokens`` (prompt + response length of
        the engine config) bounds an uncapped role's whole row."""
        cap = self._context[role]  # type: ignore[attr-defined]
        return cap if cap is not None else max(total_tokens - self.message_tokens(role), 1)

    def row_tokens(self, total_tokens: int) -> int:
        """The longest row (one role's chat when its last turn starts, plus that turn): what the engine's
        max_model_len and the trainer's token budgets must hold."""
        return max(self.context_cap(role, total_tokens) + self.message_tokens(role) for role in self.roles)


def _positive_int(value: Any, name: str) -> int:
    require_int(CONFIG_PATH, name, value)
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


def total_tokens(config: Any) -> int:
    """data.max_prompt_length + data.max_response_length of a composed config (veRL's rollout lengths)."""
    return int(config.data.max_prompt_length) + int(config.data.max_response_length)


def _row_tokens_resolver(*, _root_: Any) -> int:
    return ReMARolloutConfig.from_config(_root_.rema.rollout).row_tokens(total_tokens(_root_))


def register_schema() -> None:
    """Make :class:`ReMARolloutConfig` the Hydra schema of ``rema.rollout`` (the entry config lists it), and let
    recipes derive engine lengths from it: ``${rema_row_tokens:}`` is the longest row the dialogue can make."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from verl_rema.separate.algorithm1 import Algorithm1Config
    from verl_rema.separate.schedule import ScheduleConfig

    store = ConfigStore.instance()
    store.store(group="rema_schema", name="rollout", node=ReMARolloutConfig)
    store.store(group="rema_schema", name="schedule", node=ScheduleConfig)
    store.store(group="rema_schema", name="algorithm1", node=Algorithm1Config)
    if not OmegaConf.has_resolver(ROW_TOKENS_RESOLVER):
        OmegaConf.register_new_resolver(ROW_TOKENS_RESOLVER, _row_tokens_resolver)


__all__ = ["CONFIG_PATH", "ROW_TOKENS_RESOLVER", "ReMARolloutConfig", "register_schema", "total_tokens"]
