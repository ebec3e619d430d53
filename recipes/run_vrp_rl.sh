#!/usr/bin/env bash
# Table 1's VRP_RL column: the CoT agent with the paper's template, REINFORCE++ with KL, 6 epochs. MODEL=... [overrides...]
TRAIN_SET=${TRAIN_SET:-math_train} exec "$(dirname "$0")/launch.sh" vrp_rl "$@"
