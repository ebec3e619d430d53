"""verl-rema's SFT configs (``verl_rema_configs.sft``): the SFT entry config, its recipes and its CPU preset.

A config root of its own, beside the RL one, so ``python -m verl_rema.sft +recipe=NAME`` finds SFT recipes in
``recipe/`` and ``+preset=cpu`` the SFT preset, never the RL ones. Importing it registers the ``rema.sft`` schema.
"""

from verl_rema.sft.config import register_schema

register_schema()
