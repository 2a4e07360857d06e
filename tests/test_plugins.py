"""A third-party plug-in package: ``tests/plugin_example`` adds the search ``capped_greedy``
(its class through the ``lab.search`` entry point, its config option through a Hydra
``SearchPathPlugin``), and an installed copy runs as ``lab run search=capped_greedy``.

The package is installed with pip (``--no-deps --no-index``) into a directory of its own that
the ``lab`` processes get on ``PYTHONPATH``: an environment with this one's packages plus the
plug-in, built in seconds, with nothing written into this environment or the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.registry import Registry
from tests.helpers.lab_process import lab_env, tiny

EXAMPLE = Path(__file__).with_name("plugin_example")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/plugin_example`` installed from a copy (pip builds in the source tree)."""
    tmp = tmp_path_factory.mktemp("plugin")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    shutil.copytree(EXAMPLE, tmp / "src", ignore=ignore)
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    pip += ["--no-index", "--target", str(tmp / "site"), str(tmp / "src")]
    subprocess.run(pip, check=True, env=quiet, capture_output=True)
    return tmp / "site"


def run_together(commands: list[list[str]], root: Path, site: Path) -> list[tuple[int, str, str]]:
    """``lab COMMAND`` for each command, all at once (each is mostly the lab's start-up);
    returns (exit status, stdout, stderr) of each."""
    env = lab_env(root, root / "cache", PYTHONPATH=str(site))
    procs = []
    for i, args in enumerate(commands):
        out, err = (root / f"{i}.out").open("w"), (root / f"{i}.err").open("w")
        cmd = [sys.executable, "-m", "lab.cli", *args]
        procs.append(subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=err, text=True))
    done = []
    for i, proc in enumerate(procs):
        code = proc.wait(timeout=600)
        done.append((code, (root / f"{i}.out").read_text(), (root / f"{i}.err").read_text()))
    return done


def test_an_installed_plugin_package_adds_a_search_and_its_config(site: Path, tmp_path: Path):
    """The run decodes with the plug-in's class and the settings of its YAML; ``lab list``
    shows it; a misspelled key of its config gets the lab's one-line "did you mean"."""
    run_dir = tmp_path / "run"
    small = tiny(train__max_steps=3, task__n_test=5, eval__limit=3)
    run, listed, typo = run_together(
        [
            [
                "run",
                "search=capped_greedy",
                "search.max_tokens=3",
                *small,
                f"hydra.run.dir={run_dir}",
            ],
            ["list", "search"],
            ["run", "search=capped_greedy", "search.max_tokns=3", *small],
        ],
        tmp_path,
        site,
    )
    assert run[0] == 0, f"rc={run[0]}\n{run[1][-2000:]}\n{run[2][-4000:]}"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed"
    assert results["config"]["search"] == {"name": "capped_greedy", "max_tokens": 3}
    rows = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(0 < r["length"] <= 3 for r in rows)

    assert listed[0] == 0 and "capped_greedy" in listed[1] and "example plug-in" in listed[1]

    assert typo[0] == 2 and typo[2].count("\n") == 1, typo[2]
    assert "'max_tokns' in search=capped_greedy. Did you mean 'max_tokens'?" in typo[2]


def test_a_plugin_that_fails_to_import_is_an_error_only_when_asked_for(monkeypatch):
    broken = EntryPoint("shout", "no_such_module_anywhere:Shout", "lab.search")
    good = EntryPoint("quiet", "lab.search.beam.greedy:Greedy", "lab.search")
    monkeypatch.setattr("lab.registry.entry_points", lambda group: [broken, good])
    registry = Registry("search", "test")
    assert registry.names() == ["quiet"]
    why = r"search 'shout' \(no_such_module_anywhere:Shout, from its package\) failed to load"
    with pytest.raises(LabError, match=why + ": ModuleNotFoundError") as e:
        registry.get("shout")
    assert "\n" not in str(e.value)
