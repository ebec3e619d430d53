"""What verl-rema can check in a composed config before Ray starts, each failure naming the key and a valid choice.

veRL validates its own keys (``verl.utils.config.validate_config``); these are the plug-in's: its typed blocks
(``rema.rollout``, the math reward's kwargs) and the combinations a recipe or an override can get wrong. The entry
points call :func:`check_config` right after composing, so a mistake costs seconds, not a Ray start-up.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from verl_rema.rollout.config import CONFIG_PATH, ReMARolloutConfig

MATH_REWARD_MODULE = "verl_rema.rewards.math_reward"


def rollout_settings(config: DictConfig) -> ReMARolloutConfig:
    """The ``rema.rollout`` block, instantiated and range-checked."""
    return ReMARolloutConfig.from_config(OmegaConf.select(config, CONFIG_PATH, default=None))


def _check_reward_kwargs(config: DictConfig) -> None:
    path = str(OmegaConf.select(config, "reward.custom_reward_function.path", default="") or "")
    if not path.endswith(MATH_REWARD_MODULE) and MATH_REWARD_MODULE.replace(".", "/") not in path:
        return
    from verl_rema.rewards.math_reward import MathRewardKwargs

    kwargs: Any = OmegaConf.select(config, "reward.custom_reward_function.reward_kwargs", default=None) or {}
    MathRewardKwargs.parse(
        OmegaConf.to_container(kwargs, resolve=True) if OmegaConf.is_config(kwargs) else kwargs, strict=True
    )


def check_config(config: DictConfig) -> None:
    """Raise ValueError on the first setting of verl-rema's that cannot work."""
    rollout_settings(config)
    _check_reward_kwargs(config)


__all__ = ["check_config", "rollout_settings"]
