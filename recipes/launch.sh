#!/usr/bin/env bash
# Shared launcher for real (GPU) runs on one node: builds the MATH data on first use, then runs a recipe.
# Usage: recipes/launch.sh RECIPE [extra veRL overrides...]
#   MODEL=/path/or/hub-id DATA=data NGPUS=8 recipes/launch.sh rema_multiturn trainer.logger='[console,wandb]'
#   TRAIN_SET=math_train: the training set (default math_lv3to5, the multi-turn reference; Table 1 uses math_train)
# Micro-batches are sized by token budget (use_dynamic_bsz, set by every recipe); beyond one node, start a Ray
# cluster and add trainer.nnodes=N (README, "More than one node").
set -euo pipefail
RECIPE=$1; shift
: "${MODEL:?set MODEL to the model to train (a local path or a hub id)}"
DATA=${DATA:-data}
NGPUS=${NGPUS:-8}
TRAIN_SET=${TRAIN_SET:-math_lv3to5}
for set in "$TRAIN_SET" math500; do
    [ -f "$DATA/$set.parquet" ] || python -m verl_rema.data build "$set" --out "$DATA" --source hub
done
exec python -m verl_rema.main_ppo +recipe="$RECIPE" \
    actor_rollout_ref.model.path="$MODEL" \
    data.train_files="$DATA/$TRAIN_SET.parquet" data.val_files="$DATA/math500.parquet" \
    trainer.n_gpus_per_node="$NGPUS" trainer.nnodes=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    "$@"
