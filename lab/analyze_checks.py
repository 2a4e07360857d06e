"""What ``lab analyze`` insists on before it sets runs beside an exact run: the same model,
task, split and examples, and the same ranking settings, so that a rate counts only what the
search got wrong. Run files are read tolerantly: a truncated ``predictions.jsonl`` (a run
killed while a copy was made, a disk that filled) loses its broken lines with a warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.results import PREDICTIONS

# search settings that change which output ranks first, with the value that changes nothing;
# None: compared only where both runs have the key (the output length limits)
RANKING: dict[str, Any] = {
    "min_len": 0,
    "max_len_a": None,
    "max_len_b": None,
    "penalty": "none",
    "alpha": None,
    "word_reward": 0.0,
    "processors": [],
}


class TruncatedFileWarning(UserWarning):
    """A line of a run's file that is not JSON was left out."""


def read_rows(run_dir: Path) -> tuple[list[dict[str, Any]], bool]:
    """The rows of ``predictions.jsonl`` that parse, and whether any line did not (each
    such line is named in a ``TruncatedFileWarning``)."""
    path = Path(run_dir) / PREDICTIONS
    rows, broken = [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                warnings.warn(
                    f"{path} line {number} is not JSON ({e.msg}; a truncated file?); left out",
                    TruncatedFileWarning,
                    stacklevel=2,
                )
                broken = True
                continue
            if isinstance(row, dict) and "id" in row:
                rows.append(row)
    return rows, broken


def ranking(results: Mapping[str, Any]) -> dict[str, Any]:
    """The run's ranking settings (a preset's resolved knobs win over its config); a length
    penalty of ``none`` makes ``alpha`` irrelevant, so it is dropped."""
    search = dict((results.get("config") or {}).get("search") or {})
    search.update(results.get("search_settings") or {})
    out = {}
    for key, neutral in RANKING.items():
        value = search.get(key, neutral)
        if value is not None:
            out[key] = value
    if out.get("penalty", "none") in ("none", None):
        out.pop("alpha", None)
    return out


def check_ranking(run_dir: Path, res: Mapping[str, Any], exact: Mapping[str, Any]) -> None:
    """Refuse a run that ranks outputs by other settings than the exact run."""
    mine, theirs = ranking(res), ranking(exact)
    for key in RANKING:
        if key in mine and key in theirs and mine[key] != theirs[key]:
            raise LabError(
                f"{run_dir} has search.{key}={mine[key]!r}, the exact run search.{key}="
                f"{theirs[key]!r}; analyze runs ranked by the same settings (set search.{key} "
                "alike in both)."
            )


def check_same(
    exact_dir: Path, exact_run: tuple, runs: dict[Path, tuple], truncated: set[Path]
) -> None:
    """Refuse runs of another model, task, split, ranking or other examples than the exact
    run; runs with a truncated file need only decode a subset of the other's examples."""
    exact, exact_preds = exact_run
    if exact.get("search") != "exact":
        raise LabError(
            f"--exact {exact_dir} is a search={exact.get('search')} run; pass a search=exact run."
        )
    ids = {str(r["id"]) for r in exact_preds}
    for run_dir, (res, preds) in runs.items():
        for key in ("model", "checkpoint", "task", "split"):
            if res.get(key) != exact.get(key):
                raise LabError(
                    f"{run_dir} has {key}={res.get(key)}, the exact run {key}={exact.get(key)}; "
                    "analyze runs of one model on one split."
                )
        check_ranking(run_dir, res, exact)
        mine = {str(r["id"]) for r in preds}
        cut = run_dir in truncated or exact_dir in truncated
        if mine != ids and not (cut and (mine <= ids or ids <= mine)):
            raise LabError(
                f"{run_dir} decoded other examples than {exact_dir}; "
                "use the same eval.split and eval.limit."
            )


def check_score(score: str, exact_dir: Path, exact: tuple, runs: dict[Path, tuple]) -> None:
    """Refuse, in one line, a ``--score`` field some run's outputs do not carry (the exact
    run must carry the reference's too, ``ref_<score>``, where it has a reference score)."""
    for run_dir, (_, rows) in {exact_dir: exact, **runs}.items():
        if any(score not in r for r in rows):
            raise LabError(
                f"{run_dir}'s outputs have no {score!r}; --score names a field every run's "
                "predictions.jsonl has (logprob; fused_logprob for model=fusion runs)."
            )
    rows = exact[1]
    if any("ref_logprob" in r and f"ref_{score}" not in r for r in rows):
        raise LabError(
            f"{exact_dir}'s outputs have no ref_{score}; rerun it with this lab, which scores "
            "the references as it scores the outputs."
        )
