"""The bAbI joint models over seeds: a seed counts for a setting once all 20 tasks ran; its mean
error and failed tasks (error > 5%) are pooled as mean ± std, and kept per seed beside."""

import json
from pathlib import Path

import pandas as pd

from lab.rebuild.babi_seeds import RUNS, _frame, babi_seeds, per_seed, pooled


def run(root: Path, seed: int, task: int, error: float, copy: bool = False) -> None:
    """A completed run summary as a bAbI joint run writes it (greedy)."""
    name = f"{'++model.copy=True,' if copy else ''}search=greedy,seed={seed},task.task_id={task}"
    config = {
        "task": {"task_id": task},
        "seed": seed,
        **({"model": {"copy": True}} if copy else {}),
    }
    summary = {
        "status": "completed",
        "task": "babi",
        "model": "transformer",
        "search": "greedy",
        "train": {"steps": 100 + seed, "best": {"step": 90}, "params": 7, "train_seconds": 60.0},
        "config": config,
        "metrics": {"error": error, "accuracy": 100 - error},
    }
    (root / RUNS / name).mkdir(parents=True)
    (root / RUNS / name / "results.json").write_text(json.dumps(summary))


def frame(rows: list[tuple[str, int, float, int]]) -> pd.DataFrame:
    keys = ("model", "seed", "mean_error", "failed")
    return pd.DataFrame([dict(zip(keys, r, strict=True)) for r in rows]).assign(
        search="greedy", **{"search.stop_rule": "-"}
    )


def test_seeds_pool_as_mean_and_std_with_each_seed_beside():
    table = pooled(
        frame([("facts", 10, 20.0, 10), ("facts + copy", 2, 9.0, 3), ("facts", 2, 24.0, 12)])
    )
    assert list(table.columns[-2:]) == ["seed 2", "seed 10"]  # in the seeds' order
    row = table.iloc[0]
    assert row["mean error"] == "22.00 ± 2.83 (n=2)"
    assert row["failed tasks"] == "11.0 ± 1.4 (n=2)"
    assert (row["seed 10"], row["seed 2"]) == ("20.00 (10)", "24.00 (12)")


def test_a_seed_counts_once_all_20_tasks_ran_and_failed_means_error_above_5(tmp_path):
    for task in range(1, 21):
        run(tmp_path, 0, task, 5.0 if task % 2 else 5.1)  # 10 tasks above 5%
        if task <= 19:
            run(tmp_path, 1, task, 50.0)  # seed 1 lacks task 20
    babi_seeds(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "babi" / "babi_joint_seeds.md").read_text()
    assert "5.05 (n=1)" in text and "10.0 (n=1)" in text and "seed 1" not in text.split("\n\n")[1]
    seeds = pd.read_csv(tmp_path / "out" / "babi" / "babi_joint_seeds.csv")
    assert list(seeds.columns[-1:]) == ["seed 0"]


def test_the_per_seed_table_separates_models_and_reads_seed_0_when_none_is_named(tmp_path):
    for task in range(1, 21):
        run(tmp_path, 0, task, 10.0)
        run(tmp_path, 2, task, 30.0, copy=True)
    seeds = per_seed(_frame(tmp_path / RUNS))
    got = {(m, s): e for m, s, e in zip(seeds.model, seeds.seed, seeds.mean_error, strict=True)}
    assert got == {("facts", 0): 10.0, ("facts + copy", 2): 30.0}


def test_nothing_is_written_without_the_runs(tmp_path):
    assert babi_seeds(tmp_path, tmp_path / "out") == []
