"""The files of reports/ that are not ``lab report`` tables, rebuilt from their committed data.

* ``search_errors/[gru/]analysis_rates.{md,csv,tex,png}``: the rates recomputed from
  ``analysis_sentences.csv`` (one row per sentence and run) with ``lab.analyze.rates``; the
  runs' own metrics (BLEU, length ratio, the exact run's) are the non-rate columns of the
  committed ``analysis_rates.csv``, the only place they are kept.
* ``babi/babi_joint_vs_anchors.{md,csv}``: ``reports/babi/anchors.py`` on the rebuilt
  ``babi_joint_error_runs.csv``.
* ``bench/bench.md``, ``bench/levers/levers.md`` and ``throughput/throughput.md``: rendered
  from their JSON.
* ``toolkits/toolkits_*.md`` and ``multimodel/speculative/speculative_outputs.md``: rendered
  from the ``lab toolkits`` CSVs beside them (the runs, and the share of differing outputs per
  pair of runs).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd

from lab.analyze import RATES, TOL, plot, rates
from lab.bench.levers_table import render_levers
from lab.bench.render import render_md, render_throughput
from lab.io import atomic_write, atomic_write_text
from lab.report.render import Table
from lab.toolkits import METRICS as TOOLKIT_METRICS

RATE_DIRS = (
    "search_errors",
    "search_errors/gru",
    "search_errors/ls0",
    "search_errors/seeds/seed1",
    "search_errors/seeds/seed2",
    "multimodel/search_errors/seed0",  # each seed's beam 5 against its exact search
    "multimodel/search_errors/seed1",
    "multimodel/search_errors/seed2",
    "multimodel/search_errors/ensemble",  # the first 200 sentences
    "multimodel/search_errors/fusion_w0.0",  # LM fusion, by the fused score, 200 sentences
    "multimodel/search_errors/fusion_w0.2",
)
_RUN_METRICS = ("run", "search", "beam_size", "bleu", "len_ratio", "exact_bleu", "exact_len_ratio")
_SENTENCE = (
    "hyp_logprob exact_logprob ref_logprob proved_optimal hyp_length exact_length ref_length "
    "exact_is_ref"
).split()
TOOLKIT_TABLES = (  # what `lab toolkits` wrote: <dir>/<name>.csv and <name>_pairs.csv
    "toolkits/toolkits_defaults",
    "toolkits/toolkits_beam5",
    "multimodel/speculative/speculative_outputs",
    "multimodel/speculative/narrow/narrow_outputs",
)


def load_script(path: Path) -> ModuleType:
    """A script of reports/ (not a package) imported by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rate_rows(sentences: pd.DataFrame) -> pd.DataFrame:
    """Each run's rates (``lab.analyze.rates``) from its sentence rows."""
    out = []
    for run, group in sentences.groupby("run", sort=False):
        rows = group[_SENTENCE].astype(object).where(group[_SENTENCE].notna(), None)
        out.append({"run": run, **rates(rows.to_dict("records"))})
    return pd.DataFrame(out)


def analysis_rates(src: Path, out: Path) -> list[Path]:
    """``analysis_rates.*`` of one ``lab analyze`` directory, rebuilt from its sentences."""
    sentences = pd.read_csv(src / "analysis_sentences.csv")
    committed = pd.read_csv(src / "analysis_rates.csv")
    found = rate_rows(sentences)
    table = committed[list(_RUN_METRICS)].merge(found, on="run", how="left", validate="1:1")
    table["exact_proved"] = table["n_proved"] / table["n"]
    table = table[list(committed.columns)]
    value_cols = [*RATES, "bleu", "len_ratio", "exact_proved", "exact_bleu", "exact_len_ratio"]
    t = Table(table, value_cols, _caption(src))
    written = [
        atomic_write_text(out / "analysis_rates.md", t.markdown()),
        atomic_write_text(out / "analysis_rates.csv", t.csv()),
        atomic_write_text(out / "analysis_rates.tex", t.latex()),
    ]
    fig = plot(table)
    if fig is not None:
        png = out / "analysis_rates.png"
        written.append(atomic_write(png, lambda f: fig.savefig(f, format="png", dpi=150)))
    return written


def _caption(src: Path) -> str:
    """The committed caption's exact-run path (the first line of ``analysis_rates.md``)."""
    first = (src / "analysis_rates.md").read_text(encoding="utf-8").splitlines()[0]
    prefix = "search and model errors against "
    exact = first.removeprefix(prefix).split(" (tolerance")[0]
    return f"{prefix}{exact} (tolerance {TOL:g} nats)"


def anchors(root: Path, out: Path) -> list[Path]:
    """``babi_joint_vs_anchors.{md,csv}`` by the section's own script, on the rebuilt runs."""
    script = root / "babi" / "anchors.py"
    runs = out / "babi" / "babi_joint_error_runs.csv"
    target = out / "babi" / "babi_joint_vs_anchors"
    subprocess.run(
        [sys.executable, str(script), str(runs), "--out", str(target)],
        check=True,
        capture_output=True,
    )
    return [target.with_suffix(".md"), target.with_suffix(".csv")]


def bench_pages(root: Path, out: Path) -> list[Path]:
    """``bench.md`` and ``throughput.md`` from ``bench.json`` and ``throughput.json``, and
    the ``bench.md`` of every further bench run kept as ``bench/<name>/bench.json``."""
    thr = json.loads((root / "throughput" / "throughput.json").read_text(encoding="utf-8"))
    written = [atomic_write_text(out / "throughput" / "throughput.md", render_throughput(thr))]
    for path in sorted((root / "bench").glob("**/bench.json")):
        bench = json.loads(path.read_text(encoding="utf-8"))
        page = out / path.relative_to(root).with_name("bench.md")
        page.parent.mkdir(parents=True, exist_ok=True)
        written.append(atomic_write_text(page, render_md(bench)))
    levers = root / "bench" / "levers"
    if (levers / "levers.json").is_file():
        code = json.loads((levers / "levers.json").read_text(encoding="utf-8"))
        int8, batching, exact = (
            {
                p.stem.removeprefix(kind).replace("_", " "): json.loads(p.read_text("utf-8"))
                for p in sorted(levers.glob(f"{kind}*.json"))
            }
            for kind in ("int8_", "batching_", "exact_")
        )
        page = out / "bench" / "levers" / "levers.md"
        page.parent.mkdir(parents=True, exist_ok=True)
        written.append(atomic_write_text(page, render_levers(code, int8, batching, exact)))
    return written


def toolkit_pages(root: Path, out: Path) -> list[Path]:
    """``toolkits_*.md`` (the runs table and the matrix of differing outputs) from their CSVs,
    as ``lab toolkits`` writes them."""
    written = []
    for name in TOOLKIT_TABLES:
        runs = pd.read_csv(root / f"{name}.csv").astype({"stop_rule": object})  # text, even empty
        pairs = pd.read_csv(root / f"{name}_pairs.csv")
        labels = list(runs["run"])
        share = {(a, b): d for a, b, d in zip(pairs["a"], pairs["b"], pairs["differ"], strict=True)}
        share |= {(b, a): d for (a, b), d in share.items()}
        matrix = pd.DataFrame(
            [[None if a == b else share[(a, b)] for b in labels] for a in labels], columns=labels
        )
        matrix.insert(0, "run", labels)
        caption = "Toolkit presets on one model: quality, length and emptiness of the outputs."
        runs_t = Table(runs, TOOLKIT_METRICS, caption, counts=("n", "beam_size"))
        matrix_t = Table(
            matrix, labels, "Share of examples whose output differs, per pair of runs."
        )
        text = f"{runs_t.markdown()}\n\n{matrix_t.markdown()}\n"
        written.append(atomic_write_text(out / f"{name}.md", text))
    return written
