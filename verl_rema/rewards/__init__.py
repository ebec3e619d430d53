"""Rewards for ReMA: the aligned math reward (:mod:`.math_reward`).

Nothing here registers into veRL: the reward is a plain custom reward function loaded by path
(``reward.custom_reward_function.path=pkg://verl_rema.rewards.math_reward``), so importing this package is cheap
and has no side effects.
"""

from verl_rema.rewards.math_reward import compute_score, reward_stats, score_many

__all__ = ["compute_score", "reward_stats", "score_many"]
