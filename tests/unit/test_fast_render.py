"""verl_rema/rollout/fast_render.py: the piecewise chat-template encoder must return exactly the tokenizer's own
``apply_chat_template(tokenize=True)`` ids, and stand aside (None) wherever it could not."""

from __future__ import annotations

import random
import re

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
from verl.utils.tokenizer import normalize_token_ids

from tests.unit.rollout_harness import TEMPLATES, make_tokenizer
from verl_rema.rollout.fast_render import TemplateEncoder, template_encoder

WORDS = ["Let", " us", " factor", "\n", "\n\n", "  ", " ", "\\boxed{2}", "[FINISH]", "é", "2", "3,", "<|", "|>", "\t"]


@pytest.fixture(scope="module")
def tokenizers():
    return {name: make_tokenizer(template) for name, template in TEMPLATES.items()}


def own_render(tokenizer, chat, generation_prompt):
    return normalize_token_ids(
        tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=generation_prompt)
    )


def random_chats(tokenizer, count: int, seed: int = 0):
    """Chats of random contents: template words, whitespace runs, added tokens inside a content."""
    rng = random.Random(seed)
    specials = list(tokenizer._tokenizer.get_added_tokens_decoder()[i].content for i in range(3))
    pool = WORDS + specials
    for _ in range(count):
        roles = ["system", "user"] + [rng.choice(["assistant", "user"]) for _ in range(rng.randint(0, 3))]
        yield [{"role": role, "content": "".join(rng.choices(pool, k=rng.randint(0, 8)))} for role in roles]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_renders_equal_the_tokenizers_own(tokenizers, template):
    tokenizer = tokenizers[template]
    encoder = template_encoder(tokenizer, {})
    assert encoder is not None and encoder._splitter is not None, "piecewise for these templates"
    for chat in random_chats(tokenizer, 150):
        for generation_prompt in (False, True):
            got = encoder.render(chat, add_generation_prompt=generation_prompt, chat_template_kwargs={})
            assert got == own_render(tokenizer, chat, generation_prompt), chat


def test_cached_pieces_return_what_a_fresh_encoder_returns(tokenizers):
    tokenizer = tokenizers["chatml"]
    warm, cold = template_encoder(tokenizer, {}), template_encoder(tokenizer, {})
    chats = list(random_chats(tokenizer, 40, seed=1))
    for chat in chats:  # fill warm's memo
        warm.render(chat, add_generation_prompt=True, chat_template_kwargs={})
    for chat in chats:
        cold._pieces.clear()
        want = cold.render(chat, add_generation_prompt=True, chat_template_kwargs={})
        assert warm.render(chat, add_generation_prompt=True, chat_template_kwargs={}) == want
    assert len(warm._pieces) > 0


def test_encoders_are_per_tokenizer(tokenizers):
    """Another template's tokenizer gets its own encoder; a piece both render is not shared between them."""
    chatml, llama = (template_encoder(tokenizers[name], {}) for name in ("chatml", "llama3"))
    chat = [{"role": "system", "content": "Plan."}, {"role": "user", "content": "What is 2+3?"}]
    assert chatml.render(chat, add_generation_prompt=True, chat_template_kwargs={}) == own_render(
        tokenizers["chatml"], chat, True
    )
    assert llama.render(chat, add_generation_prompt=True, chat_template_kwargs={}) == own_render(
        tokenizers["llama3"], chat, True
    )
    assert chatml._pieces is not llama._pieces


def test_the_memo_stays_bounded(tokenizers):
    encoder = template_encoder(tokenizers["chatml"], {})
    encoder._size = 8
    for k in range(50):
        encoder.encode(f"<|im_start|>user\nreply {k}<|im_end|>\n")
    assert len(encoder._pieces) <= 8


def test_a_stripping_added_token_encodes_the_whole_text(tokenizers):
    tokenizer = make_tokenizer(TEMPLATES["chatml"])
    tokenizer.add_tokens([AddedToken("<mark>", lstrip=True, rstrip=True)])
    encoder = template_encoder(tokenizer, {})
    assert encoder is not None and encoder._splitter is None
    for text in ["a <mark> b", "x\n <mark>\ny", "<|im_start|>user\n <mark> z<|im_end|>\n"]:
        assert encoder.encode(text) == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_a_metaspace_tokenizer_encodes_the_whole_text():
    """Metaspace (prepend_scheme 'first') prefixes only the first piece: a piece alone would differ."""
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    bpe.decoder = decoders.Metaspace(prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<s>", "</s>"], show_progress=False)
    bpe.train_from_iterator(["hello world", "the roots are 2 and 3", "user system assistant"], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="</s>", chat_template=TEMPLATES["chatml"].chat_template.replace("<|im_", "<")
    )
    encoder = template_encoder(tokenizer, {})
    assert encoder is not None and encoder._splitter is None
    text = "hello<s>world </s> the roots"
    want = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert encoder.encode(text) == want
    piecewise = TemplateEncoder(tokenizer, re.compile("</s>|<s>"), {"<s>": 0, "</s>": 1})
    assert piecewise.encode(text) != want, "why the guard: 'world' alone gets the prefix it lacks after <s>"


def test_it_stands_aside_where_it_cannot_reproduce_the_call(tokenizers):
    tokenizer = tokenizers["chatml"]
    assert template_encoder(tokenizer, {"truncation": True}) is None, "a tokenising keyword"

    class Custom(type(tokenizer)):
        def apply_chat_template(self, *args, **kwargs):
            return super().apply_chat_template(*args, **kwargs)

    custom = make_tokenizer(TEMPLATES["chatml"])
    custom.__class__ = Custom
    assert template_encoder(custom, {}) is None, "an overridden apply_chat_template"
    assert template_encoder(object(), {}) is None, "not a Rust-backed tokenizer"


def test_a_backend_left_truncating_takes_the_tokenizers_path(tokenizers):
    tokenizer = make_tokenizer(TEMPLATES["chatml"])
    encoder = template_encoder(tokenizer, {})
    tokenizer._tokenizer.enable_truncation(max_length=3)
    try:
        assert encoder.encode("a b c d e") is None
    finally:
        tokenizer._tokenizer.no_truncation()
    assert encoder.encode("a b c d e") == tokenizer("a b c d e", add_special_tokens=False)["input_ids"]
