#!/usr/bin/env bash
# ReMA multi-turn with separate parameters (arXiv 2503.09501 Fig. 6): two copies of the two-role SFT checkpoint of
# Qwen2.5-7B base, trained in alternation (MTA first, switching every 10 steps), otherwise the reference run.
# Two 7B models on one 8x80 GB node: see README "A model per role" for the memory plan (offload on).
# MODEL=<the SFT checkpoint> DATA=... NGPUS=... [overrides...]
: "${MODEL:?set MODEL to the two-role SFT checkpoint of Qwen2.5-7B (base), as in the paper; see README}"
exec "$(dirname "$0")/launch.sh" rema_multiturn_separate \
    actor_rollout_ref.actor.fsdp_config.param_offload=true actor_rollout_ref.actor.fsdp_config.optimizer_offload=true \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.35 "$@"
