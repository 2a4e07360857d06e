"""A run's predictions as (id, hypothesis, references) triples, read and aligned by id.

Paired tests and exports rescore a run from its ``predictions.jsonl``; a missing file, a row
without ``id``/``hyp``/``ref`` or two runs that decoded different examples are errors that
name the file and the fix, never a ``KeyError`` or a silently misaligned comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.results import PREDICTIONS, RESULTS, read_predictions


@dataclass(frozen=True)
class Prediction:
    """One example of a run: its id, the hypothesis and every reference (first one first)."""

    id: Any
    hyp: str
    refs: tuple[str, ...]


def _missing_error(run_dir: Path) -> LabError:
    runs = sorted(p.parent for p in run_dir.rglob(RESULTS)) if run_dir.is_dir() else []
    if runs:
        return LabError(
            f"{run_dir} holds {len(runs)} runs but no {PREDICTIONS} of its own; pass one run "
            f"directory, e.g. {runs[0]}."
        )
    return LabError(
        f"no {PREDICTIONS} in {run_dir}; pass a run directory that `lab run` completed "
        f"(it holds {PREDICTIONS} and {RESULTS})."
    )


def _prediction(row: Any, path: Path, line: int) -> Prediction:
    if not isinstance(row, dict) or not all(k in row for k in ("id", "hyp", "ref")):
        raise LabError(
            f"{path} line {line} has no id, hyp and ref; it was not written by `lab run` "
            "(rerun the run to rewrite it)."
        )
    refs = row["ref"] if isinstance(row["ref"], list) else [row["ref"]]
    return Prediction(row["id"], str(row["hyp"]), tuple(str(r) for r in refs))


def read_run(run_dir: str | Path) -> list[Prediction]:
    """The predictions of ``run_dir`` in file order; ``LabError`` when they cannot be used."""
    run_dir = Path(run_dir)
    path = run_dir / PREDICTIONS
    if not path.is_file():
        raise _missing_error(run_dir)
    try:
        rows = read_predictions(run_dir)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabError(f"cannot read {path} ({exc}); rerun the run to rewrite it.") from None
    preds = [_prediction(row, path, i) for i, row in enumerate(rows, start=1)]
    if not preds:
        raise LabError(f"{path} holds no prediction; rerun the run to rewrite it.")
    ids = [p.id for p in preds]
    if len(set(map(str, ids))) != len(ids):
        raise LabError(f"{path} repeats example ids; rerun the run to rewrite it.")
    return preds


def align(preds: list[Prediction], base: list[Prediction], run: Path, base_run: Path) -> list[str]:
    """The hypotheses of ``preds`` in the order of ``base``'s ids.

    Raises ``LabError`` unless both runs decoded the same examples with the same references.
    """
    by_id = {str(p.id): p for p in preds}
    base_ids = {str(p.id) for p in base}
    unmatched = sorted(base_ids.symmetric_difference(by_id))
    if unmatched:
        raise LabError(
            f"{run} and its baseline {base_run} decoded different examples ({len(unmatched)} "
            f"ids in only one of them, e.g. {unmatched[0]!r}); compare runs of the same "
            "eval.split and eval.limit."
        )
    for b in base:
        if by_id[str(b.id)].refs != b.refs:
            raise LabError(
                f"{run} and its baseline {base_run} have different references for example "
                f"{b.id!r}; compare runs of the same task and split."
            )
    return [by_id[str(b.id)].hyp for b in base]
