"""veRL's multi-turn SFT dataset with the loss on exactly the tokens the ReMA rollout samples for each message.

veRL 0.9.1's ``MultiTurnSFTDataset`` tokenises each message with the chat template and puts the loss on an assistant
message's whole template span after the generation prompt: content, end-of-turn token *and* the separator after it
(ChatML's ``\\n``). The rollout's engine samples the content and the end-of-turn token and stops; the separator is
the template's (the rollout row carries it as context, mask 0). And a message that ends with one of its role's
stop strings (the MTA's ``[FINISH]``) stops there, with no end-of-turn token after it.

:class:`ReMASFTDataset` is that dataset, plugged in through veRL's own ``data.custom_cls`` hook, with each loss
span trimmed to those tokens (the row's ``stop`` column lists the stop strings; rows without it keep only the
first rule). Everything else (tokenisation, the whole-chat sanity check, padding, truncation) is veRL's. So an SFT
row and the rollout's row of the same dialogue have the same tokens and the same mask (tests/unit/test_sft_rows.py).
"""

from __future__ import annotations

from typing import Any

import torch
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.py_functional import convert_nested_value_to_list_recursive

from verl_rema.sft.end_of_turn import message_tail
from verl_rema.sft.views import STOP


class ReMASFTDataset(MultiTurnSFTDataset):
    """``MultiTurnSFTDataset`` whose loss covers, per assistant message, its content and, unless the content ends
    with a stop string of the row, the end-of-turn token: what the rollout's engine samples."""

    def _read_files_and_process(self) -> None:
        super()._read_files_and_process()
        self.stop_strings: list[list[str]] | None = None
        if STOP in self.dataframe.columns:
            self.stop_strings = [
                [str(s) for s in (convert_nested_value_to_list_recursive(v) or [])] for v in self.dataframe[STOP]
            ]
        end_of_turn, separator = message_tail(self.tokenizer, self.apply_chat_template_kwargs)
        self.end_of_turn, self.separator = end_of_turn, separator

    def __getitem__(self, item: int) -> dict[str, Any]:
        row = super().__getitem__(item)
        contents = [m["content"] for m in self.messages[item] if m["role"] == "assistant"]
        stops = self.stop_strings[item] if self.stop_strings is not None else []
        row["loss_mask"] = self.action_mask(row["input_ids"], row["loss_mask"], contents, stops)
        return row

    def action_mask(
        self, input_ids: torch.Tensor, loss_mask: torch.Tensor, contents: list[str], stops: list[str]
    ) -> torch.Tensor:
        """Trim each assistant span of veRL's ``loss_mask`` (seq_len,) to content + end-of-turn, or to the content
        alone when it ends with a stop string. ``contents``: the assistant messages' texts, in order."""
        mask = loss_mask.clone()
        spans = _spans(mask)
        if len(spans) > len(contents):
            raise AssertionError(f"{len(spans)} loss spans for {len(contents)} assistant messages")
        if self.truncation == "left":  # the first spans may be gone: align with the last messages
            contents = contents[len(contents) - len(spans) :]
        ids = input_ids.tolist()
        tail = self.end_of_turn + self.separator
        for (_start, end), content in zip(spans, contents, strict=False):
            if not tail or ids[end - len(tail) : end] != tail:
                continue  # the span was cut by truncation: its end is not the template's
            keep = end - len(self.separator)
            if any(content.endswith(stop) for stop in stops):
                keep -= len(self.end_of_turn)
            mask[keep:end] = 0
        return mask


def _spans(mask: torch.Tensor) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of ones in a 0/1 vector (seq_len,)."""
    values = mask.tolist()
    spans, start = [], None
    for i, value in enumerate([*values, 0]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            spans.append((start, i))
            start = None
    return spans


__all__ = ["ReMASFTDataset"]
