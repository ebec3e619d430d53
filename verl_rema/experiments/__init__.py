"""Experiments built on the plug-in: small, reproducible studies that use its entry points as a user would."""
