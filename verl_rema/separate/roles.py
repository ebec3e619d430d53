"""``rema.models``: a model per role, each described as an override of veRL's ``actor_rollout_ref`` block.

    rema:
      models:
        meta: {}                                        # the MTA: actor_rollout_ref as composed
        reasoning:                                      # the RA: its own checkpoint, lr, rollout settings
          model: {path: /ckpt/ra}
          actor: {optim: {lr: 2e-6}}
          rollout: {gpu_memory_utilization: 0.3}

Each role's full config is the composed config with ``actor_rollout_ref`` merged with the role's override; a key
veRL does not know fails with the override's path. Both models must share one tokenizer (vocabulary and chat
template): the agent loop builds both roles' rows with it, and the rows must be token-exact for each model.
Without ``rema.models`` (the default) both roles share one model and nothing here runs.
"""

from __future__ import annotations

import copy
from typing import Any

from omegaconf import DictConfig, OmegaConf

from verl_rema.protocol import ROLES, Role

CONFIG_PATH = "rema.models"


def separate_models(config: DictConfig) -> bool:
    """Whether the config asks for a model per role."""
    return OmegaConf.select(config, CONFIG_PATH, default=None) is not None


def role_configs(config: DictConfig) -> dict[Role, DictConfig]:
    """Each role's full config: ``config`` with ``actor_rollout_ref`` merged with ``rema.models.<role>``."""
    block = OmegaConf.select(config, CONFIG_PATH)
    if not isinstance(block, DictConfig) or set(block.keys()) != set(ROLES):
        given = list(block.keys()) if isinstance(block, DictConfig) else block
        raise ValueError(f"{CONFIG_PATH} must map each role {list(ROLES)} to an override (may be {{}}); got {given}")
    out = {}
    for role in Role:
        override = block[role.value]
        role_config = copy.deepcopy(config)
        if override:
            OmegaConf.set_struct(role_config, True)  # an unknown key in the override is an error, not a new key
            try:
                role_config.actor_rollout_ref = OmegaConf.merge(role_config.actor_rollout_ref, override)
            except Exception as error:  # omegaconf names the key; say where it came from
                raise ValueError(f"{CONFIG_PATH}.{role.value}: {error}") from None
        out[role] = role_config
    return out


def check_same_tokenizer(paths: dict[Role, str], load: Any = None) -> None:
    """Refuse models whose tokenizers differ (vocabulary, special tokens or chat template)."""
    if load is None:
        from transformers import AutoTokenizer

        load = AutoTokenizer.from_pretrained
    seen = {role: load(str(path)) for role, path in paths.items()}
    first_role, first = next(iter(seen.items()))
    for role, tokenizer in seen.items():
        for what, get in (
            ("vocabulary", lambda t: t.get_vocab()),
            ("chat template", lambda t: t.chat_template),
            ("eos token", lambda t: t.eos_token),
        ):
            if get(tokenizer) != get(first):
                raise ValueError(
                    f"{CONFIG_PATH}: the {role.value} model ({paths[role]}) and the {first_role.value} model "
                    f"({paths[first_role]}) have different tokenizers ({what}); the two roles' models must share one "
                    "tokenizer family and chat template"
                )


__all__ = ["CONFIG_PATH", "check_same_tokenizer", "role_configs", "separate_models"]
