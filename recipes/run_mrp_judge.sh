#!/usr/bin/env bash
# MRP_RL on the judge task (Table 1b): plan and verdict in one call, REINFORCE++. MODEL=... [overrides...]
exec "$(dirname "$0")/launch_judge.sh" mrp_judge "$@"
