#!/usr/bin/env bash
# ReMA multi-turn, reference run (rema_spec.md §5): Qwen2.5-7B after the two-role SFT warm-up, MATH levels 3-5,
# GRPO per (prompt, role), turn-level ratio loss, 500 steps. MODEL=... DATA=... NGPUS=... [overrides...]
exec "$(dirname "$0")/launch.sh" rema_multiturn "$@"
