#!/usr/bin/env bash
# ReMA multi-turn, reference run (rema_spec.md §5): Qwen2.5-7B (after the two-role SFT warm-up),
# MATH levels 3-5, GRPO per (prompt, role), turn-level ratio loss, 500 steps, one 8-GPU node.
# Usage: recipes/run_rema_multiturn.sh [extra veRL overrides...]
#   MODEL=/path/to/sft_model DATA=data NGPUS=8 recipes/run_rema_multiturn.sh trainer.logger='[console,wandb]'
set -euo pipefail
MODEL=${MODEL:-Qwen/Qwen2.5-7B-Instruct}
DATA=${DATA:-data}
NGPUS=${NGPUS:-8}
[ -f "$DATA/math_lv3to5.parquet" ] || python -m verl_rema.data build math_lv3to5 --out "$DATA" --source hub
[ -f "$DATA/math500.parquet" ] || python -m verl_rema.data build math500 --out "$DATA" --source hub
exec python -m verl_rema.main_ppo +recipe=rema_multiturn \
    actor_rollout_ref.model.path="$MODEL" \
    data.train_files="$DATA/math_lv3to5.parquet" data.val_files="$DATA/math500.parquet" \
    trainer.n_gpus_per_node="$NGPUS" trainer.nnodes=1 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=2 actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.model.enable_gradient_checkpointing=true \
    "$@"
