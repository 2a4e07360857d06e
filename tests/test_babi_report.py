"""reports/babi/anchors.py: the lab's bAbI errors beside the published ones, with the mean over
the 20 tasks and the count of failed tasks (error above 5%) of each column."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "reports" / "babi" / "anchors.py"
spec = importlib.util.spec_from_file_location("babi_anchors", SCRIPT)
assert spec is not None and spec.loader is not None
anchors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(anchors)


def runs(error: dict[int, float], copy: bool = False) -> pd.DataFrame:
    """A runs table like ``lab report`` writes: greedy and beam runs (beam 1 point lower)."""
    rows = [
        {"task.task_id": t, "search": s, "model.copy": copy or "-", "error": e - (s == "beam")}
        for t, e in error.items()
        for s in ("greedy", "beam")
    ]
    return pd.DataFrame(rows)


def test_the_published_per_task_errors_add_up_to_the_published_means():
    assert sum(anchors.LSTM_1K) / 20 == pytest.approx(51.3)  # Weston et al. 2015
    assert sum(anchors.MEMN2N_1K) / 20 == pytest.approx(13.8, abs=0.05)  # the Matlab repro


def test_mean_and_failed_tasks_per_column():
    errors = {t: 0.0 for t in range(1, 21)} | {3: 50.0, 19: 90.0, 7: 5.0, 8: 6.0}
    table = anchors.summarize(anchors.per_task(runs(errors)))
    assert table.loc["mean", "plain greedy"] == f"{(50 + 90 + 5 + 6) / 20:.2f}"
    # 5.0 is not above 5%, 6.0 is; beam is a point lower, so its task 8 (5.0) passes
    assert table.loc["failed (> 5%)", "plain greedy"] == "3"
    assert table.loc["failed (> 5%)", "plain beam"] == "2"
    assert table.loc["failed (> 5%)", "LSTM [published]"] == "20"


def test_copy_runs_get_their_own_columns():
    both = pd.concat(
        [runs(dict.fromkeys(range(1, 21), 10.0)), runs(dict.fromkeys(range(1, 21), 4.0), True)]
    )
    table = anchors.per_task(both)
    assert list(table.columns[:4]) == ["plain greedy", "plain beam", "copy greedy", "copy beam"]
    assert table["copy beam"].tolist() == [3.0] * 20


def test_a_stop_rule_other_than_the_default_gets_its_own_column():
    runs_ = runs(dict.fromkeys(range(1, 21), 10.0)).assign(**{"search.stop_rule": "first_k"})
    canonical = runs_[runs_["search"] == "beam"].assign(**{"search.stop_rule": "canonical"})
    table = anchors.per_task(pd.concat([runs_, canonical.assign(error=2.0)]))
    assert list(table.columns[:3]) == ["plain greedy", "plain beam", "plain beam canonical"]
    assert table["plain beam canonical"].tolist() == [2.0] * 20


def test_a_runs_table_without_every_task_is_refused_in_one_line(tmp_path: Path):
    csv = tmp_path / "runs.csv"
    runs({t: 1.0 for t in range(1, 19)}).to_csv(csv, index=False)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(csv), "--out", str(tmp_path / "t")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and proc.stderr.strip() == (
        "runs table lacks tasks [19, 20]; run every task first"
    )
    assert not list(tmp_path.glob("t.*"))
