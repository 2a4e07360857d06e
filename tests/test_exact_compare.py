"""``python -m lab.bench.exact_compare`` on two real ``lab run``s of exact search that differ only
in their frontier (how many prefixes a round expands): the same proved set and outputs, and the
speed ratio of the runs' own decode seconds; runs of other searches are refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.bench.exact_compare import compare
from lab.errors import LabError
from tests.helpers.lab_process import lab, ok, tiny


@pytest.fixture(scope="module")
def runs(root: Path, trained: Path) -> dict[str, Path]:
    dirs = {}
    for name, args in {
        "frontier1": ["search=exact", "search.frontier=1"],
        "frontier64": ["search=exact", "search.frontier=64"],
        "greedy": ["search=greedy"],
    }.items():
        dirs[name] = root / name
        ok(lab(["run", *tiny(), *args, f"hydra.run.dir={dirs[name]}"], root, trained))
    return dirs


def test_the_frontier_changes_the_order_not_the_proved_outputs(runs: dict[str, Path], tmp_path):
    out = tmp_path / "compare.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lab.bench.exact_compare", str(runs["frontier1"]),
         str(runs["frontier64"]), "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    got = json.loads(out.read_text())
    assert json.loads(proc.stdout)["identical_proved"] == got["identical_proved"] == 1.0
    assert got["same_proved_set"] and got["proved"]["before"] == got["proved"]["after"] > 0
    assert got["n"] == 10 and got["search"]["after"]["frontier"] == 64
    seconds = got["decode_seconds"]
    assert got["speedup"] == pytest.approx(seconds["before"] / seconds["after"])
    assert got["steps"]["before"] > got["steps"]["after"] > 0  # bigger rounds, fewer calls
    proved = {
        json.loads(line)["id"]
        for line in (runs["frontier1"] / "predictions.jsonl").read_text().splitlines()
        if json.loads(line)["proved_optimal"]
    }
    assert not proved & set(got["differing_ids"])  # only unproved sentences may differ


def test_runs_without_proof_flags_are_refused(runs: dict[str, Path]):
    with pytest.raises(LabError, match="no proved_optimal flags"):
        compare(runs["frontier1"], runs["greedy"])
    with pytest.raises(LabError, match="predictions.jsonl is missing"):
        compare(runs["frontier1"], runs["greedy"].parent / "nowhere")
