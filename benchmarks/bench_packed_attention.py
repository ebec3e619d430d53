"""Why ``use_remove_padding=true`` is slow on CPU: one actor micro-batch, padded against packed, forward + backward.

    python benchmarks/bench_packed_attention.py                    # 8192 tokens of 100-560-token rows
    python benchmarks/bench_packed_attention.py --tokens 4096 --min-len 50 --max-len 300 --repeats 5

The embedded model (or ``--model``) in float32 with sdpa attention, as veRL's FSDP actor runs on the CPU preset.
Rows (lengths uniform in [min, max], seeded; the CPU preset's multi-turn rows are 100-560 tokens) fill a micro-batch
of ``--tokens`` tokens, as veRL's dynamic batch size does with its token budget (``ppo_max_token_len_per_gpu``,
16384 in the recipes; the default here is half that to bound memory: the packed layout holds total^2 scores per
head). They go through the model two ways, in the same run:

(a) padded, ``use_remove_padding=false``: a (rows, longest) batch with a padding mask;
(b) packed, ``use_remove_padding=true``: what veRL's FSDP engine feeds the model, one (1, total) row whose
    ``position_ids`` restart at each original row and no attention mask. transformers then finds the packed
    sequences from the positions and builds a block-diagonal causal mask over the *whole* packed length
    (``masking_utils.find_packed_sequence_indices``); sdpa with an explicit mask computes every (total x total)
    pair, so attention work grows with the square of the micro-batch's tokens instead of each row's length.

Printed: median seconds of forward + backward over ``--repeats`` (after a warm-up) and the ratio packed / padded,
with the attention pairs each computes. flash-attention's varlen kernel (the GPU path) computes only the pairs
inside each row; the CPU has no such kernel in this stack.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path


def row_lengths(tokens: int, low: int, high: int, seed: int = 0) -> list[int]:
    """Row lengths drawn until the next row would overflow ``tokens`` (at least one row)."""
    rng = random.Random(seed)
    lengths: list[int] = []
    while True:
        n = rng.randint(low, high)
        if lengths and sum(lengths) + n > tokens:
            return lengths
        lengths.append(n)


def attention_pairs(lengths: Sequence[int]) -> dict[str, int]:
    """Query-key pairs sdpa computes per head and layer: padded rows x longest^2, packed total^2, and the causal
    pairs inside each row (what a varlen kernel would compute, for reference)."""
    total, longest = sum(lengths), max(lengths)
    return {
        "padded": len(lengths) * longest * longest,
        "packed": total * total,
        "needed": sum(n * (n + 1) // 2 for n in lengths),
    }


def padded_inputs(lengths: Sequence[int], vocab: int, seed: int = 0) -> dict:
    import torch

    generator = torch.Generator().manual_seed(seed)
    longest = max(lengths)
    input_ids = torch.zeros(len(lengths), longest, dtype=torch.long)
    mask = torch.zeros(len(lengths), longest, dtype=torch.long)
    for i, n in enumerate(lengths):  # right-padded, as veRL's padded micro-batches
        input_ids[i, :n] = torch.randint(3, vocab, (n,), generator=generator)
        mask[i, :n] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids}


def packed_inputs(padded: dict) -> dict:

    keep = padded["attention_mask"].bool()
    return {
        "input_ids": padded["input_ids"][keep].unsqueeze(0),
        "position_ids": padded["position_ids"][keep].unsqueeze(0),
    }


def time_step(model, inputs: dict, repeats: int) -> float:
    """Median seconds of forward + backward (sum of the logits' log-softmax at the input ids)."""
    import torch

    times = []
    for k in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        started = time.perf_counter()
        logits = model(**inputs, use_cache=False).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, inputs["input_ids"].unsqueeze(-1))
        logprobs.sum().backward()
        if k:  # the first is a warm-up
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="HF model dir; default: the embedded model")
    parser.add_argument("--tokens", type=int, default=8192, help="the micro-batch's token budget")
    parser.add_argument("--min-len", type=int, default=100)
    parser.add_argument("--max-len", type=int, default=560)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM

    from verl_rema.embedded import embedded_paths

    torch.manual_seed(0)
    path = args.model or embedded_paths().model
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa", dtype=torch.float32)
    lengths = row_lengths(args.tokens, args.min_len, args.max_len)
    padded = padded_inputs(lengths, model.config.vocab_size)
    packed = packed_inputs(padded)
    pairs = attention_pairs(lengths)
    seconds = {"padded": time_step(model, padded, args.repeats), "packed": time_step(model, packed, args.repeats)}
    print(f"model {path}; {len(lengths)} rows of {args.min_len}-{args.max_len} tokens ({sum(lengths)} tokens, longest "
          f"{max(lengths)}); forward + backward, median of {args.repeats}")  # fmt: skip
    print(f"{'layout':<28}{'seconds':>10}{'attention pairs':>18}")
    print(f"{'(a) padded (rmpad=false)':<28}{seconds['padded']:>10.3f}{pairs['padded']:>18,}")
    print(f"{'(b) packed (rmpad=true)':<28}{seconds['packed']:>10.3f}{pairs['packed']:>18,}")
    print(f"packed / padded: {seconds['packed'] / seconds['padded']:.2f}x time, "
          f"{pairs['packed'] / pairs['padded']:.1f}x attention pairs (causal pairs needed: {pairs['needed']:,})")  # fmt: skip


if __name__ == "__main__":
    main()
