"""The lab as an installed package: a wheel carries its configs and experiments and runs from any
directory; the sweep plugins are an extra, and without them ``lab run`` says how to get them.

The wheel is built once per module from a copy of the sources (so nothing is written into the
checkout) and installed with ``--no-deps`` into a fresh virtualenv. That venv reaches torch,
Hydra and the rest through a ``.pth`` line naming this interpreter's site-packages, which adds
the directory to ``sys.path`` without processing its own ``.pth`` files: the checkout's editable
install stays invisible, so the only ``lab`` there is the wheel's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from setuptools import find_packages

from lab.app import CONF_DIR
from lab.errors import LabError
from lab.overrides import SWEEP_EXTRA, Plugin, check_overrides
from tests.helpers.lab_process import lab_env

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SOURCES = ("pyproject.toml", "README.md", "lab", "conf", "experiments")


# --- what pyproject.toml declares -----------------------------------------------------------
def test_every_lab_package_is_in_the_wheel_list():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = set(find_packages(str(REPO), include=["lab", "lab.*"]))
    assert listed - {"lab.conf"} == on_disk, "update [tool.setuptools] packages in pyproject.toml"


def test_configs_ship_inside_the_package():
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"lab.conf": "conf"}
    assert "**/*.yaml" in setuptools["package-data"]["lab.conf"]
    assert (REPO / "conf" / "experiment").resolve() == (REPO / "experiments").resolve()


def test_pytest_and_the_sweep_plugins_are_not_runtime_dependencies():
    project = PYPROJECT["project"]
    runtime = " ".join(project["dependencies"])
    for name in ("pytest", "hydra-joblib-launcher", "hydra-submitit-launcher", "optuna"):
        assert name not in runtime
    sweep = " ".join(project["optional-dependencies"]["sweep"])
    for name in ("hydra-joblib-launcher", "hydra-submitit-launcher", "hydra-optuna-sweeper"):
        assert name in sweep
    assert any(d.startswith("pytest") for d in project["optional-dependencies"]["dev"])


def test_a_checkout_uses_its_top_level_configs():
    assert CONF_DIR == REPO / "conf"


# --- a launcher or sweeper whose plugin is missing ------------------------------------------
@pytest.fixture
def no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Plugin, "installed", lambda self: False)


@pytest.mark.parametrize(
    ("args", "plugin"),
    [
        (["hydra/launcher=joblib"], "hydra-joblib-launcher"),
        (["-m", "hydra/launcher=submitit_local"], "hydra-submitit-launcher"),
        (["hydra/launcher=local_processes"], "hydra-submitit-launcher"),
        (["hydra/launcher=slurm_gpu"], "hydra-submitit-launcher"),
        (["hydra/sweeper=optuna"], "hydra-optuna-sweeper"),
        (["+experiment=optuna_search"], "hydra-optuna-sweeper"),
    ],
)
def test_missing_plugin_is_one_line_naming_the_extra(no_plugins, args: list[str], plugin: str):
    with pytest.raises(LabError) as info:
        check_overrides(args, CONF_DIR)
    message = str(info.value)
    assert "\n" not in message
    assert plugin in message and SWEEP_EXTRA in message
    assert SWEEP_EXTRA == 'pip install "decoding-lab[sweep]"'


def test_the_lab_presets_name_what_they_stand_for(no_plugins):
    with pytest.raises(LabError, match=r"local_processes \(a submitit_local preset\)"):
        check_overrides(["hydra/launcher=local_processes"], CONF_DIR)
    with pytest.raises(LabError, match=r"\+experiment=optuna_search sets hydra/sweeper=optuna"):
        check_overrides(["+experiment=optuna_search"], CONF_DIR)


def test_hydra_s_own_launcher_and_sweeper_need_no_plugin(no_plugins):
    check_overrides(["hydra/launcher=basic", "hydra/sweeper=basic", "search=greedy"], CONF_DIR)
    check_overrides(["+experiment=quickstart"], CONF_DIR)


def test_installed_plugins_pass(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(Plugin, "installed", lambda self: True)
    check_overrides(["+experiment=optuna_search", "hydra/launcher=joblib"], CONF_DIR)


def test_plugin_presence_is_looked_up_without_importing():
    assert Plugin("hydra_plugins.no_such_plugin", "x").installed() is False
    assert Plugin("no_such_namespace.plugin", "x").installed() is False
    assert Plugin("hydra", "hydra-core").installed() is True


# --- the wheel, installed on its own --------------------------------------------------------
@dataclass
class Installed:
    venv: Path
    python: Path
    lab: Path
    cwd: Path  # a directory outside the checkout

    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = lab_env(self.cwd, self.cwd / "cache")
        env.pop("PYTHONPATH", None)
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _check(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from a copy of the sources, installed alone into a fresh venv."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(REPO / name, src / name)
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    pip = [sys.executable, "-m", "pip"]
    build = [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, str(src), "-w", str(tmp / "dist")], check=True, env=quiet)
    (wheel,) = (tmp / "dist").glob("decoding_lab-*.whl")

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "zz-lab-dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    install = [*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index"]
    install.append("--ignore-installed")  # never touch the lab installed where deps come from
    subprocess.run([*install, str(wheel)], check=True, env=quiet)

    cwd = tmp / "elsewhere"
    cwd.mkdir()
    return Installed(venv, python, venv / "bin" / "lab", cwd)


def test_the_wheel_holds_the_configs_and_experiments(installed: Installed):
    script = "import lab, lab.app; print(lab.__file__); print(lab.app.CONF_DIR)"
    module, conf = _check(installed.run(installed.python, "-c", script)).split()
    assert Path(module).is_relative_to(installed.venv), "imported the checkout, not the wheel"
    assert Path(conf) == Path(module).parent / "conf"
    assert (Path(conf) / "config.yaml").is_file()
    shipped = {p.name for p in (Path(conf) / "experiment").glob("*.yaml")}
    assert shipped == {p.name for p in (REPO / "experiments").glob("*.yaml")}


def test_lab_list_runs_from_any_directory(installed: Installed):
    out = _check(installed.run(installed.lab, "list", "search"))
    assert "beam" in out and "greedy" in out


def test_python_m_lab_composes_the_config(installed: Installed):
    args = ["-m", "lab", "run", "search=greedy", "--cfg", "job"]
    out = _check(installed.run(installed.python, *args))
    assert "name: greedy" in out and "task:" in out and "model:" in out


def test_an_experiment_resolves(installed: Installed):
    out = _check(installed.run(installed.lab, "run", "+experiment=quickstart", "--cfg", "job"))
    assert "experiment_name: quickstart" in out


def test_a_misspelled_option_is_still_one_line(installed: Installed):
    proc = installed.run(installed.lab, "run", "search=bem", "--cfg", "job")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Did you mean 'beam'" in proc.stderr
