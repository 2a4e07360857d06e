"""Paired bootstrap of question answering: EM, F1 and accuracy against a baseline run.

A QA metric is a mean over examples, so its test resamples per-example values: the numbers
are checked against a direct NumPy computation over the same resamples (seed 12345, as
sacreBLEU draws them). Runs are written by hand the way ``lab run`` writes them
(``predictions.jsonl``, and a ``results.json`` whose metrics the lab's own metrics computed);
nothing is trained.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lab.metrics.qa import Babi, BabiOrdered, Squad, squad_em, squad_f1
from lab.rebuild.add import main as add_main
from lab.report.bootstrap import paired_test
from lab.report.predictions import read_run
from lab.report.qa_stats import MeanMetric
from lab.report.sentence_stats import STATS, read_stats, sentence_stats
from tests.helpers.lab_process import lab_here as _lab
from tests.helpers.report_runs import BASE_HYPS, completed_run

GOLDS = [
    [f"the {c} house", f"{c} house"] if i % 3 else [f"the {c} house"]
    for i, c in enumerate(["red", "blue", "green", "old", "small", "tall", "white", "new"] * 5)
]  # 40
BASE = [g[0] if i % 4 else "a house" for i, g in enumerate(GOLDS)]  # 30 right, 10 half right
WORSE = [g[0] if i % 2 else "house" for i, g in enumerate(GOLDS)]  # 20 right, 20 half right


def qa_run(root: Path, name: str, hyps: list[str], refs: list[list[str]], **settings: Any) -> Path:
    """A completed QA run in ``root/name`` (task squad, or babi with ``task_id``) whose metrics
    the lab's own ``squad`` and (for babi) ``babi``/``babi_ordered`` metrics compute."""
    task = settings.pop("task", "squad")
    config: dict[str, Any] = {"task": {"name": task}, "seed": 1, "eval": {"split": "test"}}
    config |= {"model": {"name": "transformer"}, "search": {"name": settings.pop("search")}}
    config["task"] |= settings
    metrics = Squad().compute(hyps, refs)
    if task == "babi":
        scorer = BabiOrdered() if settings.get("task_id") == 19 else Babi()
        metrics |= scorer.compute(hyps, refs)
    rows = [
        {"id": f"q{i}", "src": "-", "ref": r if len(r) > 1 else r[0], "hyp": h}
        for i, (h, r) in enumerate(zip(hyps, refs, strict=True))
    ]
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {"status": "completed", "task": task, "model": "transformer"}
    results |= {"search": config["search"]["name"], "split": "test", "config": config}
    results |= {"metrics": metrics, "n_examples": len(rows), "checkpoint": "ckpt/model.pt"}
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


def _direct(base: np.ndarray, system: np.ndarray, samples: int) -> dict[str, float]:
    """The paired test of per-example values (0..1) computed directly: 100 x the mean of each
    of sacreBLEU's resamples (seed 12345), sacreBLEU's CI and p-value, the percentile CI of
    the difference."""
    idxs = np.random.default_rng(12345).choice(len(base), size=(samples, len(base)))
    base_means, sys_means = 100 * base[idxs].mean(1), 100 * system[idxs].mean(1)  # (S,)
    k = samples // 40  # 2.5% from each end
    spread = np.sort(sys_means)
    diffs = sys_means - base_means
    observed = 100 * (system.mean() - base.mean())
    centred = np.abs(diffs) - np.abs(diffs).mean()
    return {
        "score": 100 * system.mean(),
        "mean": sys_means.mean(),
        "ci": (spread[samples - k - 1] - spread[k]) / 2,
        "delta": observed,
        "delta_low": np.sort(diffs)[k],
        "delta_high": np.sort(diffs)[samples - k - 1],
        "p": (np.sum(centred > abs(observed)) + 1) / (samples + 1),
    }


@pytest.mark.parametrize("samples", [200, 1000])
def test_the_mean_test_is_the_direct_computation_over_the_same_resamples(monkeypatch, samples):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 60)
    system = np.clip(base + rng.normal(0.05, 0.2, 60), 0, 1)  # F1-like fractions
    rows = [np.stack([v, np.ones_like(v)], axis=1) for v in (base, system)]  # (n, 2)
    own, result = paired_test(rows[0], [rows[1]], MeanMetric("f1", {}), samples)
    expected = _direct(base, system, samples)
    for field, value in expected.items():
        assert getattr(result, field) == pytest.approx(value, abs=1e-9), field
    assert own.score == pytest.approx(100 * base.mean()) and own.p is None and own.delta == 0


def test_a_qa_report_tests_em_and_f1_against_the_baseline(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    qa_run(tmp_path / "runs", "beam", BASE, GOLDS, search="beam")
    qa_run(tmp_path / "runs", "greedy", WORSE, GOLDS, search="greedy")
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "runs"), "--metric", "f1", "--baseline", "search=beam"]
    assert _lab([*args, "--out", str(out)], capsys)[0] == 0
    tests = pd.read_csv(out / "report_tests.csv").set_index("search")
    assert not any(c.startswith(("bleu", "chrf", "accuracy")) for c in tests.columns)
    per_example = {
        name: [
            np.array([max(fn(h, g) for g in golds) for h, golds in zip(hyps, GOLDS, strict=True)])
            for hyps in (BASE, WORSE)
        ]
        for name, fn in (("em", squad_em), ("f1", squad_f1))
    }
    for name, (base, worse) in per_example.items():
        expected = _direct(base, worse, 1000)
        row = tests.loc["greedy"]
        assert row[name] == pytest.approx(Squad().compute(WORSE, GOLDS)[name])
        assert row[f"{name}_delta"] == pytest.approx(expected["delta"])
        assert row[f"{name}_delta_low"] == pytest.approx(expected["delta_low"])
        assert row[f"{name}_delta_high"] == pytest.approx(expected["delta_high"])
        assert row[f"{name}_p"] == pytest.approx(expected["p"]) and row[f"{name}_p"] < 0.05
        assert row[f"{name}_ci_low"] == pytest.approx(expected["mean"] - expected["ci"])
    md = (out / "report_tests.md").read_text()
    assert "em difference [95% CI]" in md and "f1 difference [95% CI]" in md
    assert "em: em|bootstrap-mean|nrefs:var|bs:1000|seed:12345|norm:squad-v1.1" in md
    greedy = tests.loc["greedy"]
    assert f"{greedy['em_delta']:+.2f} [{greedy['em_delta_low']:+.2f}," in md
    assert "* p < 0.05 against --baseline search=beam" in (out / "report_pivot.md").read_text()


def test_a_qa_summary_without_predictions_gives_the_same_tests(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    full, summary = tmp_path / "full", tmp_path / "summary"
    for name, hyps in (("beam", BASE), ("greedy", WORSE)):
        qa_run(full, name, hyps, GOLDS, search=name)
        assert add_main([str(full / name), "--to", str(summary), "--stats"]) == 0
    tables = []
    for root in (full, summary):
        out = tmp_path / f"out-{root.name}"
        args = ["report", str(root), "--metric", "em", "--baseline", "search=beam"]
        assert _lab([*args, "--out", str(out)], capsys)[0] == 0
        tables.append(pd.read_csv(out / "report_tests.csv").drop(columns="run"))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    text = gzip.decompress((summary / "beam" / STATS).read_bytes()).decode()
    assert "house" not in text  # per-example values, not the answers


@pytest.mark.parametrize(("task_id", "metric"), [(8, Babi), (19, BabiOrdered)])
def test_babi_accuracy_compares_answers_as_the_task_does(tmp_path, task_id, metric):
    refs = [["s,e"], ["n,w"], ["apple,milk"], ["w,w"]]
    hyps = ["e,s", "n,w", "milk, apple", "n"]  # orders swapped in two of them, one wrong
    run = qa_run(tmp_path, "run", hyps, refs, task="babi", task_id=task_id, search="beam")
    stats = read_stats(run)
    accuracy = 100 * sum(v for v, _ in stats["accuracy"]) / len(refs)
    assert accuracy == pytest.approx(metric().compute(hyps, refs)["accuracy"])
    assert stats["qa"]["answers"] == ("ordered" if task_id == 19 else "set")
    assert accuracy == (25.0 if task_id == 19 else 75.0)


def test_a_babi_report_tests_accuracy_em_and_f1(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    golds = [[g[0].split()[1]] for g in GOLDS]  # one-word answers
    for name, hyps in (("beam", [g[0] for g in golds]), ("greedy", ["red"] * len(golds))):
        qa_run(tmp_path / "runs", name, hyps, golds, task="babi", task_id=1, search=name)
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "runs"), "--metric", "accuracy", "--baseline", "search=beam"]
    assert _lab([*args, "--out", str(out)], capsys)[0] == 0
    tests = pd.read_csv(out / "report_tests.csv").set_index("search")
    assert tests.loc["greedy", "accuracy"] == pytest.approx(12.5)  # 5 of 40 are red
    assert tests.loc["greedy", "accuracy_delta"] == pytest.approx(-87.5)
    assert {"em_delta", "f1_delta"} <= set(tests.columns) and "bleu" not in tests.columns
    assert (
        "accuracy: accuracy|bootstrap-mean|nrefs:1|bs:1000|seed:12345|answers:set"
        in (out / "report_tests.md").read_text()
    )


def test_a_group_of_qa_and_translation_runs_is_one_error_line(tmp_path, capsys):
    golds = [[r] for r in BASE_HYPS]
    qa_run(tmp_path, "qa-beam", BASE_HYPS, golds, search="beam")
    completed_run(tmp_path, "mt-greedy", BASE_HYPS, search__name="greedy")
    args = ["report", str(tmp_path), "--metric", "em", "--baseline", "search=beam"]
    status, _, err = _lab(args, capsys)
    assert status == 2 and err.count("\n") == 1
    assert "is tested on bleu, chrf but its baseline" in err and "on em, f1;" in err


def test_a_qa_stats_file_without_qa_rows_names_the_command_that_rewrites_it(tmp_path, capsys):
    for name, hyps in (("beam", BASE), ("greedy", WORSE)):
        run = qa_run(tmp_path, name, hyps, GOLDS, search=name)
    older = json.dumps(sentence_stats(read_run(run))).encode()  # BLEU and chrF rows only
    (run / STATS).write_bytes(gzip.compress(older))
    args = ["report", str(tmp_path), "--metric", "em", "--baseline", "search=beam"]
    status, _, err = _lab(args, capsys)
    assert status == 2 and err.count("\n") == 1
    assert "has no em statistics" in err and "python -m lab.rebuild.add --stats RUN_DIR" in err
