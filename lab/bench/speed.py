"""The lab-internal figures of ``lab bench``: ``search_overhead_beam5`` and ``cache_speedup_50``,
on the lab's own Transformer with random weights.

Outputs are forced to a fixed length, so beam search, greedy and the floor (the model's forward
passes alone) do the same number of steps on the same inputs.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from lab.bench.common import (
    Settings,
    build_transformer,
    fixed_length,
    median_times,
    paired_ratio,
    random_batch,
    round_times,
)
from lab.registry import SEARCHES

OVERHEAD_ROUNDS = 5  # at least: search_overhead_beam5 is a median over this many rounds


def bench_lab(s: Settings) -> dict[str, Any]:
    """``search_overhead_beam5`` and ``cache_speedup_50``, with the raw
    medians under ``times_s`` and two sanity checks (``fixed_length_ok``,
    ``cache_tokens_identical``)."""
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    out, times = _beam_figures(s, model, src, lens)
    cache_out, cache_times = _cache_figures(s, model, src, lens)
    out.update(cache_out)
    times.update(cache_times)
    out["times_s"] = times
    out["cache_speedup_50"] = times["greedy_recompute"] / times["greedy_cached"]
    return out


def _beam_figures(
    s: Settings, model: Any, src: torch.Tensor, lens: torch.Tensor
) -> tuple[dict[str, Any], dict[str, float]]:
    """Beam 5, greedy and the floor of beam 5 (``encode`` once, then per step one ``step`` on
    ``B*K`` rows and one ``reorder`` with a fixed index), timed interleaved."""
    k, n, steps = 5, src.size(0), s.out_len
    fixed = fixed_length(steps, model.eos_id)
    beam = SEARCHES.build("beam", beam_size=k, **fixed)
    greedy = SEARCHES.build("greedy", **fixed)
    g = torch.Generator().manual_seed(s.seed + 1)
    feed = torch.randint(4, s.vocab, (steps, n * k), generator=g)  # (L, B*K) fixed inputs
    same = torch.arange(n * k)  # (B*K,) the trivial reorder

    def floor() -> None:
        with torch.inference_mode():
            state = model.init_state(model.encode(src, lens), k)
            prev = torch.full((n * k,), model.bos_id)
            for t in range(steps):
                _, state = model.step(prev, state)
                state = model.reorder(state, same)
                prev = feed[t]

    with torch.inference_mode():
        checks = beam(model, src, lens).best(), greedy(model, src, lens).best()
    out = {"fixed_length_ok": all(len(h.tokens) == steps for hs in checks for h in hs)}
    rounds = round_times(
        {
            "beam5": lambda: beam(model, src, lens),
            "floor_beam5": floor,
            "greedy": lambda: greedy(model, src, lens),
        },
        max(s.repeats, OVERHEAD_ROUNDS),
    )
    out["search_overhead_beam5"] = paired_ratio(rounds["beam5"], rounds["floor_beam5"])
    out["overhead_rounds"] = len(rounds["beam5"])
    return out, {n: statistics.median(v) for n, v in rounds.items()}


def _cache_figures(
    s: Settings, model: Any, src: torch.Tensor, lens: torch.Tensor
) -> tuple[dict[str, Any], dict[str, float]]:
    """Greedy over ``s.cache_len`` tokens on the first ``s.cache_batch`` sentences, with the KV
    cache and by recomputing the prefix every step; the first call of each is the warm-up and
    checks that both give the same tokens."""
    cs, cl = src[: s.cache_batch], lens[: s.cache_batch]
    nc = cs.size(0)

    def incremental() -> torch.Tensor:
        with torch.inference_mode():
            state = model.init_state(model.encode(cs, cl), 1)
            prev, toks = torch.full((nc,), model.bos_id), []
            for _ in range(s.cache_len):
                lp, state = model.step(prev, state)  # (B, V)
                prev = lp.argmax(-1)
                toks.append(prev)
            return torch.stack(toks, 1)  # (B, L)

    def recompute() -> torch.Tensor:
        with torch.inference_mode():
            prefix = torch.full((nc, 1), model.bos_id)  # (B, t)
            for _ in range(s.cache_len):
                logits = model(cs, cl, prefix)  # (B, t, V)
                nxt = torch.log_softmax(logits[:, -1].float(), -1).argmax(-1)  # (B,)
                prefix = torch.cat([prefix, nxt[:, None]], 1)
            return prefix[:, 1:]

    out = {"cache_tokens_identical": bool(torch.equal(incremental(), recompute()))}  # warm-up
    cache_fns = {"greedy_cached": incremental, "greedy_recompute": recompute}
    return out, median_times(cache_fns, s.cache_repeats, warmup=False)
