"""``logger.save_code``, ``logger.git`` and ``logger.system_stats``: off by default, and when
turned on they change the run's ``wandb.Settings`` and what W&B records (real offline runs)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.app import CONF_DIR
from lab.errors import LabError
from lab.loggers import SWITCHES, WandbLogger, open_logger
from lab.wandb_reader import read_run
from tests.helpers.wandb_env import WANDB_CFG, isolate_wandb


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A fresh git repository with one commit, as the working directory; and its commit."""
    isolate_wandb(monkeypatch, tmp_path / "wandb-env")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        "GIT_AUTHOR_NAME": "lab",
        "GIT_AUTHOR_EMAIL": "lab@example.org",
        "GIT_COMMITTER_NAME": "lab",
        "GIT_COMMITTER_EMAIL": "lab@example.org",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "PATH": "/usr/bin:/bin",
    }
    # a message of its own, so that no two tests' repositories share a commit
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", str(tmp_path)]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    yield repo, commit


def _run(cfg: dict, run_dir: Path) -> tuple[WandbLogger, dict]:
    with open_logger(cfg, run_dir=run_dir, name="s", group=None, job_type="decode", tags=[]) as lg:
        assert isinstance(lg, WandbLogger)
        lg.log({"bleu": 1.0})
    return lg, read_run(run_dir)


@pytest.mark.parametrize("option", ["wandb", "none"])
def test_collectors_are_off_in_the_logger_configs(option: str) -> None:
    cfg = yaml.safe_load((CONF_DIR / "logger" / f"{option}.yaml").read_text())
    assert {key: cfg[key] for key in SWITCHES} == dict.fromkeys(SWITCHES, False)


def test_off_by_default_nothing_about_code_git_or_machine(
    git_repo: tuple[Path, str], tmp_path: Path
) -> None:
    lg, data = _run(WANDB_CFG, tmp_path / "run")
    s = lg.run.settings
    assert (s.save_code, s.disable_code, s.disable_git) == (False, True, True)
    assert (s.x_disable_stats, s.x_disable_machine_info, s.x_disable_meta) == (True, True, True)
    assert data["environment"] == {} and data["stats"] == []


def test_turned_on_they_change_the_settings_and_the_record(
    git_repo: tuple[Path, str], tmp_path: Path
) -> None:
    _, commit = git_repo
    cfg = WANDB_CFG | {"save_code": True, "git": True, "system_stats": True}
    lg, data = _run(cfg, tmp_path / "run")
    s = lg.run.settings
    assert (s.save_code, s.disable_code, s.disable_git) == (True, False, False)
    assert (s.x_disable_stats, s.x_disable_machine_info, s.x_disable_meta) == (False, False, False)
    assert data["environment"]["git"]["commit"] == commit
    assert data["environment"]["cpu_count"] >= 1


def test_git_alone_records_the_commit_but_not_the_machine(
    git_repo: tuple[Path, str], tmp_path: Path
) -> None:
    _, commit = git_repo
    lg, data = _run(WANDB_CFG | {"git": True}, tmp_path / "run")
    s = lg.run.settings
    assert (s.disable_git, s.x_disable_stats, s.save_code) == (False, True, False)
    assert data["environment"]["git"]["commit"] == commit
    assert "cpu_count" not in data["environment"] and data["stats"] == []


def test_a_switch_must_be_a_boolean(tmp_path: Path) -> None:
    cfg = WANDB_CFG | {"git": "yes"}
    with pytest.raises(LabError, match="logger.git must be true or false"):
        open_logger(cfg, run_dir=tmp_path, name="x", group=None, job_type="t", tags=[])
    assert list(tmp_path.iterdir()) == []
