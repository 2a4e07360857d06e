"""``lab analyze``: per sentence, is an error the search's or the model's? (Stahlberg & Byrne,
2019, "On NMT search errors and model errors: cat got your tongue?")

Each run's best output is set beside the exact search's (``search=exact``: the mode, when
``proved_optimal``) and the reference's forced-decoding score (``ref_logprob``), all natural
log-probabilities with EOS included. The rates are pure functions of those rows
(``sentence_row``, ``rates``); ``analyze`` loads the runs, checks that they decode the same
examples with the same model, and writes the tables and a plot against the beam size.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lab.analyze_checks import TruncatedFileWarning, check_same, check_score, read_rows
from lab.errors import LabError
from lab.io import atomic_write, atomic_write_text
from lab.report.render import Table
from lab.report.runs import SkippedRunWarning, find_runs, read_completed
from lab.results import RESULTS, read_results

TOL = 1e-4  # log-prob differences below this are numerical noise, not errors
RATES = ("search_error", "model_error", "empty_mode", "ref_above_hyp")


def sentence_row(
    hyp: dict[str, Any], exact: dict[str, Any], score: str = "logprob"
) -> dict[str, Any]:
    """One sentence of one run: its output's score beside the exact search's and the
    reference's (``hyp`` and ``exact`` are ``predictions.jsonl`` rows of the same ``id``).
    ``score``: the field compared, ``logprob`` or a part a fusion run reports beside it
    (``fused_logprob``, the objective its search ranked by; the reference's is ``ref_<score>``);
    the columns keep their ``_logprob`` names whatever the score."""
    refs = exact["ref"] if isinstance(exact["ref"], list) else [exact["ref"]]
    ref = f"ref_{score}"
    return {
        "id": hyp["id"],
        "hyp_logprob": hyp[score],
        "exact_logprob": exact[score],
        "ref_logprob": hyp.get(ref, exact.get(ref)),
        "proved_optimal": bool(exact.get("proved_optimal", False)),
        "hyp_length": hyp["length"],
        "exact_length": exact["length"],
        "ref_length": hyp.get("ref_length", exact.get("ref_length")),
        "exact_is_ref": exact["hyp"] in refs,
    }


def flags(row: dict[str, Any]) -> dict[str, bool | None]:
    """The four verdicts on one sentence; None where the row cannot tell.

    * ``search_error``: the exact score beats the output's by more than ``TOL`` (only where
      the exact answer is proved optimal);
    * ``model_error``: the exact output scores above the reference by more than ``TOL`` and
      is not the reference text (a found output above the reference is enough: the mode is
      at least as good, so this holds without a proof);
    * ``empty_mode``: the proved mode is EOS alone (length 1);
    * ``ref_above_hyp``: the reference scores above the output by more than ``TOL`` (a
      search error that needs no exact search).
    """
    proved, ref = row["proved_optimal"], row["ref_logprob"]
    hyp, exact = row["hyp_logprob"], row["exact_logprob"]
    return {
        "search_error": exact > hyp + TOL if proved else None,
        "model_error": None if ref is None else exact > ref + TOL and not row["exact_is_ref"],
        "empty_mode": row["exact_length"] == 1 if proved else None,
        "ref_above_hyp": None if ref is None else ref > hyp + TOL,
    }


def rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each verdict's rate over the sentences that can tell (NaN when none can), the number
    of sentences and of proved ones, and ``hyp_above_exact``: proved sentences whose output
    beats the exact score (possible only for outputs the exact search does not consider,
    i.e. unfinished or longer than its limit)."""
    verdicts = [flags(r) for r in rows]
    out: dict[str, Any] = {"n": len(rows), "n_proved": sum(r["proved_optimal"] for r in rows)}
    for name in RATES:
        known = [v[name] for v in verdicts if v[name] is not None]
        out[name] = sum(known) / len(known) if known else math.nan
    out["hyp_above_exact"] = sum(
        r["proved_optimal"] and r["hyp_logprob"] > r["exact_logprob"] + TOL for r in rows
    )
    return out


def beam_size(results: dict[str, Any]) -> int | None:
    """The run's ``search.beam_size``; greedy counts as 1; None for searches without one."""
    search = (results.get("config") or {}).get("search") or {}
    if results.get("search") == "greedy":
        return 1
    size = search.get("beam_size")
    return int(size) if isinstance(size, int | float) else None


def _load(run_dir: Path, truncated: set[Path]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    res = read_results(run_dir)
    if res is None:
        raise LabError(f"{run_dir} holds no completed {RESULTS}; pass a finished `lab run`.")
    rows, broken = read_rows(run_dir)
    if broken:
        truncated.add(run_dir)
    return res, rows


def tables(
    runs: dict[Path, tuple], exact: tuple, score: str = "logprob"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-sentence table, per-run rates table sorted by beam size) of ``runs`` (dir ->
    (results, predictions)) against the exact run's ``(results, predictions)``, by ``score``."""
    exact_res, exact_preds = exact
    by_id = {r["id"]: r for r in exact_preds}
    em = exact_res.get("metrics") or {}
    sentences, summary = [], []
    for run_dir, (res, preds) in runs.items():
        rows = [sentence_row(p, by_id[p["id"]], score) for p in preds if p["id"] in by_id]
        sentences += [{"run": str(run_dir), **r, **flags(r)} for r in rows]
        metrics = res.get("metrics") or {}
        summary.append(
            {
                "run": str(run_dir),
                "search": res.get("search"),
                "beam_size": beam_size(res),
                **rates(rows),
                "bleu": metrics.get("bleu"),
                "len_ratio": metrics.get("len_ratio"),
                "exact_proved": sum(r.get("proved_optimal") is True for r in exact_preds)
                / max(len(exact_preds), 1),
                "exact_bleu": em.get("bleu"),
                "exact_len_ratio": em.get("len_ratio"),
            }
        )
    table = pd.DataFrame(summary)
    table = table.sort_values(["beam_size", "search", "run"], na_position="last", kind="stable")
    return pd.DataFrame(sentences), table.reset_index(drop=True)


def plot(table: pd.DataFrame) -> Figure | None:
    """The measured rates against the beam size (log2 axis), one line per search and rate
    (greedy joins beam as size 1);
    the exact run's own rates (model error, empty mode) as dashed levels."""
    sized = table.dropna(subset=["beam_size"])
    if sized.empty:
        return None
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    family = sized["search"].replace({"greedy": "beam"})  # greedy is beam search of size 1
    for search, group in sized.groupby(family, sort=True):
        group = group.groupby("beam_size")[["search_error", "ref_above_hyp"]].mean()
        for rate in ("search_error", "ref_above_hyp"):
            ax.plot(group.index, group[rate], marker="o", label=f"{search}: {rate}")
    for rate, style in (("model_error", "--"), ("empty_mode", ":")):
        level = table[rate].dropna()
        if not level.empty:
            ax.axhline(float(level.iloc[0]), linestyle=style, color="gray", label=f"exact: {rate}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("search.beam_size (greedy = 1)")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("search and model errors vs beam size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def analyze(
    paths: Sequence[Path], exact_dir: Path, out: Path | None = None, score: str = "logprob"
) -> list[Path]:
    """Load the runs under ``paths`` and the exact run, check them, write the files into
    ``out`` (default ``<exact_dir>/analysis``); returns the written paths. ``score``: see
    ``sentence_row``."""
    exact_dir, truncated = Path(exact_dir), set()
    exact = _load(exact_dir, truncated)
    dirs = [
        d
        for d in find_runs(paths)
        if d.resolve() != exact_dir.resolve() and read_completed(d) is not None
    ]
    if not dirs:
        raise LabError("no completed runs to analyze; pass run or sweep directories of `lab run`.")
    runs = {d: _load(d, truncated) for d in dirs}
    check_same(exact_dir, exact, runs, truncated)
    check_score(score, exact_dir, exact, runs)
    sentences, table = tables(runs, exact, score)
    out = Path(out) if out is not None else exact_dir / "analysis"
    by = "" if score == "logprob" else f" by {score}"
    caption = f"search and model errors against {exact_dir}{by} (tolerance {TOL:g} nats)"
    value_cols = [*RATES, "bleu", "len_ratio", "exact_proved", "exact_bleu", "exact_len_ratio"]
    t = Table(table, value_cols, caption)
    written = [
        atomic_write_text(out / "analysis_sentences.csv", sentences.to_csv(index=False)),
        atomic_write_text(out / "analysis_rates.md", t.markdown()),
        atomic_write_text(out / "analysis_rates.csv", t.csv()),
        atomic_write_text(out / "analysis_rates.tex", t.latex()),
    ]
    fig = plot(table)
    if fig is not None:
        png = out / "analysis_rates.png"
        written.append(atomic_write(png, lambda f: fig.savefig(f, format="png", dpi=150)))
    return written


def cmd_analyze(argv: list[str]) -> None:
    """``lab analyze RUNS... --exact RUN_DIR [--out DIR]``."""
    p = argparse.ArgumentParser(
        prog="lab analyze", description="Search errors vs model errors against an exact run."
    )
    p.add_argument("paths", nargs="+", help="run or sweep directories")
    p.add_argument("--exact", required=True, help="a search=exact run of the same model/split")
    p.add_argument("--out", default=None, help="output directory (default: <exact>/analysis)")
    p.add_argument("--score", default="logprob", help="the field compared (fusion: fused_logprob)")
    a = p.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedRunWarning)
        warnings.simplefilter("always", TruncatedFileWarning)
        out = Path(a.out) if a.out else None
        paths = analyze([Path(x) for x in a.paths], Path(a.exact), out, a.score)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    for path in paths:
        print(path)
