"""OmegaConf resolvers that make the embedded default the value of unset paths.

``hydra_configs/verl_rema.yaml`` sets ``actor_rollout_ref.model.path: ${rema_embedded:model}``
and ``data.train_files: ${rema_embedded:train}``; the first process that resolves the config
(the driver, in :mod:`verl_rema.main_ppo`) builds the artefacts, and ``--cfg job`` prints the
interpolation without building anything.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from .cache import DEFAULT_SEED, embedded_paths

RESOLVER = "rema_embedded"
ARTEFACTS = ("model", "train", "val")


def resolve_embedded(artefact: str, seed: int = DEFAULT_SEED) -> str:
    if artefact not in ARTEFACTS:
        raise ValueError(
            f"${{{RESOLVER}:{artefact}}}: unknown embedded artefact {artefact!r}; choose one of {ARTEFACTS}"
        )
    return str(getattr(embedded_paths(seed=int(seed)), artefact))


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, resolve_embedded)
