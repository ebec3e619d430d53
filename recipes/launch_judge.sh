#!/usr/bin/env bash
# Launcher for the LLM-as-a-judge recipes (arXiv 2503.09501 Table 1b) on one node: builds RewardBench970
# (SPLIT=strict, the paper's main split, or loose) and JudgeBench on first use, then trains on the 5,000 training
# tuples with the 970 test tuples as validation set.
# Usage: MODEL=meta-llama/Llama-3.1-8B-Instruct DATA=data NGPUS=8 recipes/launch_judge.sh RECIPE [overrides...]
# A length budget for long pairs: BUILD_ARGS="--max-length 4096 --tokenizer $MODEL" (README, "LLM-as-a-judge").
set -euo pipefail
RECIPE=$1; shift
: "${MODEL:?set MODEL to the model to train (a local path or a hub id), e.g. meta-llama/Llama-3.1-8B-Instruct}"
DATA=${DATA:-data}
NGPUS=${NGPUS:-8}
SPLIT=${SPLIT:-strict}
read -r -a BUILD <<< "${BUILD_ARGS:-}"
[ -f "$DATA/rewardbench970_${SPLIT}_train.parquet" ] || \
    python -m verl_rema.data build rewardbench970 --split "$SPLIT" --out "$DATA" "${BUILD[@]}"
[ -f "$DATA/judgebench.parquet" ] || python -m verl_rema.data build judgebench --out "$DATA" "${BUILD[@]}"
exec python -m verl_rema.main_ppo +recipe="$RECIPE" \
    actor_rollout_ref.model.path="$MODEL" \
    data.train_files="$DATA/rewardbench970_${SPLIT}_train.parquet" \
    data.val_files="$DATA/rewardbench970_${SPLIT}_test.parquet" \
    trainer.n_gpus_per_node="$NGPUS" trainer.nnodes=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    "$@"
