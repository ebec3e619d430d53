"""Chat-template renders for the ``rema`` loop's token builder, tokenising only the text that changed.

Why. veRL's continuous-token builder turns every appended message into tokens by rendering a constant synthetic
prefix plus the message through ``apply_chat_template(tokenize=True)`` and cutting the prefix off. On the embedded
tokenizer that is ~170 µs a render, of which the Jinja text is ~20 µs: the rest is transformers' tokenizer call
(~60 µs of Python around the Rust encoder) and the encoder itself, ~1 µs a token, spent mostly on text that is the
same every turn (the synthetic prefix, the template's headers, the system prompt).

How. :class:`TemplateEncoder` renders the text with the same template call (``tokenize=False``) and encodes it as
the Rust tokenizer does: its added tokens (``<|im_start|>``, ``<|im_end|>``, ...) are matched first and the text
between them is encoded piece by piece, each piece on its own. A piece seen before (a header, a system prompt, the
synthetic prefix) comes from a memo; only new text (a reply, a question) is encoded.

Exactness. The result equals the tokenizer's own ``apply_chat_template(tokenize=True)`` only when (checked once by
:func:`template_encoder`, else it returns None and the builder renders as veRL does):
- the tokenizer is transformers' Rust-backed class with its ``__call__``/``apply_chat_template`` not overridden, no
  tokenising keyword among the chat-template kwargs, deterministic (no BPE dropout);
- piece by piece only where the Rust tokenizer treats the text between added tokens independently: every added token
  without ``lstrip``/``rstrip``/``single_word``/``normalized``, and a normalizer and pre-tokenizer that act on each
  piece alone (a ``Metaspace`` pre-tokenizer prefixes only the first piece: whole-text encoding then);
- probes (the synthetic prefix, whitespace around added tokens, added tokens inside a content) agree with the
  tokenizer's own call.
Per call, a backend with truncation, padding or ``encode_special_tokens`` set (someone else's call left it so)
takes the tokenizer's own path. Unit tests compare both paths on the ChatML, Qwen and Llama-3 test tokenizers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from verl.utils.tokenizer import normalize_token_ids
from verl.utils.tokenizer.chat_template import apply_chat_template

logger = logging.getLogger(__name__)

#: Normalizers and pre-tokenizers that transform each piece between added tokens on its own.
PIECEWISE_NORMALIZERS = frozenset({"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Sequence"})
PIECEWISE_PRE_TOKENIZERS = frozenset(
    {"ByteLevel", "Split", "Digits", "Punctuation", "Whitespace", "WhitespaceSplit", "Sequence"}
)
#: apply_chat_template keywords that change the tokenisation rather than the text.
TOKENIZING_KWARGS = frozenset(
    {"padding", "truncation", "max_length", "return_tensors", "return_dict", "tokenizer_kwargs", "processor_kwargs"}
)
#: Methods whose transformers implementation the encoder reproduces; a subclass overriding one keeps veRL's path.
REPRODUCED_METHODS = ("__call__", "_encode_plus", "apply_chat_template", "set_truncation_and_padding")


class TemplateEncoder:
    """Renders messages like ``apply_chat_template(tokenize=True)`` of one tokenizer, encoding new text only."""

    def __init__(self, tokenizer: Any, splitter: re.Pattern[str] | None, added: dict[str, int], size: int = 4096):
        self.tokenizer = tokenizer
        self._backend = tokenizer._tokenizer
        self._splitter = splitter  # None: encode the whole text in one call
        self._added = added
        self._pieces: dict[str, tuple[int, ...]] = {}
        self._size = size

    def encode(self, text: str) -> list[int] | None:
        """The ids of rendered ``text`` (no special tokens added), or None: use the tokenizer's own call."""
        backend = self._backend
        if backend.truncation is not None or backend.padding is not None or backend.encode_special_tokens:
            return None
        if self._splitter is None:
            return backend.encode(text, add_special_tokens=False).ids
        ids: list[int] = []
        start = 0
        for match in self._splitter.finditer(text):
            if match.start() > start:
                ids += self._piece(text[start : match.start()])
            ids.append(self._added[match.group()])
            start = match.end()
        if start < len(text):
            ids += self._piece(text[start:])
        return ids

    def _piece(self, text: str) -> tuple[int, ...]:
        ids = self._pieces.get(text)
        if ids is None:
            if len(self._pieces) >= self._size:  # mostly one-off replies; the constant pieces come back at once
                self._pieces.clear()
            ids = self._pieces[text] = tuple(self._backend.encode(text, add_special_tokens=False).ids)
        return ids

    def render(
        self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool, chat_template_kwargs: dict[str, Any]
    ) -> list[int] | None:
        """``messages`` rendered and encoded, or None (a template error, a backend state): use veRL's render."""
        try:
            text = self.tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=add_generation_prompt, **chat_template_kwargs
            )
        except Exception:  # veRL's render has a fallback for templates that need a user message; let it decide
            return None
        return self.encode(text) if isinstance(text, str) else None


def template_encoder(
    tokenizer: Any, chat_template_kwargs: dict[str, Any], probes: Sequence[Sequence[dict[str, Any]]] = ()
) -> TemplateEncoder | None:
    """The encoder of ``tokenizer``, or None where its renders could differ from the tokenizer's own (see module).

    ``probes``: conversations whose renders (with and without the generation prompt) must agree, besides the
    built-in ones.
    """
    try:
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:  # transformers 4: another class layout, not reproduced here
        return None
    if not isinstance(tokenizer, TokenizersBackend) or set(chat_template_kwargs) & TOKENIZING_KWARGS:
        return None
    if getattr(tokenizer, "split_special_tokens", False):  # its calls encode added tokens as text
        return None
    if any(getattr(type(tokenizer), name, None) is not getattr(TokenizersBackend, name) for name in REPRODUCED_METHODS):
        return None
    backend = tokenizer._tokenizer
    if getattr(backend.model, "dropout", None):
        return None
    tokens = backend.get_added_tokens_decoder()
    added = {token.content: token_id for token_id, token in tokens.items()}
    splitter = None
    if _piecewise(backend, tokens.values()) and added:
        # Leftmost, then longest, as the Rust tokenizer's added-vocabulary matcher.
        alternatives = sorted(added, key=len, reverse=True)
        splitter = re.compile("|".join(re.escape(content) for content in alternatives))
    encoder = TemplateEncoder(tokenizer, splitter, added)
    if not _agrees(encoder, tokenizer, chat_template_kwargs, list(added), probes):
        logger.warning("rema rollout: the piecewise chat-template encoder disagrees with %s; not used", type(tokenizer))
        return None
    return encoder


def _piecewise(backend: Any, tokens: Any) -> bool:
    """Whether the text between added tokens is encoded piece by piece, each piece on its own."""
    if any(t.lstrip or t.rstrip or t.single_word or t.normalized for t in tokens):
        return False
    parts = [(backend.normalizer, PIECEWISE_NORMALIZERS), (backend.pre_tokenizer, PIECEWISE_PRE_TOKENIZERS)]
    for component, allowed in parts:
        if component is not None and not _types(json.loads(component.__getstate__())) <= allowed:
            return False
    return True


def _types(node: Any) -> set[str]:
    """Every ``type`` named in a serialised normalizer or pre-tokenizer (a Sequence's members included)."""
    if isinstance(node, dict):
        found = {node["type"]} if isinstance(node.get("type"), str) else set()
        for value in node.values():
            found |= _types(value)
        return found
    if isinstance(node, list):
        return set().union(*(_types(item) for item in node)) if node else set()
    return set()


def _agrees(
    encoder: TemplateEncoder,
    tokenizer: Any,
    kwargs: dict[str, Any],
    added: list[str],
    probes: Sequence[Sequence[dict[str, Any]]],
) -> bool:
    """Compare the encoder with the tokenizer's own call on texts where a piecewise encoding would go wrong."""
    specials = added[:4]
    texts = [" a  b\n\n c ", *(f"x {s} y\n\n{s}{s}z \n{s}" for s in specials), "".join(specials)]
    for text in texts:
        if encoder.encode(text) != normalize_token_ids(tokenizer(text, add_special_tokens=False)["input_ids"]):
            return False
    contents = ["  padded \n text\n\n", *(f" {s}inside{s} " for s in specials[:2])]
    chats = [*probes, *([{"role": "system", "content": c}, {"role": "user", "content": c}] for c in contents)]
    chats += [[{"role": "user", "content": c}] for c in contents]
    for chat in chats:
        for generation_prompt in (False, True):
            try:
                want = normalize_token_ids(
                    apply_chat_template(
                        tokenizer, list(chat), tokenize=True, add_generation_prompt=generation_prompt, **kwargs
                    )
                )
            except Exception:  # a template that refuses this chat (a system role, say): nothing to compare
                continue
            got = encoder.render(chat, add_generation_prompt=generation_prompt, chat_template_kwargs=kwargs)
            if got is not None and got != want:
                return False
    return True


__all__ = ["TemplateEncoder", "template_encoder"]
