"""veRL's v1 synchronous trainer with the two things ReMA needs from it (registered as
``trainer.v1.trainer_mode=rema_sync``); see :mod:`.rema_trainer`."""

from .rema_trainer import TRAINER_MODE, ReMATrainer

__all__ = ["TRAINER_MODE", "ReMATrainer"]
