#!/usr/bin/env bash
# ReMA on the judge task (Table 1b): MTA evaluation plan + RA verdict, parameter-shared. MODEL=... [overrides...]
exec "$(dirname "$0")/launch_judge.sh" rema_judge "$@"
