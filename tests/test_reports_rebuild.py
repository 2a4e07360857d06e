"""reports/ is what its committed data say: every derived table, plot and page is rebuilt
from the per-run summaries into a temporary directory and compared byte by byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lab.rebuild import drift, is_source
from lab.rebuild.specs import table_specs
from lab.report import report

REPORTS = Path(__file__).resolve().parent.parent / "reports"


def test_reports_match_their_rebuild(tmp_path: Path) -> None:
    problems = drift(REPORTS, tmp_path)
    assert not problems, "reports/ drifted from its data (python reports/build.py):\n" + "\n".join(
        problems
    )


def test_a_changed_summary_is_caught(tmp_path: Path) -> None:
    """Editing one run's BLEU in its summary changes the table rebuilt from it."""
    runs = tmp_path / "runs"
    shutil.copytree(REPORTS / "multi30k" / "runs", runs)
    summary = runs / "model=gru,search=greedy" / "results.json"
    data = json.loads(summary.read_text(encoding="utf-8"))
    data["metrics"]["bleu_tok_lc"] += 1.0
    summary.write_text(json.dumps(data), encoding="utf-8")
    spec = next(s for s in table_specs() if s.name == "multi30k")
    report([runs], tmp_path / "out", **spec.options)
    rebuilt = (tmp_path / "out" / "multi30k_pivot.md").read_text(encoding="utf-8")
    committed = (REPORTS / "multi30k" / "multi30k_pivot.md").read_text(encoding="utf-8")
    assert "40.18" in rebuilt and "40.18" not in committed


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("multi30k/runs/model=gru,search=beam/results.json", True),
        ("search_errors/gru/analysis_sentences.csv", True),
        ("multi30k/multi30k_pivot.md", False),
        ("beam_curse/beam_curse_bleu_plot.png", False),
    ],
)
def test_sources_are_told_from_derived_files(path: str, source: bool) -> None:
    assert is_source(Path(path)) is source
