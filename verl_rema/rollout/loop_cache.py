"""What the ``rema`` agent loop derives once per worker instead of once per episode or per turn.

veRL builds one agent loop per episode (``AgentLoopWorker._run_agent_loop``), so whatever ``ReMAAgentLoop.__init__``
derives from the trainer config and the tokenizer (the checked ``trainer.use_v1``, the parsed ``rema.rollout`` block,
the context caps, the chat template's message tail, the stop token ids) would be redone for every episode: ~0.5 ms
of driver CPU, the same answer each time. :func:`loop_setup` derives it once per (trainer config, data config, tokenizer) *object* (the
worker holds one of each for its lifetime; the entry keeps them alive, so an id is never reused while cached).
A config mutated in place after the first episode is not re-read: veRL never does that.

Two caches keep the token streams exact because they only return what the same call returned before:

* :func:`memoize_scaffold_renders`: veRL's continuous-token builder renders each appended message as the difference
  of two chat-template renders, one of which is always its constant synthetic prefix (a synthetic system and user
  message, the same objects every call). That render is served from a memo; the other is still rendered.
* :class:`LoopSetup.openings`: a role's opening prompt (system prompt and first user message) is rendered once per
  distinct text: the ``rollout.n`` episodes of a prompt share the MTA's opening.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from verl.utils.tokenizer import continuous_token

from verl_rema.protocol import Role
from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig
from verl_rema.rollout.rows import message_tail

#: veRL's synthetic prefix messages (module constants of its builder); a render of only these is constant.
SCAFFOLD_MESSAGES: tuple[dict[str, Any], ...] = tuple(
    message
    for message in (
        getattr(continuous_token, "_SYNTHETIC_SYSTEM_MESSAGE", None),
        getattr(continuous_token, "_SYNTHETIC_USER_MESSAGE", None),
    )
    if isinstance(message, dict)
)


class BoundedMemo:
    """A small LRU mapping: a worker sees few distinct keys, tests see many; memory stays bounded either way."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class LoopSetup:
    """Everything ``ReMAAgentLoop.__init__`` needs from the trainer config and tokenizer."""

    settings: ReMARolloutConfig
    context_caps: dict[Role, int]
    tail: list[int]
    stop_token_ids: list[int]
    scaffold_renders: dict[Hashable, tuple[int, ...]] = field(default_factory=dict)
    openings: BoundedMemo = field(default_factory=lambda: BoundedMemo(512))


_SETUPS = BoundedMemo(8)


def loop_setup(
    config: DictConfig,
    data_config: Any,
    tokenizer: Any,
    chat_template_kwargs: Any,
    caps: Callable[[DictConfig, ReMARolloutConfig], dict[Role, int]],
) -> LoopSetup:
    """The setup of ``config`` and ``tokenizer``, derived on first use (errors are raised then, and not cached)."""

    def make() -> tuple[Any, ...]:
        if not OmegaConf.select(config, "trainer.use_v1", default=True):
            raise ValueError(
                "the 'rema' agent loop returns one output per role and needs veRL's v1 trainer (trainer.use_v1=true)"
            )
        settings = ReMARolloutConfig.from_config(OmegaConf.select(config, CONFIG_PATH, default=None))
        tail = message_tail(tokenizer, chat_template_kwargs)
        eos = tokenizer.eos_token_id
        # A reply ending with one of these stopped on its own; the engine is told to stop on them.
        stops = sorted(({eos} if isinstance(eos, int) else set(eos or [])) | set(tail[:1]))
        # The key objects ride along with the entry so that their ids stay theirs while it lives.
        return config, data_config, tokenizer, LoopSetup(settings, caps(config, settings), tail, stops)

    key = (id(config), id(data_config), id(tokenizer))
    entry = _SETUPS.get_or_make(key, make)
    return entry[3]


def memoize_scaffold_renders(builder: Any, memo: dict[Hashable, tuple[int, ...]]) -> None:
    """Serve ``builder``'s renders of veRL's constant synthetic prefix from ``memo`` (text builders only).

    The builder's ``_render_tokens`` is wrapped on this instance: a call whose messages are all veRL's synthetic
    prefix objects (and no tools) returns the tokens the first such call returned; every other call renders.
    """
    render = getattr(builder, "_render_tokens", None)
    if render is None or not SCAFFOLD_MESSAGES or getattr(builder, "processor", None) is not None:
        return
    index = {id(message): i for i, message in enumerate(SCAFFOLD_MESSAGES)}
    kind = type(builder)

    def _render_tokens(messages: list[dict[str, Any]], *, add_generation_prompt: bool, tools: Any = None) -> list:
        # The constants live as long as veRL's module, so no other live object can share their ids.
        if tools is None and messages and all(id(m) in index for m in messages):
            key = (kind, tuple(index[id(m)] for m in messages), add_generation_prompt)
            if key not in memo:
                memo[key] = tuple(render(messages, add_generation_prompt=add_generation_prompt, tools=None))
            return list(memo[key])
        return render(messages, add_generation_prompt=add_generation_prompt, tools=tools)

    builder._render_tokens = _render_tokens


__all__ = ["BoundedMemo", "LoopSetup", "SCAFFOLD_MESSAGES", "loop_setup", "memoize_scaffold_renders"]
