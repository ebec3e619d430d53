"""ReMA's datasets as veRL RL parquet: row schema (:mod:`.schema`), one builder per dataset (:mod:`.builders`),
and the command line (``python -m verl_rema.data``). The reference evaluation set ships in ``assets/``."""
