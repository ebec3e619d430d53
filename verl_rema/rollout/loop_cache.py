"""What the ``rema`` agent loop derives once per worker instead of once per episode or per turn.

veRL builds one agent loop per episode (``AgentLoopWorker._run_agent_loop``), so whatever ``ReMAAgentLoop.__init__``
derives from the trainer config and the tokenizer (the checked ``trainer.use_v1``, the parsed ``rema.rollout`` block,
the context caps, the chat template's message tail, the stop token ids) would be redone for every episode: ~0.5 ms
of driver CPU, the same answer each time. :func:`loop_setup` derives it once per (trainer config, data config, tokenizer) *object* (the
worker holds one of each for its lifetime; the entry keeps them alive, so an id is never reused while cached).
A config mutated in place after the first episode is not re-read: veRL never does that.

Likewise :func:`init_agent_loop` runs veRL's ``AgentLoopBase.__init__`` (OmegaConf look-ups, a new continuous-token
builder: ~0.1 ms) once per worker and gives later episodes a copy of the attributes it set, the builder shared (it
holds no per-episode state).

The render caches keep the token streams exact because they return what the uncached call returns:

* :func:`memoize_scaffold_renders`: veRL's continuous-token builder renders each appended message as the difference
  of two chat-template renders, one of which is always its constant synthetic prefix (a synthetic system and user
  message, the same objects every call). That render is served from a memo; the other goes through
  :class:`~verl_rema.rollout.fast_render.TemplateEncoder` where the tokenizer allows it (only the new text is
  tokenised), else through veRL's render.
* :class:`LoopSetup.openings`: a role's opening prompt (system prompt and first user message) is rendered once per
  distinct text: the ``rollout.n`` episodes of a prompt share the MTA's opening.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from verl.experimental.agent_loop.agent_loop import DictConfigWrap
from verl.utils.ray_utils import get_event_loop
from verl.utils.tokenizer import continuous_token

from verl_rema.protocol import Role
from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig
from verl_rema.rollout.fast_render import TemplateEncoder, template_encoder
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
    encoder: TemplateEncoder | None = None
    scaffold_renders: dict[Hashable, tuple[int, ...]] = field(default_factory=dict)
    openings: BoundedMemo = field(default_factory=lambda: BoundedMemo(512))


_SETUPS = BoundedMemo(8)
_WRAPPED = "_rema_render_cache"  # marks a builder whose renders go through the caches
_PER_EPISODE = "server_manager"
#: AgentLoopBase's keywords, as veRL's worker passes them.
_BASE_ARGUMENTS = frozenset(
    "trainer_config server_manager tokenizer processor dataset_cls data_config hf_model_type tools".split()
)
_BASES = BoundedMemo(8)


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
        probes = [list(SCAFFOLD_MESSAGES), [*SCAFFOLD_MESSAGES, {"role": "user", "content": " 2 + 3?\n"}]]
        encoder = template_encoder(tokenizer, dict(chat_template_kwargs or {}), probes)
        # The key objects ride along with the entry so that their ids stay theirs while it lives.
        return config, data_config, tokenizer, LoopSetup(settings, caps(config, settings), tail, stops, encoder)

    key = (id(config), id(data_config), id(tokenizer))
    entry = _SETUPS.get_or_make(key, make)
    return entry[3]


def memoize_scaffold_renders(
    builder: Any, memo: dict[Hashable, tuple[int, ...]], encoder: TemplateEncoder | None = None
) -> None:
    """Serve ``builder``'s renders of veRL's constant synthetic prefix from ``memo``, and the others through
    ``encoder`` when given (text builders only; a builder is wrapped once, later calls leave it as it is).

    The builder's ``_render_tokens`` is wrapped on this instance: a call whose messages are all veRL's synthetic
    prefix objects (and no tools) returns the tokens the first such call returned; every other call renders.
    """
    render = getattr(builder, "_render_tokens", None)
    if render is None or getattr(builder, "processor", None) is not None or hasattr(builder, _WRAPPED):
        return
    index = {id(message): i for i, message in enumerate(SCAFFOLD_MESSAGES)}
    kind = type(builder)
    kwargs = builder.chat_template_kwargs

    def fresh(messages: list[dict[str, Any]], add_generation_prompt: bool) -> list[int]:
        if encoder is not None:
            ids = encoder.render(messages, add_generation_prompt=add_generation_prompt, chat_template_kwargs=kwargs)
            if ids is not None:
                return ids
        return render(messages, add_generation_prompt=add_generation_prompt, tools=None)

    def _render_tokens(messages: list[dict[str, Any]], *, add_generation_prompt: bool, tools: Any = None) -> list:
        if tools is not None:
            return render(messages, add_generation_prompt=add_generation_prompt, tools=tools)
        # The constants live as long as veRL's module, so no other live object can share their ids.
        if index and messages and all(id(m) in index for m in messages):
            key = (kind, tuple(index[id(m)] for m in messages), add_generation_prompt)
            if key not in memo:
                memo[key] = tuple(fresh(messages, add_generation_prompt))
            return list(memo[key])
        return fresh(messages, add_generation_prompt)

    builder._render_tokens = _render_tokens
    setattr(builder, _WRAPPED, True)


def init_agent_loop(loop: Any, base_init: Callable[..., None], args: tuple, kwargs: dict[str, Any]) -> None:
    """``base_init(*args, **kwargs)`` (veRL's ``AgentLoopBase.__init__``, bound to ``loop``) the first time per
    worker; afterwards a copy of the attributes it set, with this episode's server client and event loop.

    The key is the objects veRL passes unchanged from episode to episode (the configs inside their wrappers, the
    tokenizer, processor, model type, dataset class); a call with anything else (positional arguments, unknown
    keywords) runs ``base_init``. veRL 0.9.1's ``AgentLoopBase.__init__`` derives nothing else from the server client
    or the event loop (``tests/unit/test_loop_cache.py`` compares a copy with a fresh init).
    """
    if args or not set(kwargs) <= _BASE_ARGUMENTS or _PER_EPISODE not in kwargs:
        base_init(*args, **kwargs)
        return
    # A DictConfigWrap is new every episode, the config it wraps is not; AgentLoopBase ignores the tools.
    keep = tuple(
        value.config if isinstance(value, DictConfigWrap) else value
        for name, value in sorted(kwargs.items())
        if name not in (_PER_EPISODE, "tools")
    )
    made = False

    def make() -> tuple[tuple[Any, ...], dict[str, Any]]:
        nonlocal made
        base_init(**kwargs)
        made = True
        state = {name: value for name, value in vars(loop).items() if name not in (_PER_EPISODE, "loop")}
        return keep, state  # the key objects ride along so that their ids stay theirs while the entry lives

    _, state = _BASES.get_or_make(tuple(id(value) for value in keep), make)
    if made:
        return
    vars(loop).update(state)
    loop.server_manager = kwargs[_PER_EPISODE]
    loop.loop = get_event_loop()


__all__ = ["BoundedMemo", "LoopSetup", "SCAFFOLD_MESSAGES", "init_agent_loop", "loop_setup", "memoize_scaffold_renders"]
