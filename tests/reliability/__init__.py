"""Reliability drills (issue 16): configs, data rows, the reward under load, rollout faults, kill and resume."""
