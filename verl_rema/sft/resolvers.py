"""OmegaConf resolvers that make the SFT files and tokenizer follow the config: ``${rema_sft:train}``,
``${rema_sft:val}`` (built from ``rema.sft``, :mod:`.data`) and ``${rema_sft:tokenizer}`` (``model.path``'s tokenizer
with the end-of-turn token as eos, :mod:`.end_of_turn`).

The SFT entry config sets ``data.train_files``, ``data.val_files`` and ``model.tokenizer_path`` to them; the process
that resolves the config first (the entry point, before any torchrun rank starts) builds what they name, and
``--cfg job`` prints the interpolations without building anything.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

import verl_rema.embedded.resolvers  # noqa: F401  (${rema_embedded:model}, the default model)

RESOLVER = "rema_sft"
ARTEFACTS = ("train", "val", "tokenizer")


def resolve_sft(artefact: str, *, _root_: Any) -> str | None:
    from verl_rema.build_cache import cache_root
    from verl_rema.sft.config import ReMASFTDataConfig
    from verl_rema.sft.data import sft_data
    from verl_rema.sft.end_of_turn import tokenizer_for_sft

    if artefact == "tokenizer":
        return tokenizer_for_sft(str(_root_.model.path), cache_root())
    if artefact not in ARTEFACTS:
        raise ValueError(f"${{{RESOLVER}:{artefact}}}: unknown artefact {artefact!r}; choose one of {ARTEFACTS}")
    paths = sft_data(ReMASFTDataConfig.from_config(OmegaConf.select(_root_, "rema.sft")))
    path = paths.train if artefact == "train" else paths.val
    return None if path is None else str(path)


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, resolve_sft)
