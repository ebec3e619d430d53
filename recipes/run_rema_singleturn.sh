#!/usr/bin/env bash
# ReMA single-turn (parameter-shared): MTA plan + RA solution, REINFORCE++ with KL. MODEL=... [overrides...]
exec "$(dirname "$0")/launch.sh" rema_singleturn "$@"
