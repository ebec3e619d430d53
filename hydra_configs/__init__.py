"""verl-rema's Hydra configs (installed as ``verl_rema_configs``): the entry config, recipes and presets.

Hydra imports this package to read the YAML files beside it; importing it registers the typed schemas the entry
config composes (``rema.rollout``), so any composition of ``verl_rema`` validates them.
"""

from verl_rema.rollout.config import register_schema

register_schema()
