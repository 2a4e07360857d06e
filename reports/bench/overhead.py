"""Where beam 5's time goes beyond the model's forward passes, part by part.

    python reports/bench/overhead.py --out reports/bench/levers/overhead_parts.json

The `lab bench` full-mode model and batch (random lab Transformer, d_model 256, 3+3 layers,
vocabulary 8000, 32 sentences), outputs forced to 30 tokens as in the levers table, one torch
thread. Each part of a beam step (the model's step and reorder, the logits processors, the
stepper's candidate selection and finished-pool updates) is wrapped in a wall-clock timer, and
the search is timed over `--repeats` calls after a warm-up; a part's share is its time over
the calls' total. The timers add a little time of their own to every call they wrap, so the
shares are a breakdown, not a speed figure: `lab bench`'s `search_overhead_beam5` is that.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import lab.search.beam.beam_search as beam_search
import lab.search.beam.finished as finished
import lab.search.driver as driver
from lab.bench.common import (
    MODES,
    build_transformer,
    environment,
    fixed_length,
    random_batch,
    write_json,
)
from lab.registry import SEARCHES

PARTS: tuple[tuple[Any, str, str], ...] = (  # (owner, attribute, label)
    (driver, "apply", "processors"),
    (beam_search.BeamStepper, "advance", "stepper (all of advance)"),
    (beam_search, "top_candidates", "candidate selection (top 2K)"),
    (finished.FinishedPool, "add_stuck", "stuck rows into the pool"),
    (finished.FinishedPool, "add_step", "ended rows into the pool"),
    (beam_search.StopView, "of", "stop rule's view"),
)


def timed(fn: Callable[..., Any], label: str, acc: dict[str, float]) -> Callable[..., Any]:
    """``fn`` adding its wall time to ``acc[label]``."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] = acc.get(label, 0.0) + time.perf_counter() - start

    return run


def measure(repeats: int) -> dict[str, Any]:
    s = MODES["full"]
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    beam = SEARCHES.build("beam", beam_size=5, **fixed_length(30, model.eos_id))
    acc: dict[str, float] = {}
    for owner, name, label in PARTS:
        setattr(owner, name, timed(getattr(owner, name), label, acc))
    model.step = timed(model.step, "model step", acc)
    model.reorder = timed(model.reorder, "model reorder", acc)
    with torch.inference_mode():
        beam(model, src, lens)  # warm-up
        acc.clear()
        start = time.perf_counter()
        for _ in range(repeats):
            beam(model, src, lens)
        total = time.perf_counter() - start
    return {
        "repeats": repeats,
        "call_s": total / repeats,
        "parts": {k: {"call_s": v / repeats, "share": v / total} for k, v in acc.items()},
    }


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("--repeats", type=int, default=5)
    a.add_argument("--out", type=Path)
    args = a.parse_args()
    torch.set_num_threads(1)
    command = "python reports/bench/overhead.py"
    out = {"environment": environment(1), "command": command} | measure(args.repeats)
    write_json(out, args.out)


if __name__ == "__main__":
    main()
