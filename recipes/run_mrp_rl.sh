#!/usr/bin/env bash
# Table 1's MRP_RL column: one agent plans then solves in one message (the paper's MRP prompt), REINFORCE++ with KL.
# MODEL=... [overrides...]
TRAIN_SET=${TRAIN_SET:-math_train} exec "$(dirname "$0")/launch.sh" mrp_rl "$@"
