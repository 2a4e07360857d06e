"""Two runs of an exact search (``exact``, ``best_first``) on the same model and examples,
compared: what each took, which sentences each proved, and whether their outputs agree::

    python -m lab.bench.exact_compare BEFORE_RUN AFTER_RUN --out FILE.json

A change to how the search explores (its order, its frontier, its kernels) must leave every
proved sentence's output as it was, and prove the same sentences; a sentence that ran out of
budget returns the best it found, which the exploration order may change, so those are counted
apart. The JSON holds both runs' decode seconds (``results.json``) and their ratio, the proved
counts and whether the sets are equal, both runs' ``step`` calls and expansions, the share of
identical outputs over all sentences and over those proved by both, the largest log-prob gap
among the identical ones, the ids whose output differs, and each run's search settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.io import atomic_write_text
from lab.results import PREDICTIONS, load_results, read_predictions


def _rows(run: Path) -> dict[Any, dict[str, Any]]:
    """A run's predictions by id, each with its ``proved_optimal`` flag."""
    path = run / PREDICTIONS
    if not path.is_file():
        raise LabError(f"{path} is missing; pass a completed `lab run` of search=exact.")
    rows = read_predictions(run)
    if not all("proved_optimal" in r for r in rows):
        raise LabError(f"{path} has no proved_optimal flags; pass a run of an exact search.")
    return {r["id"]: r for r in rows}


def compare(before: Path, after: Path) -> dict[str, Any]:
    """The figures of the module docstring."""
    a, b = _rows(before), _rows(after)
    if a.keys() != b.keys():
        raise LabError(f"{before} and {after} decoded different examples; compare like runs.")
    same = [i for i in a if a[i]["hyp"] == b[i]["hyp"] and a[i]["length"] == b[i]["length"]]
    proved_a = {i for i, r in a.items() if r["proved_optimal"]}
    proved_b = {i for i, r in b.items() if r["proved_optimal"]}
    both = proved_a & proved_b
    results = {name: load_results(run) for name, run in (("before", before), ("after", after))}
    seconds = {name: r["metrics"]["decode_seconds"] for name, r in results.items()}
    counts = {
        key: {name: r["metrics"].get(f"cost_{key}") for name, r in results.items()}
        for key in ("steps", "expanded")
    }
    return {
        "runs": {"before": str(before), "after": str(after)},
        "n": len(a),
        "decode_seconds": seconds,
        "speedup": seconds["before"] / seconds["after"],
        **counts,
        "proved": {"before": len(proved_a), "after": len(proved_b)},
        "same_proved_set": proved_a == proved_b,
        "identical": len(same) / len(a),
        "identical_proved": sum(i in both for i in same) / max(len(both), 1),
        "max_logprob_gap_identical": max(
            (abs(a[i]["logprob"] - b[i]["logprob"]) for i in same), default=0.0
        ),
        "differing_ids": sorted((i for i in a if i not in set(same)), key=str),
        "search": {name: r["config"]["search"] for name, r in results.items()},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lab.bench.exact_compare", description=__doc__)
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    figures = compare(args.before, args.after)
    figures["command"] = f"python -m lab.bench.exact_compare {args.before} {args.after}"
    atomic_write_text(args.out, json.dumps(figures, indent=1, sort_keys=True) + "\n")
    keys = ("speedup", "proved", "same_proved_set", "identical", "identical_proved")
    print(json.dumps({k: figures[k] for k in keys}))


if __name__ == "__main__":
    try:
        main()
    except LabError as e:
        raise SystemExit(f"error: {e}") from None
