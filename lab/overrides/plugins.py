"""Hydra launcher and sweeper plugins: which option needs which plugin, and the one-line error
naming the install command when a command line or config chooses one that is missing (Hydra
reports it as a missing config over a dozen lines)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from hydra.core.default_element import ConfigDefault, GroupDefault
from hydra.core.override_parser.types import Override

from lab.errors import LabError
from lab.overrides.sweeps import sweep_values

HYDRA_GROUPS = ("hydra/launcher", "hydra/sweeper")
SWEEP_EXTRA = 'pip install "decoding-lab[sweep]"'


@dataclass(frozen=True)
class Plugin:
    """A Hydra plugin that provides config options: its module and how to install it."""

    module: str
    distribution: str
    install: str = SWEEP_EXTRA

    def installed(self) -> bool:
        """True when the plugin's module can be imported (without importing it)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):  # no hydra_plugins namespace at all
            return False


_JOBLIB = Plugin("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher")
_SUBMITIT = Plugin("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
_OPTUNA = Plugin("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper")
# Not in the extra: hydra-ray-launcher pins cloudpickle<3, which joblib's launcher cannot use.
_RAY = Plugin(
    "hydra_plugins.hydra_ray_launcher",
    "hydra-ray-launcher",
    "pip install hydra-ray-launcher (in an environment without the sweep extra)",
)
# (group, option) -> the plugin that provides it. The lab's own presets (local_processes,
# slurm, ...) are followed through their defaults to one of these.
PLUGINS: dict[tuple[str, str], Plugin] = {
    ("hydra/launcher", "joblib"): _JOBLIB,
    ("hydra/launcher", "submitit_local"): _SUBMITIT,
    ("hydra/launcher", "submitit_slurm"): _SUBMITIT,
    ("hydra/launcher", "ray"): _RAY,
    ("hydra/launcher", "ray_aws"): _RAY,
    ("hydra/sweeper", "optuna"): _OPTUNA,
}


def check_plugins(
    repo: Any, config_name: str, parsed: list[Override], experiment: Override | None
) -> None:
    """Raise ``LabError`` naming the install command when a chosen launcher or sweeper comes
    from a Hydra plugin that is not installed (the primary config, the experiment, then the
    command line choose, in that order)."""
    for group, (options, where) in _chosen(repo, config_name, parsed, experiment).items():
        for option in options:
            base = plugin_option(repo, group, option)
            plugin = PLUGINS.get((group, base))
            if plugin is None or plugin.installed():
                continue
            what = f"{group}={option}" + (f" (a {base} preset)" if base != option else "")
            needs = f"needs the Hydra plugin {plugin.distribution} (not installed): "
            needs += plugin.install
            raise LabError(f"{where} sets {what}, which {needs}" if where else f"{what} {needs}")


def _chosen(
    repo: Any, config_name: str, parsed: list[Override], experiment: Override | None
) -> dict[str, tuple[list[str], str]]:
    """group -> (the options chosen for it, where: a config file or experiment override, or
    "" for the command line), the last to choose winning."""
    chosen: dict[str, tuple[list[str], str]] = {}
    sources = [(config_name, f"{config_name}.yaml")]
    if experiment is not None:
        sources += [
            (f"experiment/{v}", f"{experiment.get_key_element()}={v}")
            for v in sweep_values(experiment, repo)
        ]
    for path, where in sources:
        loaded = repo.load_config(path) if repo.config_exists(path) else None
        for d in loaded.defaults_list or [] if loaded is not None else []:
            if isinstance(d, GroupDefault) and d.group.lstrip("/") in HYDRA_GROUPS:
                chosen[d.group.lstrip("/")] = ([str(d.get_name())], where)
    for ov in parsed:
        if ov.key_or_group in HYDRA_GROUPS and not ov.is_delete():
            chosen[ov.key_or_group] = (sweep_values(ov, repo), "")
    return chosen


def plugin_option(repo: Any, group: str, option: str) -> str:
    """The plugin option behind ``option``: a preset (``conf/<group>/<option>.yaml``) is
    followed through its defaults list (``local_processes`` -> ``submitit_local``)."""
    seen: set[str] = set()
    while option not in seen and repo.config_exists(f"{group}/{option}"):
        seen.add(option)
        loaded = repo.load_config(f"{group}/{option}")
        defaults = loaded.defaults_list or [] if loaded is not None else []
        base = next(
            (d.path for d in defaults if isinstance(d, ConfigDefault) and d.path != "_self_"),
            None,
        )
        if base is None:
            break
        option = str(base).rsplit("/", 1)[-1]
    return option
