"""Fixed text the embedded tokenizer should encode compactly: every shipped role prompt and
ReMA's protocol markers. Read from the prompt-set files so the tokenizer follows the prompts."""

from __future__ import annotations

from pathlib import Path

import yaml

PROMPT_SETS_DIR = Path(__file__).resolve().parent.parent / "prompts" / "sets"
PROTOCOL_TEXT = ("Question:\n", "\n\nInstruction:\n", "[FINISH]", "\\boxed{}")
COT_PROMPT = (
    "You are a math expert tasked with solving problems step by step. \nPresent the final answer within \\boxed{}."
)


def _strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def role_text() -> list[str]:
    texts = [*PROTOCOL_TEXT, COT_PROMPT]
    for path in sorted(PROMPT_SETS_DIR.glob("*.yaml")):
        texts += _strings(yaml.safe_load(path.read_text()))
    return texts


ROLE_TEXT: tuple[str, ...] = tuple(role_text())
