"""Rebuild every generated file of ``reports/`` from the committed per-run data.

The data (kept in git, small): one ``results.json`` summary per run under ``<section>/runs/``
(what ``lab report`` reads) and, for the runs that paired tests compare, its
``sentence_stats.json.gz`` (``lab.report.sentence_stats``; ``python -m lab.rebuild.add`` adds
both), ``search_errors/**/analysis_sentences.csv`` (one row per sentence and run) with the
runs' metrics in ``analysis_rates.csv``, ``bench/bench.json``, ``bench/levers/*.json``,
``throughput/throughput.json``, the ``toolkits/`` CSVs and ``ct2_*.json``, and the dashboard's
predictions. Everything else that ``rebuild`` writes is derived, and ``drift`` compares a
rebuild with what is committed byte by byte (plots included: matplotlib's Agg output is
deterministic for one matplotlib version). Files neither derived nor data are the reports'
scripts and prose (``SOURCES``).
``python reports/build.py`` runs it.
"""

from __future__ import annotations

import filecmp
import fnmatch
import warnings
from pathlib import Path

from lab.rebuild import dashboard, derived
from lab.rebuild.babi_seeds import babi_seeds
from lab.rebuild.context import contexts
from lab.rebuild.ensemble_errors import ensemble_errors
from lab.rebuild.rate_intervals import rate_intervals
from lab.rebuild.seed_rates import rates_over_seeds
from lab.rebuild.specs import CONTEXT, table_specs
from lab.report import ReportNote, SkippedRunWarning, report

SOURCES = (  # committed files that are data or hand-written, not rebuilt
    "README.md",
    "*/runs/**/results.json",
    "*/runs/**/sentence_stats.json.gz",
    "*/seeds/**/results.json",
    "*/seeds/**/sentence_stats.json.gz",
    "dashboard/runs/**/predictions.jsonl",
    "search_errors/*analysis_sentences.csv",
    "search_errors/*analysis_rates.csv",
    "multimodel/search_errors/*analysis_sentences.csv",
    "multimodel/search_errors/*analysis_rates.csv",
    "bench/**/bench.json",
    "bench/levers/*.json",
    "bench/profiles/*.txt",
    "throughput/throughput.json",
    "toolkits/*.csv",
    "multimodel/speculative/*.csv",
    "multimodel/speculative/narrow/narrow_outputs*.csv",
    "toolkits/ct2_*.json",
    "*.py",
    "*.sh",
    "dashboard/dashboard.png",
)


def rebuild(root: Path, out: Path) -> list[Path]:
    """Write every derived file of the reports directory ``root`` into ``out`` (``root``
    itself to regenerate in place), at the same relative paths; returns them."""
    written: list[Path] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportNote)
        warnings.simplefilter("error", SkippedRunWarning)  # a summary that fails to load
        for spec in table_specs():
            written += report([root / d for d in spec.dirs], out / spec.out, **spec.options)
        written += contexts(root, out, CONTEXT)
    for sub in derived.RATE_DIRS:
        if (root / sub / "analysis_sentences.csv").is_file():
            written += derived.analysis_rates(root / sub, out / sub)
    written += rates_over_seeds(out)
    written += ensemble_errors(root, out)
    written += rate_intervals(root, out)
    written += babi_seeds(root, out)
    written += derived.anchors(root, out)
    written += derived.bench_pages(root, out)
    written += derived.toolkit_pages(root, out)
    written += dashboard.summaries(root, out)
    written += dashboard.page(out)
    return written


def is_source(relative: Path) -> bool:
    """True for a committed file that is data or prose (``SOURCES``), not rebuilt."""
    text = relative.as_posix()
    return any(
        fnmatch.fnmatch(text, pattern) or fnmatch.fnmatch(text, pattern.replace("**/", ""))
        for pattern in SOURCES
    )


def drift(root: Path, out: Path) -> list[str]:
    """Rebuild ``root`` into ``out`` and name every difference: a derived file that differs
    from the committed one or is not committed, and a committed file that is neither rebuilt
    nor a source (a table nothing regenerates)."""
    rebuilt = {p.resolve().relative_to(out.resolve()) for p in rebuild(root, out)}
    problems = []
    for rel in sorted(rebuilt):
        committed = root / rel
        if not committed.is_file():
            problems.append(f"{rel}: rebuilt but not committed")
        elif not filecmp.cmp(out / rel, committed, shallow=False):
            problems.append(f"{rel}: differs from its rebuild")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if rel not in rebuilt and not is_source(rel) and "__pycache__" not in rel.parts:
            problems.append(f"{rel}: committed but neither rebuilt nor a source")
    return problems
