#!/usr/bin/env bash
# VRP_RL baseline: chain-of-thought single agent, GRPO, same data, reward and trainer as ReMA.
# Usage: MODEL=... DATA=data NGPUS=8 recipes/run_vrp_grpo.sh [extra veRL overrides...]
set -euo pipefail
MODEL=${MODEL:-Qwen/Qwen2.5-7B-Instruct}
DATA=${DATA:-data}
NGPUS=${NGPUS:-8}
[ -f "$DATA/math_lv3to5.parquet" ] || python -m verl_rema.data build math_lv3to5 --out "$DATA" --source hub
[ -f "$DATA/math500.parquet" ] || python -m verl_rema.data build math500 --out "$DATA" --source hub
exec python -m verl_rema.main_ppo +recipe=vrp_grpo \
    actor_rollout_ref.model.path="$MODEL" \
    data.train_files="$DATA/math_lv3to5.parquet" data.val_files="$DATA/math500.parquet" \
    trainer.n_gpus_per_node="$NGPUS" trainer.nnodes=1 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=2 actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.model.enable_gradient_checkpointing=true \
    "$@"
