"""Hydra's own idioms through ``lab run``: shell completion, a user's config directory (``-cd``)
and search path entries (``hydra.searchpath``), ``hydra.job.chdir=true`` with relative paths,
and ``experiment=NAME`` without the ``+``. Real ``lab`` processes decode with a tiny model
trained once; the one-line errors are checked in-process, where they are made.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lab.app import CONF_DIR
from lab.errors import LabError
from lab.overrides import check_overrides
from tests.helpers.lab_process import lab, ok, tiny

MY_BEAM = {"name": "beam", "beam_size": 2, "nbest": 2, "max_len_a": 1.5, "max_len_b": 10}
MY_EXPERIMENT = """# @package _global_
defaults:
  - override /search: my_beam

experiment_name: mine
"""


@pytest.fixture(scope="module")
def my_conf(root: Path) -> Path:
    """A user's config directory: a search option of their own and an experiment using it."""
    conf = root / "my_conf"
    (conf / "search").mkdir(parents=True)
    (conf / "experiment").mkdir()
    (conf / "search" / "my_beam.yaml").write_text(yaml.safe_dump(MY_BEAM))
    (conf / "experiment" / "mine.yaml").write_text(MY_EXPERIMENT)
    return conf


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def error_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``lab run ARGS`` fails with before anything runs."""
    from lab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


# --- shell completion -----------------------------------------------------------------------
def test_shell_completion_installs_and_answers_for_lab_run(root: Path, cache: Path) -> None:
    script = ok(lab(["run", "-sc", "install=bash"], root, cache)).stdout
    assert "hydra_bash_completion()" in script
    assert script.rstrip().endswith("-F hydra_bash_completion lab")
    # what the installed script asks: `lab -sc query=bash` about the line typed so far
    query = lab(["-sc", "query=bash"], root, cache, COMP_LINE="lab run search=beam_")
    assert set(ok(query).stdout.split()) >= {"search=beam_lp", "search=beam_hf"}
    assert "search=greedy" not in query.stdout


# --- a user's configs -----------------------------------------------------------------------
def test_a_config_dir_adds_options_and_experiments(
    root: Path, trained: Path, my_conf: Path
) -> None:
    """``-cd`` (relative to where lab runs) adds ``search=my_beam`` and an experiment that
    picks it, taken without ``+``."""
    run_dir = root / "cd_run"
    args = ["run", "-cd", "my_conf", "experiment=mine", *tiny(), f"hydra.run.dir={run_dir}"]
    ok(lab(args, root, trained))
    config = results(run_dir)["config"]
    assert config["experiment_name"] == "mine"
    assert config["search"] == MY_BEAM


def test_hydra_searchpath_adds_a_search_option(root: Path, trained: Path, my_conf: Path) -> None:
    run_dir = root / "searchpath_run"
    searchpath = f"hydra.searchpath=[file://{my_conf}]"
    args = ["run", searchpath, "search=my_beam", *tiny(), f"hydra.run.dir={run_dir}"]
    ok(lab(args, root, trained))
    assert results(run_dir)["config"]["search"]["beam_size"] == 2
    lines = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert lines and all(len(x["nbest"]) == 2 for x in lines)


def test_user_options_are_checked_like_the_lab_s(my_conf: Path) -> None:
    check_overrides(["-cd", str(my_conf), "search=my_beam"], CONF_DIR)
    with pytest.raises(LabError, match=r"unknown search 'my_bem'\. Did you mean 'my_beam'\?"):
        check_overrides(["--config-dir", str(my_conf), "search=my_bem"], CONF_DIR)
    searchpath = [f"hydra.searchpath=[file://{my_conf}]", "search=my_beam"]
    with pytest.raises(LabError, match=r"'max_len_c' in search=my_beam\. Did you mean 'max_len_"):
        check_overrides([*searchpath, "search.max_len_c=3"], CONF_DIR)
    with pytest.raises(LabError, match=r"unknown search 'my_beam'.*Valid choices: beam, ") as e:
        check_overrides(["search=my_beam"], CONF_DIR)  # not on the search path: not known
    assert "\n" not in str(e.value)
    with pytest.raises(LabError, match=r"unknown experiment 'mien'\. Did you mean 'mine'\?"):
        check_overrides(["-cd", str(my_conf), "experiment=mien"], CONF_DIR)


# --- hydra.job.chdir ------------------------------------------------------------------------
def test_chdir_keeps_relative_paths_relative_to_the_launch_directory(
    root: Path, trained: Path
) -> None:
    """The job runs in its run directory; ``checkpoint`` and ``data_dir`` given relative to
    where ``lab run`` started still find their files."""
    (root / "ckpt").mkdir(exist_ok=True)
    shutil.copy(next((trained / "checkpoints").glob("*/model.pt")), root / "ckpt" / "tiny.pt")
    args = ["run", "hydra.job.chdir=true", "hydra.run.dir=chdir_run", *tiny()]
    args += ["checkpoint=ckpt/tiny.pt", "data_dir=data"]
    ok(lab(args, root, trained))
    config = results(root / "chdir_run")["config"]
    assert config["checkpoint"] == str(root / "ckpt" / "tiny.pt")
    assert config["data_dir"] == str(root / "data")
    hydra_cfg = yaml.safe_load((root / "chdir_run" / ".hydra" / "hydra.yaml").read_text())
    assert hydra_cfg["hydra"]["job"]["chdir"] is True


# --- experiment=NAME ------------------------------------------------------------------------
def test_experiment_without_plus_composes_as_with_plus(root: Path, cache: Path) -> None:
    assert check_overrides(["experiment=quickstart"], CONF_DIR) == ["+experiment=quickstart"]
    assert check_overrides(["-m", "+experiment=quickstart,toy_search"], CONF_DIR)[1].startswith(
        "+experiment="
    )
    shown = ok(lab(["run", "experiment=quickstart", "--cfg", "job"], root, cache)).stdout
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        expected = OmegaConf.to_container(compose("config", overrides=["+experiment=quickstart"]))
    assert yaml.safe_load(shown) == expected


def test_a_config_with_an_experiment_slot_takes_plus_experiment_too(tmp_path: Path) -> None:
    """A primary config whose defaults list has ``experiment: null`` (Hydra refuses ``+`` for
    it): both spellings reach it as ``experiment=NAME``."""
    (tmp_path / "slotted.yaml").write_text(
        "defaults:\n  - config\n  - _self_\n  - experiment: null\n"
    )
    cli = ["-cd", str(tmp_path), "-cn", "slotted"]
    for given in ("+experiment=quickstart", "experiment=quickstart"):
        assert check_overrides([*cli, given], CONF_DIR)[-1] == "experiment=quickstart"


# --- one-line errors for what Hydra refuses -------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hydra/launcher=jobib"], "unknown hydra/launcher 'jobib'. Did you mean 'joblib'?"),
        (["-m", "hydra/sweeper=optuan"], "unknown hydra/sweeper 'optuan'. Did you mean 'optuna'?"),
        (["hydra.sweeper.max_batch_sise=2"], "in hydra/sweeper=basic. Did you mean 'max_batch_"),
        (["hydra.job.chdri=true"], "unknown key 'chdri' in config.hydra.job. Did you mean 'chdir'"),
        (["hydra.job.chdir=maybe"], "'maybe' is not a valid bool"),
        (["-cn", "confg"], "unknown config name 'confg'. Did you mean 'config'?"),
        (["-cd", "no/such/dir"], "no/such/dir is not a directory"),
        (["~eval.limt"], "unknown key 'limt' in config.eval. Did you mean 'limit'?"),
        (["search=greedy,beam"], "search=greedy,beam is a sweep: add -m/--multirun"),
        (["-m", "search=greedy,bem"], "unknown search 'bem'. Did you mean 'beam'?"),
    ],
)
def test_what_hydra_refuses_is_one_line(args, message, capsys) -> None:
    assert message in error_line(args, capsys)
