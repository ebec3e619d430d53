#!/usr/bin/env bash
# ReMA multi-turn, the reference run (arXiv 2503.09501 App. D.2): Qwen2.5-7B *base* after the two-role SFT
# warm-up (python -m verl_rema.sft +recipe=sft_mamrp, README "The paper's pipeline"), MATH levels 3-5, GRPO per
# (prompt, role), turn-level ratio loss, 500 steps. MODEL=<the SFT checkpoint> DATA=... NGPUS=... [overrides...]
: "${MODEL:?set MODEL to the two-role SFT checkpoint of Qwen2.5-7B (base), as in the paper; see README}"
exec "$(dirname "$0")/launch.sh" rema_multiturn "$@"
