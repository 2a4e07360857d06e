"""Run loggers against real W&B offline runs, read back with wandb's own run-file reader."""

from __future__ import annotations

import math
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.errors import LabError
from lab.loggers import MODES, NoneLogger, RunLogger, WandbLogger, open_logger, resolve_mode
from lab.loggers.checkpoints import artifact_name
from lab.loggers.runs import table_cells
from lab.wandb_reader import RunFileError, find_run_file, iter_records, read_run
from tests.helpers.wandb_env import WANDB_CFG, isolate_wandb

N_STEPS = 60
EXPERIMENT = {"model": {"name": "tiny", "d_model": 8}, "search": "beam", "beam_size": 4}


@pytest.fixture(scope="module")
def wandb_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("wandb-env")
    with pytest.MonkeyPatch.context() as mp:
        isolate_wandb(mp, root)
        yield root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file laid out like a cached checkpoint: ``.../checkpoints/<key>/model.pt``."""
    path = tmp_path_factory.mktemp("cache") / "checkpoints" / "0123abcd4567ef89" / "model.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(range(256)) * 64)
    return path


@pytest.fixture(scope="module")
def logged_run(
    wandb_env: Path, tmp_path_factory: pytest.TempPathFactory, checkpoint: Path
) -> dict[str, Any]:
    """One finished offline training run: curves, summary, a predictions table, its model."""
    run_dir = tmp_path_factory.mktemp("run")
    with open_logger(
        WANDB_CFG,
        run_dir=run_dir,
        name="tiny-beam4",
        group="sweep-1",
        job_type="train",
        tags=["beam", "tiny"],
        config=EXPERIMENT,
    ) as lg:
        assert isinstance(lg, RunLogger)
        for step in range(1, N_STEPS + 1):
            lg.log({"train/loss": 1.0 / step, "train/tokens": step * 10}, step=step * 50)
        for step, loss in ((1000, 2.0), (2000, 1.25), (3000, 1.5)):
            lg.log({"valid/loss": loss, "valid/ppl": math.exp(loss)}, step=step)
        lg.checkpoint(checkpoint, "tiny")
        lg.log_table(
            "predictions",
            ["id", "src", "hyp", "logprob", "length"],
            [[0, "a b", "b a", -1.5, 2], [1, "c", "d", -0.25, 1]],
        )
        lg.summary(
            {"bleu": 27.5, "exact_match": 0.5, "bleu_signature": "nrefs:1|case:mixed", "n": [1]}
        )
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
    assert logged_run["data"]["file"] == str(run_file)


def test_read_run_returns_run_config_history_summary(logged_run: dict[str, Any]) -> None:
    data = logged_run["data"]
    run = data["run"]
    assert run["id"] == logged_run["id"]
    assert run["project"] == "decoding-lab-test"
    assert (run["group"], run["job_type"], run["name"]) == ("sweep-1", "train", "tiny-beam4")
    assert run["tags"] == ["beam", "tiny"]
    assert data["config"] == EXPERIMENT

    train_rows = [row for row in data["history"] if "train/loss" in row]
    assert [row["train/step"] for row in train_rows] == [50 * s for s in range(1, N_STEPS + 1)]
    assert [row["_step"] for row in train_rows] == list(range(N_STEPS))  # W&B's row counter
    assert train_rows[3]["train/loss"] == pytest.approx(0.25)
    assert train_rows[-1]["train/tokens"] == N_STEPS * 10

    summary = data["summary"]
    assert summary["bleu"] == 27.5 and summary["exact_match"] == 0.5
    assert summary["train/loss"] == pytest.approx(1.0 / N_STEPS)
    assert data["exit_code"] == 0
    assert data["producer"].startswith("0.")


def test_training_metrics_are_charted_against_the_training_step(
    logged_run: dict[str, Any],
) -> None:
    data = logged_run["data"]
    defined = {m.get("name") or m.get("glob_name"): m for m in data["metrics"]}
    assert "train/step" in defined
    for pattern in ("train/*", "valid/*"):
        assert defined[pattern]["step_metric"] == "train/step"
    assert defined["valid/loss"]["summary"] == {"min": True}
    assert data["summary"]["valid/loss"] == {"min": 1.25}  # the best validation, not the last
    assert data["summary"]["valid/ppl"] == {"min": pytest.approx(math.exp(1.25))}


def test_summary_keeps_numbers_and_metric_signatures(logged_run: dict[str, Any]) -> None:
    summary = logged_run["data"]["summary"]
    assert summary["bleu_signature"] == "nrefs:1|case:mixed"
    assert "n" not in summary  # neither a number nor text


def test_read_run_returns_logged_table_with_numbers(logged_run: dict[str, Any]) -> None:
    table = logged_run["data"]["tables"]["predictions"]
    assert table["columns"] == ["id", "src", "hyp", "logprob", "length"]
    assert table["data"] == [[0, "a b", "b a", -1.5, 2], [1, "c", "d", -0.25, 1]]
    assert all(isinstance(row[3], float) and isinstance(row[4], int) for row in table["data"])


def test_table_columns_are_numbers_or_text() -> None:
    rows = [[1, "x", -1.5, True, ["a", "b"], None], [2, 3, float("-inf"), 7, None, 2.5]]
    assert table_cells(6, rows) == [
        [1, "x", -1.5, "True", '["a", "b"]', None],
        [2, "3", None, "7", None, 2.5],
    ]
    with pytest.raises(ValueError, match="2 cells, the table has 3 columns"):
        table_cells(3, [[1, 2]])


def test_training_run_logs_its_checkpoint_as_a_model_artifact(
    logged_run: dict[str, Any], checkpoint: Path
) -> None:
    (artifact,) = [a for a in logged_run["data"]["artifacts"] if a["type"] == "model"]
    assert artifact["name"] == "tiny-0123abcd4567ef89"
    assert artifact["used"] is False
    assert artifact["files"] == {"model.pt": checkpoint.resolve().as_uri()}
    assert artifact["metadata"]["bytes"] == checkpoint.stat().st_size
    assert artifact["digest"]


def test_decoding_run_uses_the_checkpoint_artifact(
    logged_run: dict[str, Any], checkpoint: Path, tmp_path: Path
) -> None:
    with open_logger(
        WANDB_CFG, run_dir=tmp_path, name="decode", group="sweep-1", job_type="decode", tags=[]
    ) as lg:
        lg.checkpoint(checkpoint, "tiny")
        lg.checkpoint(tmp_path / "no-such-file.pt", "tiny")  # nothing to reference: skipped
    (made,) = [a for a in logged_run["data"]["artifacts"] if a["type"] == "model"]
    (used,) = [a for a in read_run(tmp_path)["artifacts"] if a["type"] == "model"]
    assert used["used"] is True  # an input of the decoding run: wandb sync records the use
    assert (used["name"], used["digest"], used["files"]) == (
        made["name"],
        made["digest"],
        made["files"],
    )


def test_artifact_names(tmp_path: Path) -> None:
    cached = tmp_path / "checkpoints" / "17cb27c5d11436d9" / "model.pt"
    assert artifact_name(cached, "transformer") == "transformer-17cb27c5d11436d9"
    a, b = tmp_path / "a" / "best.pt", tmp_path / "b" / "best.pt"
    assert artifact_name(a, "gru").startswith("gru-best-")
    assert artifact_name(a, "gru") != artifact_name(b, "gru")
    assert artifact_name(tmp_path / "my model!.pt", "gru").startswith("gru-my_model_-")


def test_console_line_says_once_where_the_run_went(
    wandb_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_logger(
        WANDB_CFG, run_dir=tmp_path, name="x", group=None, job_type="decode", tags=[]
    ) as lg:
        lg.log({"bleu": 1.0})
    out = capsys.readouterr().out
    folder = lg.offline_dir
    assert out.splitlines() == [f"wandb: offline run in {folder}; sync with: wandb sync {folder}"]


def test_disabled_mode_says_so_and_writes_nothing(
    wandb_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = WANDB_CFG | {"mode": "disabled"}
    with open_logger(cfg, run_dir=tmp_path, name="x", group=None, job_type="t", tags=[]) as lg:
        assert isinstance(lg, WandbLogger)
        lg.log({"train/loss": 1.0}, step=1)
        lg.summary({"bleu": 1.0})
        assert (lg.id, lg.offline_dir) == (None, None)
    assert capsys.readouterr().out == "wandb: disabled; this run is not recorded\n"
    assert not (tmp_path / "wandb").exists()


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
    assert data["run"]["name"] == "crash"  # outside a Hydra job: the name given


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
    isolate_wandb(monkeypatch, tmp_path)
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
    with pytest.raises(RunFileError, match="could not be read: .*bad header"):
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
    records = list(iter_records(original))
    assert records[0]["type"] == "header" and records[-1]["type"] == "exit"

    truncated = tmp_path / "truncated.wandb"
    shutil.copy(original, truncated)
    with truncated.open("r+b") as fh:
        fh.truncate(original.stat().st_size - 5)
    cut = list(iter_records(truncated))
    assert 0 < len(cut) < len(records) and cut == records[: len(cut)]
    assert read_run(truncated, wait=0)["exit_code"] is None  # a run that never finished

    # the file: a 7-byte header, then chunks of crc (4) | length (2) | type (1) | payload
    damaged = tmp_path / "damaged.wandb"
    raw = bytearray(original.read_bytes())
    (length,) = struct.unpack_from("<H", raw, 7 + 4)
    raw[7 + 7 + length // 2] ^= 0xFF  # flip a byte inside the first record's payload
    damaged.write_bytes(bytes(raw))
    with pytest.raises(RunFileError, match="is damaged: .*checksum mismatch"):
        list(iter_records(damaged))


def test_an_empty_wandb_mode_means_unset_and_a_bad_one_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``WANDB_MODE= lab run`` would reach wandb's own validation as '' (a pydantic traceback)."""
    isolate_wandb(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_MODE", "")
    assert resolve_mode(None) == "offline"
    assert "WANDB_MODE" not in os.environ
    with open_logger(
        {"name": "wandb"}, run_dir=tmp_path, name="x", group=None, job_type="t", tags=[]
    ) as lg:
        lg.summary({"bleu": 1.0})
    monkeypatch.setenv("WANDB_MODE", "offlne")
    with pytest.raises(LabError, match="WANDB_MODE='offlne' is not a W&B mode") as e:
        resolve_mode("offline")
    assert "\n" not in str(e.value)
