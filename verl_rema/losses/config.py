"""Config dataclass for the ``rema_turn`` policy loss.

veRL builds the actor config with ``omega_conf_to_dataclass(config.actor)``, i.e. Hydra's
``instantiate`` with ``_convert_="partial"``: every nested node that carries a ``_target_`` is
instantiated as that class. ``policy_loss._target_`` is ``verl.workers.config.PolicyLossConfig`` in
veRL's ``actor.yaml``; pointing it at :class:`RemaTurnLossConfig` (a subclass, so every field veRL
reads is still there) is what lets the ``turn_*`` keys through. With veRL's own ``_target_`` an extra
key fails loudly (``PolicyLossConfig.__init__() got an unexpected keyword argument``), never silently.

Command line (plain veRL config, keys not declared in YAML, hence the ``+``)::

    actor_rollout_ref.actor.policy_loss._target_=verl_rema.losses.config.RemaTurnLossConfig
    actor_rollout_ref.actor.policy_loss.loss_mode=rema_turn
    +actor_rollout_ref.actor.policy_loss.turn_ratio_mode=arithmetic
    +actor_rollout_ref.actor.policy_loss.turn_aggregation=turn

Once a recipe YAML declares the keys, the ``+`` goes. The token-level ablation is one override,
``actor_rollout_ref.actor.policy_loss.loss_mode=vanilla``: ``vanilla`` ignores the ``turn_*`` fields
and both losses read the same clip constants (see ``turn_clip_ratio_*`` below).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from verl.workers.config import PolicyLossConfig

RATIO_MODES: tuple[str, ...] = ("geometric", "arithmetic")
AGGREGATIONS: tuple[str, ...] = ("trajectory", "turn")


@dataclass
class RemaTurnLossConfig(PolicyLossConfig):
    """veRL ``PolicyLossConfig`` plus the knobs of ReMA's turn-level ratio loss.

    Args:
        loss_mode: Registered loss to use; ``rema_turn`` is the turn-level loss, ``vanilla`` the
            token-level ablation.
        turn_ratio_mode: ``geometric`` (reference code): rho = exp(min(mean_p d_p, turn_log_ratio_clip));
            ``arithmetic`` (paper Eq. 13): rho = mean_p exp(min(d_p, turn_log_ratio_clip)),
            d_p = log pi_theta - log pi_old of an action token p of the turn.
        turn_aggregation: ``trajectory`` (reference run): mean over a row's turns, then over rows;
            ``turn``: mean over all turns of the (global) mini-batch.
        turn_log_ratio_clip: Upper clamp on the log-ratio before ``exp`` (reference 3.0).
        turn_clip_ratio_low: PPO epsilon_low for the turn ratio. ``None`` = the actor's
            ``clip_ratio_low`` (veRL default 0.2), so ``rema_turn`` and ``vanilla`` clip alike.
        turn_clip_ratio_high: PPO epsilon_high; ``None`` = the actor's ``clip_ratio_high`` (0.2).
        turn_clip_ratio_c: Dual-clip constant c for negative advantages; ``None`` = the actor's
            ``clip_ratio_c`` (3.0).
        global_turn_info: Runtime only, like ``ActorConfig.global_batch_info``: the worker-side hook in
            ``patches/turn_count.py`` puts ``num_turns`` (turns in the global mini-batch, all DP ranks) here; ``turn``
            aggregation needs it to be micro-batch invariant and requires it when dp_size > 1.
    """

    loss_mode: str = "rema_turn"
    turn_ratio_mode: str = "geometric"
    turn_aggregation: str = "trajectory"
    turn_log_ratio_clip: float = 3.0
    turn_clip_ratio_low: float | None = None
    turn_clip_ratio_high: float | None = None
    turn_clip_ratio_c: float | None = None
    global_turn_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Reject a setting the loss cannot honour (veRL builds this in every worker from the composed YAML)."""
        where = "actor_rollout_ref.actor.policy_loss"
        for name in ("turn_log_ratio_clip", "turn_clip_ratio_low", "turn_clip_ratio_high", "turn_clip_ratio_c"):
            value = getattr(self, name)  # a string from a YAML typo would otherwise fail as an opaque TypeError
            if (value is not None or name == "turn_log_ratio_clip") and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{where}.{name} must be a number, got {value!r}")
        if self.turn_ratio_mode not in RATIO_MODES:
            raise ValueError(f"{where}.turn_ratio_mode must be one of {RATIO_MODES}, got {self.turn_ratio_mode!r}")
        if self.turn_aggregation not in AGGREGATIONS:
            raise ValueError(f"{where}.turn_aggregation must be one of {AGGREGATIONS}, got {self.turn_aggregation!r}")
        if not self.turn_log_ratio_clip > 0:
            raise ValueError(f"{where}.turn_log_ratio_clip must be > 0, got {self.turn_log_ratio_clip}")
        for name in ("turn_clip_ratio_low", "turn_clip_ratio_high"):
            eps = getattr(self, name)
            if eps is not None and not eps >= 0:
                raise ValueError(f"{where}.{name} must be >= 0, got {eps}")
        if self.turn_clip_ratio_low is not None and self.turn_clip_ratio_low >= 1:
            raise ValueError(
                f"{where}.turn_clip_ratio_low must be < 1 (ratio floor 1 - eps), got {self.turn_clip_ratio_low}"
            )
        if self.turn_clip_ratio_c is not None and not self.turn_clip_ratio_c > 1:
            raise ValueError(
                f"{where}.turn_clip_ratio_c (dual-clip constant) must be > 1, got {self.turn_clip_ratio_c}"
            )


__all__ = ["AGGREGATIONS", "RATIO_MODES", "RemaTurnLossConfig"]
