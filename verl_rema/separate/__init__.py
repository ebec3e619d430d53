"""A model per role (the paper's separated setting): ``rema.models`` names them, ``rema.schedule`` says which
trains when, and the ``rema_separate`` trainer mode (registered on import) trains them in one veRL run.

``roles.py`` derives each role's config, ``schedule.py`` is the alternation, ``servers.py`` and ``worker.py`` give
the RA's model its own rollout server set, ``client.py`` routes each role's turns to its servers, ``router.py``
routes each role's rows to its model, ``trainer.py`` puts them together. ``algorithm1.py`` and
``algorithm1_trainer.py`` are the paper's single-turn Algorithm 1 on top (``rema_algorithm1`` mode).
"""

# veRL first: importing it imports verl_rema.register, which imports this package's modules; they must not be
# half-initialised then (tests/unit/test_register.py::test_any_component_can_be_imported_first)
import verl  # noqa: F401

from verl_rema.separate.algorithm1_trainer import Algorithm1Trainer
from verl_rema.separate.trainer import TRAINER_MODE, ReMASeparateTrainer

__all__ = ["TRAINER_MODE", "Algorithm1Trainer", "ReMASeparateTrainer"]
