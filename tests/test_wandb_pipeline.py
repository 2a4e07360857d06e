"""``lab run`` with ``logger=wandb`` end to end: a tiny model trained in one run, then decoded
by a two-job sweep, every run read back from its offline W&B files with wandb's own reader.

What a W&B user looks at: run names that tell a sweep's runs apart, the group and job type,
training curves against ``train/step``, decode metrics and their sacreBLEU signatures in the
summary, a predictions table of numbers, the checkpoint as a ``model`` artifact that links
the training run to the decoding runs, and one console line per run saying where it went.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lab.wandb_reader import read_run
from tests.helpers.lab_process import lab, ok, tiny

WHERE = re.compile(r"^wandb: offline run in (\S+); sync with: wandb sync (\S+)$", re.M)
EXPERIMENT = "wandb-e2e"


@pytest.fixture(scope="module")
def runs(root: Path, cache: Path) -> dict[str, Any]:
    """One training run, then a sweep over two searches that decodes with its checkpoint."""
    train = ok(
        lab(["run", *tiny(logger="wandb", eval__limit=3), f"hydra.run.dir={root / 'train'}"],
            root, cache)
    )  # fmt: skip
    sweep = ok(
        lab(
            [
                "run",
                "-m",
                *tiny(logger="wandb"),
                "search=greedy,beam",
                f"experiment_name={EXPERIMENT}",
                f"hydra.sweep.dir={root / 'sweep'}",
            ],
            root,
            cache,
        )
    )
    jobs = sorted(p for p in (root / "sweep").iterdir() if (p / "results.json").is_file())
    return {
        "train": read_run(root / "train"),
        "train_out": train.stdout,
        "jobs": [(json.loads((p / "results.json").read_text()), read_run(p)) for p in jobs],
        "sweep_out": sweep.stdout,
    }


def test_names_group_and_job_types(runs: dict[str, Any]) -> None:
    train = runs["train"]["run"]
    assert train["job_type"] == "train"
    jobs = runs["jobs"]
    assert len(jobs) == 2
    names = [wb["run"]["name"] for _, wb in jobs]
    assert len(set(names)) == 2, names
    for res, wb in jobs:
        run = wb["run"]
        assert run["group"] == EXPERIMENT
        assert run["job_type"] == "decode"
        parts = run["name"].split(",")
        assert parts[0] == f"search={res['search']}"  # the swept override first
        assert "d_model=32" in parts and "max_steps=30" in parts
        assert not any(p.split("=")[0] in ("threads", "logger", "experiment_name") for p in parts)


def test_training_curves_use_the_training_step(runs: dict[str, Any]) -> None:
    wb = runs["train"]
    defined = {m.get("name") or m.get("glob_name"): m for m in wb["metrics"]}
    assert defined["train/*"]["step_metric"] == "train/step"
    assert defined["valid/*"]["step_metric"] == "train/step"
    assert defined["valid/loss"]["summary"] == {"min": True}
    valid = [row for row in wb["history"] if "valid/loss" in row]
    assert valid, wb["history"]
    assert all(row["train/step"] > 0 for row in valid)
    losses = [row["valid/loss"] for row in valid]
    assert wb["summary"]["valid/loss"] == {"min": pytest.approx(min(losses))}


def test_summary_holds_decode_metrics_and_signatures(runs: dict[str, Any]) -> None:
    for res, wb in runs["jobs"]:
        summary, metrics = wb["summary"], res["metrics"]
        assert summary["bleu"] == pytest.approx(metrics["bleu"])
        assert summary["chrf"] == pytest.approx(metrics["chrf"])
        for key in ("bleu_signature", "chrf_signature", "ter_signature"):
            assert summary[key] == metrics[key]
        assert summary["bleu_signature"].startswith("nrefs:1|")


def test_predictions_table_holds_numbers(runs: dict[str, Any], root: Path) -> None:
    for res, wb in runs["jobs"]:
        table = wb["tables"]["predictions"]
        assert table["columns"] == ["id", "src", "ref", "hyp", "logprob", "length"]
        assert len(table["data"]) == res["n_examples"] == 10
        for row in table["data"]:
            logprob, length = row[4], row[5]
            assert isinstance(logprob, float) and logprob <= 0
            assert isinstance(length, int) and not isinstance(length, bool) and length >= 1
            assert isinstance(row[3], str)


def test_checkpoint_artifact_links_training_to_decoding(runs: dict[str, Any]) -> None:
    (made,) = [a for a in runs["train"]["artifacts"] if a["type"] == "model"]
    assert made["used"] is False
    (uri,) = made["files"].values()
    checkpoint = Path(uri.removeprefix("file://"))
    assert checkpoint.name == "model.pt" and checkpoint.is_file()
    assert made["name"] == f"transformer-{checkpoint.parent.name}"
    for res, wb in runs["jobs"]:
        (used,) = [a for a in wb["artifacts"] if a["type"] == "model"]
        assert used["used"] is True
        assert (used["name"], used["digest"]) == (made["name"], made["digest"])
        assert Path(res["checkpoint"]).resolve() == checkpoint


def test_console_says_once_per_run_where_wandb_wrote(runs: dict[str, Any]) -> None:
    train_lines = WHERE.findall(runs["train_out"])
    sweep_lines = WHERE.findall(runs["sweep_out"])
    assert len(train_lines) == 1 and len(sweep_lines) == 2
    files = {runs["train"]["file"], *(wb["file"] for _, wb in runs["jobs"])}
    for folder, synced in train_lines + sweep_lines:
        assert folder == synced
        assert str(next(Path(folder).glob("run-*.wandb"))) in files
    assert runs["sweep_out"].count("wandb:") == 2
