"""Sweeps through real launchers: basic, joblib and submitit_local give the same run directories;
the Optuna search tunes beam search and keeps its best settings; a rerun resumes; completed
runs are never overwritten by another config; the SLURM presets turn into the sbatch script a
cluster user expects.

Every command is a real ``lab`` process on a tiny model; the checkpoint is trained once per
module into a cache under pytest's temporary directory. The tests that take a minute or more
each (launchers, Optuna, resume, toy_search) are marked slow (``pytest -m slow``); the default
run keeps one sweep end to end (another config never overwrites a completed run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lab.app import CONF_DIR
from lab.best import best_run, format_best
from lab.callbacks import TIMING_FILE
from lab.cli import main as cli_main
from lab.report import load_runs
from tests.helpers.lab_process import TIMING_METRICS, lab, ok, tiny

TIMER = "+hydra.callbacks.timer._target_=lab.callbacks.JobTimer"
TINY_ARGS = tiny()


def run_dirs(sweep_dir: Path) -> dict[str, Path]:
    """Run directories of a sweep by name (hidden ones, like .submitit, are not runs)."""
    return {p.name: p for p in sorted(sweep_dir.iterdir()) if p.is_dir() and p.name[0] != "."}


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


RUN_FILES = ("predictions.jsonl", "results.json")


def snapshot(sweep_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and modification times of every results.json and predictions.jsonl."""
    files = [*sweep_dir.rglob("results.json"), *sweep_dir.rglob("predictions.jsonl")]
    return {str(p.relative_to(sweep_dir)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


# ----------------------------------------------------------------------------------- launchers

LAUNCHERS = {
    "basic": [],  # threads=1 (TINY_ARGS), so that every launcher computes alike
    # the others run jobs side by side: the pipeline gives each 1 thread when threads=0
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=0"],
    "submitit_local": ["hydra/launcher=submitit_local", "threads=0"],
}


@pytest.fixture(scope="module")
def launcher_sweeps(root: Path, trained: Path) -> dict[str, Path]:
    """The same 3-run sweep under each launcher, each in its own sweep directory."""
    out = {}
    for name, extra in LAUNCHERS.items():
        sweep_dir = root / f"sweep-{name}"
        args = [
            "run",
            "-m",
            *TINY_ARGS,
            "search.beam_size=1,2,3",
            *extra,
            TIMER,
            f"hydra.sweep.dir={sweep_dir}",
        ]
        ok(lab(args, root, trained))
        out[name] = sweep_dir
    return out


@pytest.mark.slow
def test_every_launcher_writes_the_same_run_directories(launcher_sweeps: dict[str, Path]):
    basic = launcher_sweeps["basic"]
    names = run_dirs(basic)
    assert list(names) == ["0", "1", "2"]
    for name, sweep_dir in launcher_sweeps.items():
        dirs = run_dirs(sweep_dir)
        assert list(dirs) == list(names), name
        for run, run_dir in dirs.items():
            res, ref = results(run_dir), results(names[run])
            assert res["status"] == "completed", (name, run)
            drop = {"threads"}  # 1 for basic, 0 (= 1 per job) for the others
            assert {k: v for k, v in res["config"].items() if k not in drop} == {
                k: v for k, v in ref["config"].items() if k not in drop
            }, (name, run)
            metrics = {k: v for k, v in res["metrics"].items() if k not in TIMING_METRICS}
            ref_metrics = {k: v for k, v in ref["metrics"].items() if k not in TIMING_METRICS}
            assert metrics == ref_metrics, (name, run)
            assert (run_dir / "predictions.jsonl").read_bytes() == (
                names[run] / "predictions.jsonl"
            ).read_bytes(), (name, run)
            assert (run_dir / ".hydra" / "overrides.yaml").is_file()


@pytest.mark.slow
def test_parallel_launchers_give_each_job_one_torch_thread(launcher_sweeps: dict[str, Path]):
    for name in ("joblib", "submitit_local"):
        timings = [json.loads(p.read_text()) for p in launcher_sweeps[name].rglob(TIMING_FILE)]
        assert len(timings) == 3, name
        assert {t["launcher"] for t in timings} == {name}
        assert {t["torch_threads"] for t in timings} == {1}, name
        assert all(
            results(launcher_sweeps[name] / str(t["job_num"]))["config"]["threads"] == 0
            for t in timings
        )
    pids = {
        json.loads(p.read_text())["pid"]
        for p in launcher_sweeps["submitit_local"].rglob(TIMING_FILE)
    }
    assert len(pids) == 3, "submitit_local runs each job in its own process"


@pytest.mark.slow
def test_lab_report_reads_every_launcher_alike(launcher_sweeps, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    tables = {}
    for name, sweep_dir in launcher_sweeps.items():
        out = tmp_path / name
        cli_main(
            [
                "report",
                str(sweep_dir),
                "--out",
                str(out),
                "--metric",
                "chrf",
                "--rows",
                "search.beam_size",
                "--cols",
                "search",
            ]
        )
        tables[name] = (out / "report_pivot.csv").read_text()
        df = load_runs(sweep_dir)
        assert len(df) == 3 and sorted(df["search.beam_size"]) == [1, 2, 3]
    assert len(set(tables.values())) == 1, tables


def test_a_primary_config_does_not_shadow_the_plugins_launcher_configs():
    """conf/hydra/launcher holds only presets under their own names: a file named like a
    plugin's config (joblib.yaml, submitit_local.yaml) would be merged into it with Hydra's
    deprecated automatic schema matching, and warn on every run."""
    plugin_configs = {"basic", "joblib", "submitit_local", "submitit_slurm", "ray", "ray_aws"}
    presets = {p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml")}
    assert presets and not presets & plugin_configs


@pytest.mark.parametrize("preset", ["slurm", "slurm_gpu", "local_processes"])
def test_launcher_presets_compose(preset: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={preset}"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.startswith("hydra_plugins.hydra_submitit_launcher")
    assert launcher.timeout_min >= 60
    if preset.startswith("slurm"):
        for knob in (
            "partition",
            "cpus_per_task",
            "gpus_per_node",
            "mem_gb",
            "array_parallelism",
            "tasks_per_node",
            "account",
            "max_num_timeout",
        ):
            assert knob in launcher, knob


def test_slurm_gpu_preset_becomes_the_expected_sbatch_array(root: Path, trained: Path, tmp_path):
    """Submit to a stand-in ``sbatch`` that keeps the script and refuses the job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).write_text(
            '#!/bin/sh\ncp "$1" "$SBATCH_COPY"\necho "sbatch: error: stand-in" >&2\nexit 1\n'
        )
        (bin_dir / tool).chmod(0o755)
    script = tmp_path / "job.sbatch"
    proc = lab(
        [
            "run",
            "-m",
            *TINY_ARGS,
            "search.beam_size=1,2,4",
            "hydra/launcher=slurm_gpu",
            "hydra.launcher.partition=gpu-a100",
            "hydra.launcher.array_parallelism=2",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        root,
        trained,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        SBATCH_COPY=str(script),
    )
    assert proc.returncode != 0  # no cluster here: the stand-in refused the job
    lines = set(script.read_text().splitlines())
    for expected in (
        "--array=0-2%2",
        "--partition=gpu-a100",
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--mem=32GB",
        "--time=720",
        "--ntasks-per-node=1",
        "--job-name=lab",
    ):
        assert f"#SBATCH {expected}" in lines, expected
    assert any(line.startswith("srun") and "submitit" in line for line in lines)
    assert "automatic_schema_matching" not in proc.stderr


# --------------------------------------------------------------------------------------- optuna


@pytest.mark.slow
def test_optuna_search_tunes_beam_and_keeps_the_best(root: Path, trained: Path, capsys):
    sweep_dir = root / "optuna"
    args = [
        "run",
        "-m",
        "+experiment=optuna_search",
        *TINY_ARGS,
        "hydra.sweeper.n_trials=3",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = ok(lab(args, root, trained))
    out = proc.stdout + proc.stderr
    assert "Best parameters:" in out and "best run of" in out
    trials = run_dirs(sweep_dir)
    assert list(trials) == ["0", "1", "2"]
    values = {}
    for name, run_dir in trials.items():
        res = results(run_dir)
        search = res["config"]["search"]
        assert res["split"] == "valid" and res["config"]["eval"]["objective"] == "bleu"
        assert search["name"] == "beam_lp" and 0.0 <= search["alpha"] <= 1.5
        assert search["penalty"] in ("average", "gnmt", "word_reward")
        assert search["beam_size"] in (1, 2, 4, 8)
        assert res["objective"] == res["metrics"]["bleu"]
        values[name] = res["objective"]
    kept = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))
    assert set(kept["best_params"]) == {"search.alpha", "search.penalty", "search.beam_size"}
    assert kept["best_value"] == max(values.values())
    best = best_run(sweep_dir)
    assert best.best.objective == max(values.values())
    assert (
        results(best.best.run_dir)["config"]["search"]["penalty"]
        == kept["best_params"]["search.penalty"]
    )
    assert "search.alpha=" in format_best(best)
    # the trials are ordinary runs: the report tabulates them
    df = load_runs(sweep_dir)
    assert len(df) == 3 and set(df["search.penalty"]) <= {"average", "gnmt", "word_reward"}
    # the seeded sampler proposes the same trials again: a rerun skips all three
    again = ok(lab(args, root, trained))
    assert again.stdout.count("skipping") == 3
    cli_main(["best", str(sweep_dir)])
    assert str(best.best.run_dir) in capsys.readouterr().out


# --------------------------------------------------------------------------------------- resume


@pytest.mark.slow
def test_a_rerun_skips_completed_runs_redoes_missing_ones_and_force_reruns(root, trained):
    sweep_dir = root / "resume"
    args = ["run", "-m", *TINY_ARGS, "search.beam_size=1,2,3", f"hydra.sweep.dir={sweep_dir}"]
    ok(lab(args, root, trained))
    before = snapshot(sweep_dir)
    config = results(sweep_dir / "0")["config"]
    assert "hydra" not in config  # only the job's config: no sweep time stamps in it
    # one run lost its results (an interrupted run): only it runs again
    (sweep_dir / "1" / "results.json").unlink()
    proc = ok(lab(args, root, trained))
    assert proc.stdout.count("skipping") == 2
    assert f"-> {sweep_dir / '1'}" in proc.stdout
    after = snapshot(sweep_dir)
    for key in ("0/results.json", "0/predictions.jsonl", "2/results.json", "2/predictions.jsonl"):
        assert after[key] == before[key], key
    assert json.loads(after["1/results.json"][0])["status"] == "completed"
    # force=true reruns everything; force is not part of what a run computes
    forced = ok(lab([*args, "force=true"], root, trained))
    assert "skipping" not in forced.stdout
    assert all(snapshot(sweep_dir)[k][1] != after[k][1] for k in after)
    assert ok(lab(args, root, trained)).stdout.count("skipping") == 3


def test_another_config_never_overwrites_a_completed_run(root, trained):
    run_dir = root / "single"
    ok(lab(["run", *TINY_ARGS, "search.beam_size=2", f"hydra.run.dir={run_dir}"], root, trained))
    before = snapshot(run_dir)
    assert sorted(before) == list(RUN_FILES)
    proc = lab(["run", *TINY_ARGS, "search.beam_size=3", f"hydra.run.dir={run_dir}"], root, trained)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("error:")
    assert "holds a completed run made with other search.beam_size" in proc.stderr
    assert snapshot(run_dir) == before
    # the same in a sweep: job 0 of another sweep lands on the completed directory
    sweep_dir = root / "resume-other"
    ok(
        lab(
            ["run", "-m", *TINY_ARGS, "search.beam_size=1,2", f"hydra.sweep.dir={sweep_dir}"],
            root,
            trained,
        )
    )
    before = snapshot(sweep_dir)
    assert sorted(before) == [f"{run}/{f}" for run in "01" for f in RUN_FILES]
    assert {results(sweep_dir / run)["status"] for run in "01"} == {"completed"}
    proc = lab(
        ["run", "-m", *TINY_ARGS, "search=greedy", f"hydra.sweep.dir={sweep_dir}"], root, trained
    )
    assert proc.returncode != 0 and "error:" in proc.stderr
    assert snapshot(sweep_dir) == before


# ------------------------------------------------------------------------------------ toy_search


@pytest.mark.slow
def test_toy_search_names_runs_by_their_settings(root, trained):
    sweep_dir = root / "toy_search"
    ok(
        lab(
            [
                "run",
                "-m",
                "+experiment=toy_search",
                *TINY_ARGS,
                "search.beam_size=1,2",
                f"hydra.sweep.dir={sweep_dir}",
            ],
            root,
            trained,
        )
    )
    assert list(run_dirs(sweep_dir)) == ["beam-k1", "beam-k2", "beam_lp-k1", "beam_lp-k2"]
    # the greedy run of the header joins the sweep directory
    ok(
        lab(
            [
                "run",
                "+experiment=toy_search",
                *TINY_ARGS,
                "search=greedy",
                f"hydra.run.dir={sweep_dir / 'greedy-k1'}",
            ],
            root,
            trained,
        )
    )
    df = load_runs(sweep_dir)
    assert sorted(df["search"]) == ["beam", "beam", "beam_lp", "beam_lp", "greedy"]
    # a wider sweep later skips the finished runs instead of colliding with them
    proc = ok(
        lab(
            [
                "run",
                "-m",
                "+experiment=toy_search",
                *TINY_ARGS,
                "search.beam_size=1,2,3",
                f"hydra.sweep.dir={sweep_dir}",
            ],
            root,
            trained,
        )
    )
    assert proc.stdout.count("skipping") == 4
    assert {"beam-k3", "beam_lp-k3"} <= set(run_dirs(sweep_dir))


def test_toy_search_and_optuna_search_share_one_checkpoint():
    keys = ("task", "model", "train", "seed")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        a = compose("config", overrides=["+experiment=toy_search"])
        b = compose("config", overrides=["+experiment=optuna_search"])
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
