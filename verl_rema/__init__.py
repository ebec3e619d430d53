"""verl-rema: ReMA (Reinforced Meta-thinking Agents) as a plug-in for an unmodified veRL.

Importing ``verl_rema`` is cheap and has no side effects; the registrations into veRL's
registries live in :mod:`verl_rema.register`, which veRL imports in every process through
the ``verl.plugins`` entry point.
"""

__version__ = "0.1.0"
