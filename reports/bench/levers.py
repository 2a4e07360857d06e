"""The speed levers of reports/README.md's bench section, one by one, on the `lab bench` model.

    python reports/bench/levers.py            # SDPA vs plain attention, profile shares
    python reports/bench/levers.py --compile  # also torch.compile of the step (minutes)

Model and inputs are `lab bench`'s full mode (random lab Transformer, d_model 256, 3+3 layers,
vocabulary 8000, batch 32), outputs forced to 30 tokens, one torch thread; times are medians of
interleaved repeats. Prints one JSON object. The int8 lever is a `lab bench` figure itself
(`int8_speedup_beam5`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.profiler import profile

import lab.models.layers as layers
from lab.bench.common import MODES, build_transformer, fixed_length, median_times, random_batch
from lab.registry import SEARCHES

OPS = (
    "aten::addmm",
    "aten::mm",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::cat",
    "aten::copy_",
    "aten::index_select",
)


def plain_attention(q, k, v, attn_mask=None, dropout_p=0.0):  # noqa: ANN001, ANN201
    """softmax(QK^T / sqrt(d)) V, mask True = keep: what SDPA computes, in three ops."""
    w = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
    if attn_mask is not None:
        w = w.masked_fill(~attn_mask, float("-inf"))
    return torch.softmax(w, -1) @ v


def with_plain(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        layers.F.scaled_dot_product_attention = plain_attention
        try:
            return fn()
        finally:
            layers.F.scaled_dot_product_attention = F.scaled_dot_product_attention

    return run


def shares(fn: Callable[[], Any]) -> dict[str, float]:
    """Each op's share of the self CPU time of one call."""
    with profile() as p:
        fn()
    times = {e.key: e.self_cpu_time_total for e in p.key_averages()}
    total = sum(times.values())
    return {op: round(times.get(op, 0) / total, 4) for op in OPS}


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("--compile", action="store_true")
    args = a.parse_args()
    torch.set_num_threads(1)
    s = MODES["full"]
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    fixed = fixed_length(30, model.eos_id)
    greedy = SEARCHES.build("greedy", **fixed)
    beam = SEARCHES.build("beam", beam_size=5, **fixed)
    out: dict[str, Any] = {}
    with torch.inference_mode():
        g, b = (lambda: greedy(model, src, lens)), (lambda: beam(model, src, lens))
        out["sdpa_vs_plain_s"] = median_times(
            {"greedy_sdpa": g, "greedy_plain": with_plain(g), "beam_sdpa": b,
             "beam_plain": with_plain(b)},
            5,
        )  # fmt: skip
        out["greedy_shares"], out["beam_shares"] = shares(g), shares(b)
        if args.compile:
            compiled = build_transformer(s)
            compiled.step = torch.compile(compiled.step, dynamic=True)
            start = time.perf_counter()
            same = [h.tokens for h in greedy(compiled, src, lens).best()] == [
                h.tokens for h in g().best()
            ]
            out["compile_first_call_s"] = time.perf_counter() - start
            out["compile_same_outputs"] = same
            out["compile_s"] = median_times(
                {"greedy_eager": g, "greedy_compiled": lambda: greedy(compiled, src, lens)}, 3
            )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
