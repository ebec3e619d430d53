#!/usr/bin/env bash
# VRP_RL baseline: chain-of-thought single agent, GRPO; same data, reward and trainer as ReMA. MODEL=... [overrides...]
exec "$(dirname "$0")/launch.sh" vrp_grpo "$@"
