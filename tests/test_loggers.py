"""Run loggers against real W&B offline runs, read back with the offline run-file reader."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.errors import LabError
from lab.loggers import MODES, NoneLogger, RunLogger, open_logger, resolve_mode
from lab.wandb_reader import BLOCK_SIZE, RunFileError, find_run_file, iter_records, read_run

N_STEPS = 200  # enough rows for the run file to span several 32 KiB blocks
WANDB_CFG = {"name": "wandb", "mode": "offline", "project": "decoding-lab-test", "entity": None}
EXPERIMENT = {"model": {"name": "tiny", "d_model": 8}, "search": "beam", "beam_size": 4}


def _isolate_wandb(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Keep W&B offline, silent and inside ``root``; make sure no credentials are found."""
    for var in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_MODE", "WANDB_ENTITY"):
        mp.delenv(var, raising=False)
    mp.setenv("NETRC", str(root / "no-netrc"))
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    for var, sub in (
        ("WANDB_DIR", "wandb-dir"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ):
        mp.setenv(var, str(root / sub))


@pytest.fixture(scope="module")
def wandb_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("wandb-env")
    with pytest.MonkeyPatch.context() as mp:
        _isolate_wandb(mp, root)
        yield root


@pytest.fixture(scope="module")
def logged_run(wandb_env: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One finished offline run with history, summary and a predictions table."""
    run_dir = tmp_path_factory.mktemp("run")
    with open_logger(
        WANDB_CFG,
        run_dir=run_dir,
        name="tiny-beam4",
        group="sweep-1",
        job_type="eval",
        tags=["beam", "tiny"],
        config=EXPERIMENT,
    ) as lg:
        assert isinstance(lg, RunLogger)
        for step in range(N_STEPS):
            lg.log({"loss": 1.0 / (step + 1), "tokens": step * 10}, step=step)
        lg.log_table("predictions", ["src", "ref", "hyp"], [["a b", "b a", "b a"], ["c", "c", "d"]])
        lg.summary({"bleu": 27.5, "exact_match": 0.5})
        info = {"id": lg.id, "url": lg.url, "offline_dir": lg.offline_dir}
    return {"run_dir": run_dir, "data": read_run(run_dir), **info}


def test_offline_run_files_live_in_run_dir(logged_run: dict[str, Any]) -> None:
    run_dir: Path = logged_run["run_dir"]
    offline_dir: Path = logged_run["offline_dir"]
    assert offline_dir.parent == run_dir / "wandb"
    assert offline_dir.name.startswith("offline-run-")
    assert logged_run["url"] is None
    run_file = find_run_file(run_dir)
    assert run_file == offline_dir / f"run-{logged_run['id']}.wandb"
    assert run_file.stat().st_size > 2 * BLOCK_SIZE


def test_read_run_returns_run_config_history_summary(logged_run: dict[str, Any]) -> None:
    data = logged_run["data"]
    run = data["run"]
    assert run["id"] == logged_run["id"]
    assert run["project"] == "decoding-lab-test"
    assert (run["group"], run["job_type"], run["name"]) == ("sweep-1", "eval", "tiny-beam4")
    assert run["tags"] == ["beam", "tiny"]
    assert data["config"] == EXPERIMENT

    metric_rows = [row for row in data["history"] if "loss" in row]
    assert [row["_step"] for row in metric_rows] == list(range(N_STEPS))
    assert metric_rows[3]["loss"] == pytest.approx(0.25)
    assert metric_rows[-1]["tokens"] == (N_STEPS - 1) * 10

    summary = data["summary"]
    assert summary["bleu"] == 27.5 and summary["exact_match"] == 0.5
    assert summary["loss"] == pytest.approx(1.0 / N_STEPS)
    assert data["exit_code"] == 0
    assert data["producer"].startswith("0.")


def test_read_run_returns_logged_table(logged_run: dict[str, Any]) -> None:
    table = logged_run["data"]["tables"]["predictions"]
    assert table["columns"] == ["src", "ref", "hyp"]
    assert table["data"] == [["a b", "b a", "b a"], ["c", "c", "d"]]


def test_context_manager_finishes_failed_run(wandb_env: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="decode failed"):
        with open_logger(
            WANDB_CFG, run_dir=tmp_path, name="crash", group=None, job_type="train", tags=[]
        ) as lg:
            lg.log({"loss": 3.0})
            raise RuntimeError("decode failed")
    lg.finish()  # already finished: a second call is a no-op
    data = read_run(tmp_path)
    assert data["exit_code"] == 1
    assert data["run"]["group"] is None and data["run"]["job_type"] == "train"
    assert data["history"][0]["loss"] == 3.0


def test_none_logger_writes_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with open_logger(
        {"name": "none"}, run_dir=run_dir, name="x", group="g", job_type="eval", tags=["t"]
    ) as lg:
        assert isinstance(lg, NoneLogger) and isinstance(lg, RunLogger)
        lg.log({"loss": 1.0}, step=0)
        lg.log_table("predictions", ["a"], [[1]])
        lg.summary({"bleu": 1.0})
        assert (lg.id, lg.url, lg.offline_dir) == (None, None, None)
    assert list(tmp_path.iterdir()) == []


def test_unknown_logger_names_choices(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="wandb, none"):
        open_logger(
            {"name": "mlflow"}, run_dir=tmp_path, name="x", group=None, job_type="t", tags=[]
        )


@pytest.mark.parametrize("name", ["wandb", "none"])
def test_invalid_mode_names_choices(tmp_path: Path, name: str) -> None:
    with pytest.raises(LabError, match=", ".join(MODES)):
        open_logger(
            {"name": name, "mode": "sometimes"},
            run_dir=tmp_path,
            name="x",
            group=None,
            job_type="t",
            tags=[],
        )
    assert list(tmp_path.iterdir()) == []


def test_auto_mode_follows_local_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _isolate_wandb(monkeypatch, tmp_path)
    monkeypatch.delenv("WANDB_MODE")
    assert resolve_mode(None) == "offline"
    assert resolve_mode("auto") == "offline"
    assert resolve_mode("online") == "online" and resolve_mode("disabled") == "disabled"

    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_mode(None) == "offline"  # an explicit WANDB_MODE wins in auto mode

    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("NETRC", str(tmp_path / "missing"))
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_mode(None) == "online"


def test_reader_rejects_non_run_files(tmp_path: Path) -> None:
    bogus = tmp_path / "run-x.wandb"
    bogus.write_bytes(b"not a run file")
    with pytest.raises(RunFileError, match="not a W&B run file"):
        list(iter_records(bogus))
    with pytest.raises(RunFileError, match="does not exist"):
        read_run(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunFileError, match="no W&B run under"):
        read_run(empty)


def test_reader_detects_damage_and_tolerates_truncation(
    logged_run: dict[str, Any], tmp_path: Path
) -> None:
    original = find_run_file(logged_run["run_dir"])
    n_records = sum(1 for _ in iter_records(original))

    truncated = tmp_path / "truncated.wandb"
    shutil.copy(original, truncated)
    with truncated.open("r+b") as fh:
        fh.truncate(original.stat().st_size - 5)
    assert 0 < sum(1 for _ in iter_records(truncated)) < n_records

    damaged = tmp_path / "damaged.wandb"
    raw = bytearray(original.read_bytes())
    (length,) = struct.unpack_from("<H", raw, 7 + 4)
    raw[7 + 7 + length // 2] ^= 0xFF  # flip a byte inside the first record's payload
    damaged.write_bytes(bytes(raw))
    with pytest.raises(RunFileError, match="checksum mismatch"):
        list(iter_records(damaged))
