"""The search figures of ``lab bench``: what sampling, stochastic beam, diverse beam, MBR and
exact search cost, on the bench Transformer, each against a baseline timed in the same run.

On the first ``s.search_batch`` sentences of the bench batch, outputs forced to ``s.out_len``
tokens (so every row of every search runs every step, and the searches do equal work), each
ratio the median over at least ``SEARCH_ROUNDS`` interleaved rounds of the two times measured
in the same round (these workloads are small, and a ratio of medians over 3 rounds moved by
0.3 between quiet runs of the same code):

- ``sample_overhead_n16``: ``sample`` with 16 samples per sentence / the forward passes alone
  of 16 rows per sentence (``encode`` once, ``step`` per token, no reorder: sampling moves no
  rows); ``sample_apart_layout_n16``: the part of it that is the layout, the same forward
  passes with each row its own batch entry (``rows_apart``, as ``sample`` decodes) / grouped;
- ``stochastic_beam_vs_beam10`` and ``diverse_beam_vs_beam10``: k=10 (diverse: 10 groups of
  one) / ``beam`` k=10; ``beam10_overhead``: beam 10 / its forward passes with a reorder;
- ``mbr_selection_share``: MBR over 32 samples (natural stopping at the same limit): the
  selection's seconds (detokenizing, scoring, ranking) / the generation's (median of repeats);
- ``exact_expansions_per_s`` and ``exact_vs_beam4``: ``exact`` on the first few sentences
  under a node budget (limit ``s.out_len``): prefixes expanded per second, and its time / the
  time of ``beam`` k=4 on the same sentences and limit.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
from lab.search.contracts import call_search
from lab.search.driver import rows_apart

SEARCH_ROUNDS = 7  # at least: each ratio is a median over this many paired rounds


def forward_only(
    model: Any, src: Any, lens: Any, rows: int, steps: int, reorder: bool, apart: bool = False
) -> Any:
    """The forward passes alone of ``rows`` rows per sentence over ``steps`` tokens; with
    ``reorder``, one trivial reorder per step (the cache copy a beam search makes); with
    ``apart``, each row its own batch entry, as ``sample`` decodes them (``rows_apart``)."""
    n = src.size(0)
    feed = torch.randint(4, model.tgt_vocab_size, (steps, n * rows))  # (L, B*R) fixed inputs
    same = torch.arange(n * rows)  # (B*R,)

    def run() -> None:
        with torch.inference_mode():
            state = model.init_state(model.encode(src, lens), rows)
            state = rows_apart(state, n) if apart else state
            prev = torch.full((n * rows,), model.bos_id)
            for t in range(steps):
                _, state = model.step(prev, state)
                if reorder:
                    state = model.reorder(state, same)
                prev = feed[t]

    return run


def searching(name: str, model: Any, src: Any, lens: Any, **settings: Any) -> Callable[[], Any]:
    """One call of the search ``name`` on the batch, with the inputs it asks for."""
    search = SEARCHES.build(name, **settings)
    keys = list(range(src.size(0)))

    def run() -> Any:
        with torch.inference_mode():
            return call_search(search, model, src, lens, keys, detokenize=_detok)

    return run


def _detok(ids: Any) -> str:
    return " ".join(str(i) for i in ids)


def bench_searches(s: Settings) -> dict[str, Any]:
    """The figures of the module docstring, with their raw medians under ``times_s``."""
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    src, lens = src[: s.search_batch], lens[: s.search_batch]
    src = src[:, : int(lens.max())]
    fixed = fixed_length(s.out_len, model.eos_id)
    fixed_sb = {"max_len_a": 0, "max_len_b": s.out_len, "min_len": s.out_len}
    fns = {
        "sample_n16": searching("sample", model, src, lens, num_samples=16, **fixed),
        "floor_n16": forward_only(model, src, lens, 16, s.out_len, reorder=False),
        "floor_n16_apart": forward_only(model, src, lens, 16, s.out_len, False, apart=True),
        "beam10": searching("beam", model, src, lens, beam_size=10, **fixed),
        "floor_beam10": forward_only(model, src, lens, 10, s.out_len, reorder=True),
        "stochastic_beam10": searching(
            "stochastic_beam", model, src, lens, beam_size=10, **fixed_sb
        ),
        "diverse_beam10": searching("diverse_beam", model, src, lens, beam_size=10, **fixed),
    }
    rounds = round_times(fns, max(s.repeats, SEARCH_ROUNDS))
    times = {n: statistics.median(v) for n, v in rounds.items()}
    out: dict[str, Any] = {
        "sample_overhead_n16": paired_ratio(rounds["sample_n16"], rounds["floor_n16"]),
        "sample_apart_layout_n16": paired_ratio(rounds["floor_n16_apart"], rounds["floor_n16"]),
        "beam10_overhead": paired_ratio(rounds["beam10"], rounds["floor_beam10"]),
        "stochastic_beam_vs_beam10": paired_ratio(rounds["stochastic_beam10"], rounds["beam10"]),
        "diverse_beam_vs_beam10": paired_ratio(rounds["diverse_beam10"], rounds["beam10"]),
        "search_rounds": len(rounds["beam10"]),
        "search_rounds_s": rounds,  # every round's times, which the ratios are medians of
    }
    out["mbr_selection_share"] = _mbr_share(s, model, src, lens)
    exact_out, exact_times = _exact(s, model, src, lens)
    out.update(exact_out)
    out["times_s"] = times | exact_times
    return out


def _mbr_share(s: Settings, model: Any, src: Any, lens: Any) -> float:
    """Median over repeats of MBR's selection seconds / generation seconds, 32 samples."""
    limit = {"max_len_a": 0, "max_len_b": s.out_len}
    candidates = {"name": "sample", "num_samples": 32, **limit}
    run = searching("mbr", model, src, lens, candidates=candidates)
    run()  # warm-up
    shares = []
    for _ in range(s.repeats):
        cost = run().cost
        shares.append(cost.selection_seconds / cost.generation_seconds)
    return statistics.median(shares)


def _exact(s: Settings, model: Any, src: Any, lens: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """``exact`` under a node budget and beam 4 on the first few sentences, one timed call each
    after a warm-up of beam 4."""
    few = min(4, src.size(0))
    src, lens = src[:few], lens[:few]
    limit = {"max_len_a": 0, "max_len_b": s.out_len}
    exact = searching("exact", model, src, lens, budget=s.exact_budget, **limit)
    beam4 = searching("beam", model, src, lens, beam_size=4, **limit)
    beam4_s = median_times({"beam4": beam4}, max(s.repeats, 1))["beam4"]
    start = time.perf_counter()
    result = exact()
    exact_s = time.perf_counter() - start
    proved = sum(bool(h.proved_optimal) for h in result.best()) / few
    out = {
        "exact_expansions_per_s": result.cost.expanded / exact_s,
        "exact_vs_beam4": exact_s / beam4_s,
        "exact_proved_share": proved,
    }
    return out, {"exact": exact_s, "beam4_exact_sentences": beam4_s}
