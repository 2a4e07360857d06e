"""What ``lab.bench.int8`` and ``lab.bench.batching`` share: two ways of decoding one run's split,
timed in ABBA order in one process, and the command line that writes their JSON."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lab.bench.common import environment
from lab.io import atomic_write_text


def abba(first: str, second: str, repeats: int) -> list[str]:
    """``first, second, second, first, ...``: ``repeats`` decodes of each, so that a drift in
    machine load hits both alike."""
    pairs = ((first, second), (second, first))
    return [name for r in range(repeats) for name in pairs[r % 2]]


def timings(
    run_dir: Path, n: int, batch_size: int, repeats: int, seconds: dict[str, list[float]]
) -> dict[str, Any]:
    """What every pair's JSON opens with: the run, its size and settings, each way's seconds
    per repeat and their medians."""
    return {
        "run": str(run_dir),
        "n": n,
        "batch_size": batch_size,
        "repeats": repeats,
        "seconds": seconds,
        "median_s": {way: statistics.median(v) for way, v in seconds.items()},
    }


def main(
    module: str,
    doc: str | None,
    compare: Callable[[Path, int, int], dict[str, Any]],
    shown: tuple[str, ...],
    argv: list[str] | None = None,
) -> None:
    """``python -m MODULE RUN_DIR --out FILE [--repeats] [--batch-size] [--threads]``: the
    figures of ``compare(run_dir, repeats, batch_size)`` with the environment and the command,
    written as JSON; the ``shown`` keys printed."""
    a = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    a.add_argument("run_dir", type=Path)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--repeats", type=int, default=2)
    a.add_argument("--batch-size", type=int, default=100)
    a.add_argument("--threads", type=int, default=1)
    args = a.parse_args(argv)
    torch.set_num_threads(args.threads)
    figures = compare(args.run_dir, args.repeats, args.batch_size)
    figures["environment"] = environment(args.threads)
    figures["command"] = (
        f"python -m {module} {args.run_dir} --batch-size {args.batch_size} --repeats {args.repeats}"
    )
    atomic_write_text(args.out, json.dumps(figures, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: figures[k] for k in shown}))
