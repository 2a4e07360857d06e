"""The committed report data and prose, read for the tests that hold them together
(``test_report_numbers``, ``test_report_prose``)."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from lab.report import load_runs

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
PROSE = (REPORTS / "README.md").read_text(encoding="utf-8")
MAIN = (ROOT / "README.md").read_text(encoding="utf-8")


@functools.cache
def runs(name: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = load_runs(REPORTS / name)
    df["name"] = [str(Path(d).relative_to(REPORTS / name)) for d in df["run_dir"]]
    return df


def run(name: str, run_name: str) -> pd.Series:
    df = runs(name)
    return df[df["name"] == run_name].iloc[0]


def table(header: str, text: str = PROSE) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with ``header``."""
    lines = text[text.index(header) :].splitlines()
    body = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        body.append([c.strip().replace("**", "") for c in line.strip("|").split("|")])
    return body


def said(sentence: str, text: str = PROSE) -> bool:
    """``sentence`` is in ``text``, line breaks read as spaces."""
    return " ".join(sentence.split()) in " ".join(text.split())


def f(value: Any, digits: int = 2) -> str:
    return f"{float(value):.{digits}f}"


def interval(row: pd.Series, metric: str = "bleu") -> str:
    """A paired test's difference and its 95% interval as the prose writes them."""
    d, lo, hi = (row[f"{metric}_delta{s}"] for s in ("", "_low", "_high"))
    return f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def paired_table(name: str) -> pd.DataFrame:
    """The CSV of a paired-test table, e.g. ``toolkits/seeds/toolkits_beam5_vs_fairseq``."""
    return pd.read_csv(REPORTS / f"{name}_tests.csv")


def pct(value: Any, digits: int = 1) -> str:
    return f"{100 * float(value):.{digits}f}%"


M30K_RUNS = {
    "greedy": "search=greedy",
    "beam 5": "search=beam",
    "beam_lp 5, gnmt alpha 0.6": "search.alpha=0.6,search=beam_lp",
    "beam_lp 5, gnmt alpha 1.0": "search.alpha=1.0,search=beam_lp",
}
