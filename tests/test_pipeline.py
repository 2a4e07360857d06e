"""The experiment pipeline end to end: real Hydra multirun, real W&B offline runs, real report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.report import load_runs
from lab.wandb_reader import read_run
from tests.helpers.lab_process import lab, tiny

# the tiny config, smaller still, with its W&B logger (offline) and all 12 test sentences decoded
TINY_ARGS = tiny(
    task__n_train=400,
    task__n_valid=40,
    task__n_test=12,
    task__tokenizer__vocab_size=150,
    train__max_steps=25,
    train__warmup_steps=5,
    train__batch_tokens=1024,
    eval__batch_size=8,
    eval__limit=None,
    logger=None,
)


@pytest.fixture(scope="module")
def sweep(root: Path, cache: Path):
    """One sweep over three searches on the built-in task (trains once)."""
    proc = lab(
        [
            "run",
            "-m",
            "search=greedy,beam,beam_lp",
            f"hydra.sweep.dir={root / 'multi'}",
            *TINY_ARGS,
        ],
        root,
        cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, cache, proc


def test_a_sweep_over_three_searches_trains_once_and_decodes_three_times(sweep):
    root, cache, proc = sweep
    assert proc.stdout.count("training transformer") == 1
    assert len(list((cache / "checkpoints").glob("*/model.pt"))) == 1
    runs = sorted((root / "multi").glob("*/results.json"))
    assert len(runs) == 3
    searches = set()
    for path in runs:
        res = json.loads(path.read_text())
        assert res["status"] == "completed"
        assert {"task", "model", "search", "config", "metrics", "n_examples", "checkpoint"} <= set(
            res
        )
        for key in (
            "bleu",
            "chrf",
            "ter",
            "len_ratio",
            "empty_rate",
            "mean_logprob",
            "sent_per_s",
            "tok_per_s",
            "cost_steps",
            "cost_model_calls",
            "cost_expanded",
        ):
            assert key in res["metrics"], key
        assert res["metrics"]["bleu_signature"].startswith("nrefs:1")
        assert res["n_examples"] == 12
        searches.add(res["search"])
    assert searches == {"greedy", "beam", "beam_lp"}


def test_predictions_hold_one_line_per_example_with_model_logprobs(sweep):
    root, _, _ = sweep
    for pred in (root / "multi").glob("*/predictions.jsonl"):
        rows = [json.loads(line) for line in pred.read_text().splitlines()]
        assert len(rows) == 12
        for r in rows:
            assert {"id", "src", "ref", "hyp", "logprob", "length"} <= set(r)
            assert r["logprob"] <= 0 and r["length"] >= 1


def test_each_run_is_a_wandb_offline_run_with_config_curves_metrics_and_table(sweep):
    root, _, _ = sweep
    job_types = set()
    for results in (root / "multi").glob("*/results.json"):
        res = json.loads(results.read_text())
        wb = read_run(results.parent)
        assert wb["config"]["search"]["name"] == res["search"]
        assert wb["config"]["model"]["d_model"] == 32
        assert wb["summary"]["bleu"] == pytest.approx(res["metrics"]["bleu"])
        assert wb["run"]["group"] == "multi"
        assert wb["exit_code"] == 0
        assert len(wb["tables"]["predictions"]["data"]) == 12
        job_types.add(wb["run"]["job_type"])
        if wb["run"]["job_type"] == "train":
            logged = {k for row in wb["history"] for k in row}
            assert {"valid/loss", "valid/ppl"} <= logged, logged
    assert job_types == {"train", "decode"}


def test_the_report_tabulates_the_sweep(sweep, tmp_path):
    root, cache, _ = sweep
    proc = lab(
        [
            "report",
            str(root / "multi"),
            "--out",
            str(tmp_path),
            "--metric",
            "bleu",
            "--rows",
            "model",
            "--cols",
            "search",
        ],
        root,
        cache,
    )
    assert proc.returncode == 0, proc.stderr
    df = load_runs([root / "multi"])
    assert len(df) == 3
    for name in ("report_pivot.md", "report_pivot.csv", "report_pivot.tex", "report_runs.md"):
        assert (tmp_path / name).exists()
    pivot = (tmp_path / "report_pivot.csv").read_text()
    assert "beam_lp" in pivot and "greedy" in pivot


def test_a_rerun_of_a_completed_run_is_skipped(sweep):
    root, cache, _ = sweep
    run_dir = next(p.parent for p in (root / "multi").glob("*/results.json"))
    before = (run_dir / "results.json").read_bytes()
    overrides = json.loads((run_dir / "results.json").read_text())["config"]
    search = overrides["search"]["name"]
    proc = lab(
        ["run", f"search={search}", f"hydra.run.dir={run_dir}", *TINY_ARGS],
        root,
        cache,
        WANDB_MODE="disabled",
    )
    assert proc.returncode == 0, proc.stderr
    assert "already completed" in proc.stdout
    assert (run_dir / "results.json").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search=beem"], "Did you mean 'beam'?"),
        (["model=transfomer"], "Did you mean 'transformer'?"),
        (["search.beam_szie=3"], "Did you mean 'beam_size'?"),
        (["eval.limt=3"], "Did you mean 'limit'?"),
        (["search=greedy,beam", "search.beam_size=3"], "'beam_size' in search=greedy"),
        (["+experiment=multi_30k"], "Did you mean 'multi30k'?"),
    ],
)
def test_misspelled_names_and_keys_are_caught_before_anything_runs(args, message, capsys):
    from lab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search.beam_size=0"], "search.beam_size must be >= 1"),
        (["search=beam", "search.nbest=9"], "nbest=9 exceeds"),
        (["task=multi30k"], "multi30k"),
        (["checkpoint=/nonexistent/model.pt"], "does not exist"),
    ],
)
def test_bad_input_fails_with_one_clear_line(sweep, tmp_path, args, message):
    _, cache, _ = sweep
    empty = tmp_path / "no-data"
    empty.mkdir()
    run_dir = tmp_path / "run"
    proc = lab(
        ["run", *args, f"hydra.run.dir={run_dir}", f"data_dir={empty}", "logger=none", *TINY_ARGS],
        tmp_path,
        cache,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    results = run_dir / "results.json"
    assert not results.exists() or json.loads(results.read_text())["status"] != "completed"


def test_a_mismatched_checkpoint_is_refused(sweep, tmp_path):
    root, cache, _ = sweep
    ckpt = next((cache / "checkpoints").glob("*/model.pt"))
    proc = lab(
        [
            "run",
            f"checkpoint={ckpt}",
            "model=gru",
            f"hydra.run.dir={tmp_path / 'r'}",
            "logger=none",
            *[t for t in TINY_ARGS if not t.startswith("model.")],
        ],
        root,
        cache,
    )
    assert proc.returncode != 0
    assert (
        proc.stderr.strip().startswith("error: checkpoint") and "model=transformer" in proc.stderr
    )
    assert (
        not (tmp_path / "r" / "results.json").exists()
        or json.loads((tmp_path / "r" / "results.json").read_text())["status"] == "failed"
    )


def test_lab_list_prints_every_plugin_with_a_description(sweep):
    root, cache, _ = sweep
    proc = lab(["list"], root, cache)
    assert proc.returncode == 0
    for name in (
        "transformer",
        "lstm",
        "gru",
        "decoder_only",
        "greedy",
        "beam",
        "beam_lp",
        "toy_mt",
        "multi30k",
        "bleu",
        "gnmt",
        "canonical",
    ):
        line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10
    bad = lab(["list", "serch"], root, cache)
    assert bad.returncode == 2 and "Did you mean 'search'?" in bad.stderr
