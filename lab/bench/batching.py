"""What sorting a split by source length into batches buys, on one trained model::

    python -m lab.bench.batching RUN_DIR --out FILE.json [--repeats 2] [--batch-size 100]

The lab decodes a split in batches of sentences sorted by source length (``sentence_batches``,
as fairseq and CTranslate2 do) and puts the outputs back in the split's order. This decodes the
run's split with the run's search both ways, sorted and in the split's own order (consecutive
sentences per batch), in ABBA order in one process; the JSON holds each side's median wall
time, the speedup (file order / sorted) and the share of identical outputs (batch invariance
says all of them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lab.bench import run_pair
from lab.ct2.parity import run_inputs
from lab.data import Pair, pad, sentence_batches
from lab.search.contracts import call_search


def in_file_order(pairs: Sequence[Pair], batch_size: int) -> list[list[Pair]]:
    """Batches of consecutive sentences, in the split's own order."""
    return [list(pairs[i : i + batch_size]) for i in range(0, len(pairs), batch_size)]


def decode(model: Any, search: Any, batches: list[list[Pair]]) -> tuple[dict[int, tuple], float]:
    """The best output's tokens by pair index, and the wall time of decoding every batch."""
    out: dict[int, tuple] = {}
    started = time.perf_counter()
    for batch in batches:
        src, lengths = pad([p.src for p in batch])
        res = call_search(search, model, src, lengths, [p.index for p in batch])
        out.update((p.index, nbest[0].tokens) for p, nbest in zip(batch, res.nbest, strict=True))
    return out, time.perf_counter() - started


def compare(run_dir: Path, repeats: int, batch_size: int) -> dict[str, Any]:
    """The figures of the module docstring for ``run_dir``."""
    model, search, pairs, *_ = run_inputs(run_dir)
    ways = {
        "sorted": sentence_batches(pairs, batch_size),
        "file_order": in_file_order(pairs, batch_size),
    }
    order = run_pair.abba("sorted", "file_order", repeats)
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    outputs: dict[str, dict[int, tuple]] = {}
    with torch.inference_mode():
        for way in order:
            outputs[way], took = decode(model, search, ways[way])
            seconds[way].append(took)
    same = sum(outputs["sorted"][i] == outputs["file_order"][i] for i in outputs["sorted"])
    out = run_pair.timings(run_dir, len(pairs), batch_size, repeats, seconds)
    median = out["median_s"]
    out["sorting_speedup"] = median["file_order"] / median["sorted"]
    out["identical"] = same / len(pairs)
    return out


def main(argv: list[str] | None = None) -> None:
    shown = ("median_s", "sorting_speedup", "identical")
    run_pair.main("lab.bench.batching", __doc__, compare, shown, argv)


if __name__ == "__main__":
    main()
