"""``${rema_toy:KIND[,SEED]}``: the toy warm start's model folder (building it on first use), so a config can start RL
from it: ``hydra_configs/toy/{rema,cot}.yaml`` (``+toy=rema`` / ``+toy=cot``) set ``actor_rollout_ref.model.path`` to it.
Resolved once, in the driver, before Ray starts (:func:`verl_rema.main_ppo.run`); ``--cfg job`` builds nothing."""

from __future__ import annotations

from omegaconf import OmegaConf

from verl_rema.embedded.cache import DEFAULT_SEED

RESOLVER = "rema_toy"


def resolve_toy(kind: str, seed: int = DEFAULT_SEED) -> str:
    from verl_rema.experiments.toy.warm_start import RECIPES, warm_start_paths

    if kind not in RECIPES:
        raise ValueError(f"${{{RESOLVER}:{kind}}}: unknown warm-start kind {kind!r}; choose one of {sorted(RECIPES)}")
    return str(warm_start_paths(kind, seed=int(seed)).model)


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, resolve_toy)
