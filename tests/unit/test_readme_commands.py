"""Every training and evaluation command in the README, as written, composes and passes the start-up checks and
veRL's own validation: a GPU command (one that sets ``trainer.n_gpus_per_node``) for a GPU node, any other on the
CPU preset, as ``python -m verl_rema.main_ppo`` / ``python -m verl_rema.evaluate`` would choose on such a machine.

The README's ```bash blocks are run by bash with ``python`` standing in as a recorder, so variables (``$MODEL``,
``$GPU``, ...), quoting and line continuations are expanded exactly as a user's shell would. Hub model ids and data
files are then pointed at the embedded model and data (nothing is downloaded), and the placeholder step
``global_step_N`` is a number; everything else is the command's.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO_ROOT
from tests.unit.test_recipes import compose_config, validate_like_the_entry_point
from verl_rema.device import select_device
from verl_rema.evaluate.__main__ import apply, explicit_eval_overrides, settings_from

ENTRY_POINTS = ("verl_rema.main_ppo", "verl_rema.evaluate")
_STATEMENT = re.compile(r"^(?:export\s+)?[A-Z_][A-Z0-9_]*=|^python -m (?:verl_rema\.main_ppo|verl_rema\.evaluate)\s")
_RECORDER = 'python() { printf "%s\\0" "$@" >> "$OUT"; printf "\\1" >> "$OUT"; }\n'


def readme_statements() -> list[str]:
    """Variable assignments and entry-point commands of the README's bash blocks, continuations joined."""
    text = (REPO_ROOT / "README.md").read_text()
    statements = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if _STATEMENT.match(line):
                statements.append(line)
    return statements


def recorded_commands(tmp_path) -> list[list[str]]:
    """The argv of every README entry-point command after bash's expansion."""
    out = tmp_path / "argv.bin"
    script = _RECORDER + "\n".join(readme_statements()) + "\n"
    subprocess.run(["bash", "-c", script], env={"OUT": str(out), "PATH": "/usr/bin:/bin"}, check=True, timeout=60)
    commands = []
    for chunk in out.read_bytes().split(b"\1")[:-1]:
        argv = [part.decode() for part in chunk.split(b"\0")[:-1]]
        if argv[:1] == ["-m"] and argv[1] in ENTRY_POINTS:
            commands.append(argv[1:])
    return commands


def _label(argv: list[str]) -> str:
    recipe = next((a.split("=", 1)[1] for a in argv if a.startswith("+recipe=")), "?")
    return f"{argv[0].rsplit('.', 1)[-1]}:{recipe}"


@pytest.fixture(scope="module")
def commands(tmp_path_factory) -> list[list[str]]:
    return recorded_commands(tmp_path_factory.mktemp("readme"))


def test_the_readme_has_training_and_evaluation_commands(commands):
    entry_points = {argv[0] for argv in commands}
    assert entry_points == set(ENTRY_POINTS) and len(commands) >= 15
    recipes = {_label(argv).split(":")[1] for argv in commands}
    assert {"rema_multiturn", "rema_singleturn_paper", "rema_judge", "rema_multiturn_separate"} <= recipes


def test_every_readme_command_validates_as_written(commands, embedded, tmp_path):
    failures = []
    for argv in commands:
        module, args = argv[0], [a.replace("global_step_N", "global_step_1") for a in argv[1:] if a not in ("--cfg", "job")]  # fmt: skip
        gpu = any(a.startswith("trainer.n_gpus_per_node=") for a in args)
        overrides = select_device(args, cuda_available=gpu)
        if module == "verl_rema.evaluate":
            overrides = explicit_eval_overrides(overrides)
        overrides += ["trainer.device=cuda"] if gpu else []
        try:
            config = compose_config(overrides, embedded)  # model and data: the embedded ones, appended last
            if module == "verl_rema.evaluate":
                apply(config, settings_from(config), str(embedded.val), tmp_path)
            validate_like_the_entry_point(config)
        except Exception as error:  # noqa: BLE001  (collect them all, then report each with its command)
            failures.append(f"{_label(argv)} {' '.join(args)}\n    -> {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)
