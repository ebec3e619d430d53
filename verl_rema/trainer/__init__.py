"""veRL's v1 synchronous trainer with the two things ReMA needs from it (registered as
``trainer.v1.trainer_mode=rema_sync``); see :mod:`.rema_trainer`."""

# veRL first: importing it imports verl_rema.register, which imports this package's modules; they must not be
# half-initialised then (tests/unit/test_register.py::test_any_component_can_be_imported_first)
import verl  # noqa: F401

from .rema_trainer import TRAINER_MODE, ReMATrainer

__all__ = ["TRAINER_MODE", "ReMATrainer"]
