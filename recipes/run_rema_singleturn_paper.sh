#!/usr/bin/env bash
# Table 1's ReMA column: single-turn ReMA with two separate models trained by the paper's Algorithm 1 (role
# rewards, pass-rate filtering, REINFORCE++). MODEL=Qwen/Qwen2.5-7B-Instruct (Llama: add rema.algorithm1.iterations=3)
# Two 7B/8B models on one node: FSDP offload on (README "A model per role"). [overrides...]
TRAIN_SET=${TRAIN_SET:-math_train} exec "$(dirname "$0")/launch.sh" rema_singleturn_paper \
    actor_rollout_ref.actor.fsdp_config.param_offload=true actor_rollout_ref.actor.fsdp_config.optimizer_offload=true \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.35 "$@"
