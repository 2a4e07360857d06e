"""Check ``lab run`` overrides against the config tree before Hydra starts.

Hydra reports an unknown option or key over several lines; this turns the common mistakes (a
misspelled plugin name, a misspelled key) into one line with the valid choices and a "did you
mean", in the parent process, before a sweep launches any job.

It also catches a Hydra launcher or sweeper whose plugin is not installed (the plugins are the
``sweep`` extra), which Hydra reports as a missing config over a dozen lines, and names the one
command that installs it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from lab.errors import LabError
from lab.registry import unknown_name_message

GROUPS = ("task", "model", "search", "train", "logger")
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


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _values(ov: Override) -> list[str]:
    if ov.is_sweep_override():
        return [str(v) for v in ov.sweep_string_iterator()]
    return [str(ov.value())]


def _defaults(conf: Path, experiment: str | None) -> dict[str, str]:
    """Group -> option chosen by config.yaml, patched by the experiment's overrides."""
    chosen = {}
    for item in _load(conf / "config.yaml").get("defaults", []):
        if isinstance(item, dict):
            chosen.update({k: str(v) for k, v in item.items() if k in GROUPS})
    if experiment:
        path = conf / "experiment" / f"{experiment}.yaml"
        for item in _load(path).get("defaults", []) if path.exists() else []:
            if isinstance(item, dict):
                for k, v in item.items():
                    group = _group_of(k)
                    if group in GROUPS:
                        chosen[group] = str(v)
    return chosen


def _group_of(key: str) -> str:
    """``override /hydra/sweeper`` (a defaults-list key) -> ``hydra/sweeper``."""
    return key.replace("override ", "").strip().lstrip("/")


def _plugin_option(conf: Path, group: str, option: str) -> str:
    """The plugin option behind ``option``: a lab preset (``conf/<group>/<option>.yaml``) is
    followed through its defaults list (``local_processes`` -> ``submitit_local``)."""
    seen: set[str] = set()
    while option not in seen and (conf / group / f"{option}.yaml").is_file():
        seen.add(option)
        defaults = _load(conf / group / f"{option}.yaml").get("defaults", [])
        base = next((d for d in defaults if isinstance(d, str) and d != "_self_"), None)
        if base is None:
            break
        option = base
    return option


def _check_plugins(conf: Path, experiment: str | None, parsed: list[Override]) -> None:
    """Raise ``LabError`` naming the install command when a chosen launcher or sweeper comes
    from a Hydra plugin that is not installed (config.yaml, the experiment, then the command
    line choose, in that order)."""
    chosen: dict[str, tuple[list[str], str]] = {}  # group -> (options, how it was chosen)
    sources = [(conf / "config.yaml", "config.yaml")]
    if experiment:
        sources.append((conf / "experiment" / f"{experiment}.yaml", f"+experiment={experiment}"))
    for path, where in sources:
        for item in _load(path).get("defaults", []) if path.is_file() else []:
            if isinstance(item, dict):
                for key, value in item.items():
                    if _group_of(str(key)) in HYDRA_GROUPS:
                        chosen[_group_of(str(key))] = ([str(value)], where)
    for ov in parsed:
        if ov.key_or_group in HYDRA_GROUPS and not ov.is_delete():
            chosen[ov.key_or_group] = (_values(ov), "")
    for group, (options, where) in chosen.items():
        for option in options:
            base = _plugin_option(conf, group, option)
            plugin = PLUGINS.get((group, base))
            if plugin is None or plugin.installed():
                continue
            what = f"{group}={option}" + (f" (a {base} preset)" if base != option else "")
            needs = f"needs the Hydra plugin {plugin.distribution} (not installed): "
            needs += plugin.install
            raise LabError(f"{where} sets {what}, which {needs}" if where else f"{what} {needs}")


def _check_key(key: str, node: dict, where: str) -> None:
    head, _, rest = key.partition(".")
    if head not in node:
        msg = unknown_name_message("key", head, sorted(map(str, node)))
        raise LabError(
            msg.replace(f"'{head}'.", f"'{head}' in {where}.", 1) + " (+key=value adds a new key)"
        )
    if rest and isinstance(node[head], dict) and node[head]:
        _check_key(rest, node[head], f"{where}.{head}")


def check_overrides(args: list[str], conf: Path) -> None:
    """Raise ``LabError`` for an unknown group option or config key among ``args``."""
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise LabError(" ".join(str(e).split())) from None
    experiment = next((_values(o)[0] for o in parsed if o.key_or_group == "experiment"), None)
    if experiment is not None and not (conf / "experiment" / f"{experiment}.yaml").exists():
        names = sorted(p.stem for p in (conf / "experiment").glob("*.yaml"))
        raise LabError(unknown_name_message("experiment", experiment, names))
    _check_plugins(conf, experiment, parsed)
    chosen = {g: [o] for g, o in _defaults(conf, experiment).items()}
    for ov in parsed:
        if ov.key_or_group in GROUPS and not ov.is_add():
            valid = sorted(p.stem for p in (conf / ov.key_or_group).glob("*.yaml"))
            for v in _values(ov):
                if v not in valid:
                    raise LabError(unknown_name_message(ov.key_or_group, v, valid))
            chosen[ov.key_or_group] = _values(ov)
    root = _load(conf / "config.yaml")
    for ov in parsed:
        key = ov.key_or_group
        if ov.is_add() or ov.is_force_add() or "." not in key and key in GROUPS:
            continue
        if key.startswith("hydra") or key == "experiment" or "/" in key:
            continue
        head, _, rest = key.partition(".")
        if head in GROUPS and rest:
            for option in chosen.get(head, []):
                _check_key(rest, _load(conf / head / f"{option}.yaml"), f"{head}={option}")
        else:
            _check_key(key, {**root, **{g: {} for g in GROUPS}}, "config")
