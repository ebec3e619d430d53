"""OmegaConf resolvers that make the embedded default the value of unset paths.

``hydra_configs/verl_rema.yaml`` sets ``actor_rollout_ref.model.path: ${rema_embedded:model}``
and ``data.train_files: ${rema_embedded:train}``; the first process that resolves the config
(the driver, in :mod:`verl_rema.main_ppo`) builds the artefacts, and ``--cfg job`` prints the
interpolation without building anything.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from .cache import DEFAULT_SEED, embedded_paths

RESOLVER = "rema_embedded"
ARTEFACTS = ("model", "train", "val", "toy_prompts")
TOY_PROMPTS = Path(__file__).resolve().parent / "toy_prompts.yaml"  # the toy experiment's short-prompt set


def resolve_embedded(artefact: str, seed: int = DEFAULT_SEED, task: str = "embedded") -> str:
    """``${rema_embedded:ARTEFACT[,SEED[,TASK]]}``, e.g. ``${rema_embedded:val,0,toy}``: the toy task's data."""
    if artefact not in ARTEFACTS:
        raise ValueError(
            f"${{{RESOLVER}:{artefact}}}: unknown embedded artefact {artefact!r}; choose one of {ARTEFACTS}"
        )
    if artefact == "toy_prompts":
        return str(TOY_PROMPTS)
    return str(getattr(embedded_paths(seed=int(seed), task=str(task)), artefact))


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, resolve_embedded)
