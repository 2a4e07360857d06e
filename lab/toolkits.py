"""``lab toolkits``: how much the toolkits' beam-search defaults change what one model says.

Given run directories (or sweep directories) that decoded the same examples with the same model
under different searches (the toolkit presets ``beam_hf``, ``beam_fairseq``, ``beam_onmt``,
``beam_ct2``, the lab's ``beam``...), writes into ``--out`` (default ``<first path>/report``):

* ``toolkits.md``: the runs table, then the pairs matrix, both readable;
* ``toolkits.csv``: one row per run: its label (search, and run name where two runs share a
  search; the search again where it is not the label), the beam size and stop rule it ran with
  (a preset's resolved from ``lab.search.beam.presets``), BLEU, length ratio, empty rate, n;
* ``toolkits_pairs.csv``: one row per pair of runs: the share of examples whose output differs.

Runs of different models, checkpoints, tasks or splits are refused (one line naming the key),
as are runs that decoded different examples: the comparison is of searches, nothing else.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lab.errors import LabError
from lab.io import atomic_write_text
from lab.metrics import compute_metrics
from lab.report import ReportNote, SkippedRunWarning, default_out, load_runs
from lab.report.checks import no_runs_error
from lab.report.predictions import Prediction, align, read_run
from lab.report.render import Table
from lab.report.tables import run_names
from lab.results import load_results

SAME = ("task", "model", "checkpoint", "split")  # what the runs must share
METRICS = ("bleu", "len_ratio", "empty_rate")
SETTINGS = ("beam_size", "stop_rule")


@dataclass(frozen=True)
class Run:
    """One run: its label in the tables, search, settings, metrics and predictions."""

    label: str
    run_dir: Path
    search: str
    settings: Mapping[str, Any]
    metrics: Mapping[str, Any]
    preds: list[Prediction]


def search_settings(search: Mapping[str, Any]) -> dict[str, Any]:
    """A run's search settings: its config, a preset's resolved by ``lab.search.beam.presets``."""
    from lab.search.beam.presets import PRESETS, resolve

    name = str(search.get("name", ""))
    keys = {k: v for k, v in search.items() if k != "name"}
    preset = name.removeprefix("beam_")
    if name.startswith("beam_") and preset in PRESETS:
        try:
            return resolve(preset, keys)
        except LabError:  # a config this version cannot resolve: show what was recorded
            return keys
    return keys


def _metrics(recorded: Mapping[str, Any], preds: list[Prediction]) -> dict[str, Any]:
    """BLEU, length ratio and empty rate as the run recorded them, else from its predictions."""
    out = {k: recorded.get(k) for k in METRICS}
    if any(v is None for v in out.values()):
        hyps, refs = [p.hyp for p in preds], [list(p.refs) for p in preds]
        computed = compute_metrics(["bleu", "length"], hyps, refs)
        out = {k: computed.get(k) if v is None else v for k, v in out.items()}
    return out


def _check_same(df: pd.DataFrame) -> None:
    for key in SAME:
        if key in df.columns and df[key].astype(str).nunique() > 1:
            values = ", ".join(sorted(df[key].astype(str).unique()))
            raise LabError(
                f"the runs differ in {key} ({values}); lab toolkits compares searches of one"
                f" model on one split: pass runs that share their {key}."
            )


def load(paths: Sequence[str | Path]) -> list[Run]:
    """The completed runs under ``paths``, labelled by search (plus run name where two share
    one), their predictions aligned to the first run's example order."""
    df = load_runs(paths)
    if df.empty:
        raise no_runs_error(f" under {', '.join(str(p) for p in paths)}")
    if len(df) < 2:
        raise LabError("lab toolkits compares runs: pass two or more run directories.")
    _check_same(df)
    names, searches = run_names(df), [str(s) for s in df["search"]]
    runs: list[Run] = []
    for run_dir, name, search in zip(df["run_dir"], names, searches, strict=True):
        results = load_results(Path(run_dir))
        preds = read_run(run_dir)
        if runs:
            hyps = align(preds, runs[0].preds, Path(run_dir), runs[0].run_dir)
            preds = [Prediction(b.id, h, b.refs) for b, h in zip(runs[0].preds, hyps, strict=True)]
        label = search if searches.count(search) == 1 else f"{search} ({name})"
        settings = search_settings((results.get("config") or {}).get("search") or {})
        metrics = _metrics(results.get("metrics") or {}, preds)
        runs.append(Run(label, Path(run_dir), search, settings, metrics, preds))
    return runs


def differ(a: Run, b: Run) -> float:
    """Share of examples (aligned by id) whose output differs between runs ``a`` and ``b``."""
    return sum(x.hyp != y.hyp for x, y in zip(a.preds, b.preds, strict=True)) / len(a.preds)


def tables(runs: list[Run]) -> tuple[Table, Table, Table]:
    """The runs table, the pairs table (CSV) and the pairs matrix (Markdown)."""
    rows = [
        {"run": r.label, "search": r.search, **{k: r.settings.get(k) for k in SETTINGS}}
        | dict(r.metrics)
        | {"n": len(r.preds)}
        for r in runs
    ]
    runs_df = pd.DataFrame(rows)
    if runs_df["run"].equals(runs_df["search"]):  # every label is its search's name
        runs_df = runs_df.drop(columns="search")
    pairs = pd.DataFrame(
        [
            {"a": a.label, "b": b.label, "differ": differ(a, b), "n": len(a.preds)}
            for a, b in itertools.combinations(runs, 2)
        ]
    )
    labels = [r.label for r in runs]
    matrix = pd.DataFrame(
        [[None if a is b else differ(a, b) for b in runs] for a in runs], columns=labels
    )
    matrix.insert(0, "run", labels)
    caption = "Toolkit presets on one model: quality, length and emptiness of the outputs."
    return (
        Table(runs_df, METRICS, caption, counts=("n", "beam_size")),
        Table(pairs, ("differ",), "Share of examples whose output differs.", counts=("n",)),
        Table(matrix, labels, "Share of examples whose output differs, per pair of runs."),
    )


def write(runs: list[Run], out: Path, name: str = "toolkits") -> list[Path]:
    """Write ``<name>.md``, ``<name>.csv`` and ``<name>_pairs.csv`` into ``out``."""
    runs_t, pairs_t, matrix_t = tables(runs)
    markdown = f"{runs_t.markdown()}\n\n{matrix_t.markdown()}\n"
    return [
        atomic_write_text(out / f"{name}.md", markdown),
        atomic_write_text(out / f"{name}.csv", runs_t.csv()),
        atomic_write_text(out / f"{name}_pairs.csv", pairs_t.csv()),
    ]


def cmd_toolkits(argv: list[str]) -> None:
    """``lab toolkits RUN_OR_SWEEP_DIRS [--out DIR] [--name NAME]``."""
    p = argparse.ArgumentParser(
        prog="lab toolkits",
        description="Compare runs of one model under toolkit presets (BLEU, length, emptiness,"
        " and how often each pair's outputs differ).",
    )
    p.add_argument("paths", nargs="+", help="run or sweep directories")
    p.add_argument("--out", default=None, help="output directory (default: <first path>/report)")
    p.add_argument("--name", default="toolkits", help="file name prefix")
    a = p.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedRunWarning)
        warnings.simplefilter("always", ReportNote)
        runs = load(a.paths)
    for w in caught:
        kind = "note" if issubclass(w.category, ReportNote) else "warning"
        print(f"{kind}: {w.message}", file=sys.stderr)
    out = Path(a.out) if a.out else default_out(a.paths)
    for path in write(runs, out, a.name):
        print(path)
