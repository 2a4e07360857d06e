"""Every option of every config group composes and builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import lab  # noqa: F401
from lab.app import CONF_DIR
from lab.pipeline import build_search, build_task, options
from lab.registry import MODELS, SEARCHES, TASKS, Registry, UnknownPluginError
from tests.helpers.configs import composed


def options_of(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("name", options_of("model"))
def test_every_model_option_builds(name):
    cfg = composed(f"model={name}")
    assert cfg.model.name in MODELS
    if name == "hf":
        pytest.skip("the hf option names a hub model; built from a local model in test_hf.py")
    if name in ("ensemble", "fusion"):
        pytest.skip(
            "combinations load trained checkpoints; built from saved tiny models in "
            "test_multimodel.py"
        )
    model = MODELS.build(cfg.model.name, 50, 50, **options(cfg.model))
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", options_of("search"))
def test_every_search_option_builds(name):
    cfg = composed(f"search={name}")
    assert cfg.search.name in SEARCHES
    if name == "speculative":
        pytest.skip("the speculative option names a draft checkpoint; built in test_speculative.py")
    assert callable(build_search(cfg))


@pytest.mark.parametrize("name", options_of("task"))
def test_every_task_option_builds(name, tmp_path):
    cfg = composed(f"task={name}")
    assert cfg.task.name in TASKS
    task = build_task(cfg, tmp_path, tmp_path)
    assert task.test_split in task.splits()


@pytest.mark.parametrize("name", options_of("experiment"))
def test_every_experiment_composes(name):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={name}"], return_hydra_config=True)
    assert cfg.experiment_name
    assert cfg.hydra.sweeper.params, "an experiment declares its sweep"
    header = (CONF_DIR / "experiment" / f"{name}.yaml").read_text().splitlines()[:12]
    assert any("lab run" in line for line in header), "the header names the command"


def test_every_group_option_file_is_named_like_its_plugin():
    for group in ("model", "search", "task"):
        for name in options_of(group):
            assert OmegaConf.load(Path(CONF_DIR / group / f"{name}.yaml")).name == name


def test_unknown_names_fail_with_valid_choices_and_a_suggestion():
    with pytest.raises(UnknownPluginError, match=r"Did you mean 'beam'\?.*greedy"):
        SEARCHES.get("beem")


def test_plugins_from_entry_points_of_another_package(tmp_path, monkeypatch):
    dist = tmp_path / "extra_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lab.search]\nshout = extra_mod:Shout\n")
    (tmp_path / "extra_mod.py").write_text(
        'class Shout:\n    """A search from another package."""\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("search", "test")
    assert registry.names() == ["shout"]
    assert registry.get("shout").__doc__ == "A search from another package."
