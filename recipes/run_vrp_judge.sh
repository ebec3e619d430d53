#!/usr/bin/env bash
# VRP_RL on the judge task (Table 1b): the judge alone, REINFORCE++. MODEL=... [overrides...]
exec "$(dirname "$0")/launch_judge.sh" vrp_judge "$@"
