#!/usr/bin/env bash
# Shared launcher for real (GPU) runs: builds the MATH data on first use, then runs a recipe on one node.
# Usage: recipes/launch.sh RECIPE [extra veRL overrides...]
#   MODEL=/path/or/hub-id DATA=data NGPUS=8 recipes/launch.sh rema_multiturn trainer.logger='[console,wandb]'
set -euo pipefail
RECIPE=$1; shift
MODEL=${MODEL:-Qwen/Qwen2.5-7B-Instruct}
DATA=${DATA:-data}
NGPUS=${NGPUS:-8}
for set in math_lv3to5 math500; do
    [ -f "$DATA/$set.parquet" ] || python -m verl_rema.data build "$set" --out "$DATA" --source hub
done
exec python -m verl_rema.main_ppo +recipe="$RECIPE" \
    actor_rollout_ref.model.path="$MODEL" \
    data.train_files="$DATA/math_lv3to5.parquet" data.val_files="$DATA/math500.parquet" \
    trainer.n_gpus_per_node="$NGPUS" trainer.nnodes=1 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=2 actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.model.enable_gradient_checkpointing=true \
    "$@"
