"""Check a ``lab run`` command line with Hydra itself before Hydra runs it, in one-line errors.

The config is composed here by Hydra's own config loader, through the search path that ``lab
run`` will use: the lab's configs, ``-cd/--config-dir``, ``hydra.searchpath`` and the
``SearchPathPlugin``s of installed packages (``hydra_plugins``). So whatever Hydra accepts is
accepted, a user's own config directory included; what it refuses is reworded. Hydra reports an
unknown option or key over several lines; here it becomes one line with the valid choices and a
"did you mean", in the parent process, before a sweep launches any job. Every option a sweep
names is looked up, and composed when keys are set under its group, so that a key which one
option lacks is caught too. Values are checked where they are used (a plugin's signature in
``lab.registry``, ``lab.config_checks``), not by typed schemas here: a schema would also
convert values (an int in a float field) that the checkpoint cache keys hash.

It also catches a Hydra launcher or sweeper whose plugin is not installed (the plugins are the
``sweep`` extra), which Hydra reports as a missing config over a dozen lines, and names the one
command that installs it.

``experiment=NAME`` and ``+experiment=NAME`` both work: the override is passed on in the form
the primary config takes (``+`` appends the group; a config whose defaults list has an
``experiment`` entry takes it without). Hydra refuses the other form in each case.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.core.default_element import ConfigDefault, GroupDefault
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, IntervalSweep, Override
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lab.errors import LabError
from lab.overrides import hydra_private
from lab.overrides.hydra_private import HydraInternals
from lab.registry import unknown_name_message

HYDRA_GROUPS = ("hydra/launcher", "hydra/sweeper")
SWEEP_EXTRA = 'pip install "decoding-lab[sweep]"'
APP_FILE = Path(__file__).parents[1] / "app.py"  # Hydra resolves a relative -cp against it
NEW_KEY = " (+key=value adds a new key)"


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


@dataclass
class CommandLine:
    """What Hydra's own argument parser makes of ``lab run ARGS``."""

    overrides: list[str]
    config_name: str
    config_path: str | None
    config_dir: str | None
    multirun: bool


def parse_command_line(args: list[str], conf: Path, hydra: HydraInternals) -> CommandLine | None:
    """Hydra's reading of ``args``; None when there is no config to check: shell completion,
    help, version, a rerun, or arguments Hydra itself will refuse (it says why)."""
    if any(a == "--version" or a.startswith("--experimental-rerun") for a in args):
        return None
    parser = hydra.get_args_parser()
    parser.exit_on_error = False
    try:
        ns, extra = parser.parse_known_args(args)
    except argparse.ArgumentError:
        return None
    if extra or ns.shell_completion or ns.help or ns.hydra_help:
        return None
    return CommandLine(
        overrides=list(ns.overrides),
        config_name=ns.config_name or "config",
        config_path=ns.config_path or str(conf),
        config_dir=ns.config_dir,
        multirun=bool(ns.multirun),
    )


def config_search_path(cli: CommandLine, hydra: HydraInternals) -> ConfigSearchPath:
    """The search path ``hydra.main`` builds: Hydra's configs, the primary config directory,
    the ``SearchPathPlugin``s, then ``-cd/--config-dir`` (``hydra.searchpath`` comes later)."""
    primary = hydra.compute_search_path_dir(str(APP_FILE), None, cli.config_path)
    search_path = hydra.create_config_search_path(primary)
    if cli.config_dir is not None:
        path = os.path.abspath(cli.config_dir)
        if not os.path.isdir(path):
            raise LabError(f"-cd/--config-dir {path} is not a directory; give a config directory.")
        search_path.prepend(
            provider="command-line", path=f"file://{path}", anchor=SearchPathQuery("schema")
        )
    return search_path


def check_overrides(args: list[str], conf: Path) -> list[str]:
    """Raise ``LabError`` for an unknown group option or config key among ``args``, or a
    launcher or sweeper whose plugin is missing; returns ``args`` with an experiment override
    in the form the primary config takes (see the module docstring). Without Hydra's private
    API (``lab.overrides.hydra_private``) nothing is checked: ``args`` are returned as they are
    and Hydra reports what it refuses."""
    hydra = hydra_private.INTERNALS
    cli = None if hydra is None else parse_command_line(args, conf, hydra)
    if hydra is None or cli is None:
        return list(args)
    parsed = _parse(cli.overrides)
    loader = hydra.loader(config_search_path(cli, hydra))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repo = _repository(hydra, loader, cli.config_name, cli.overrides)
    notes = [str(w.message) for w in caught if "is not available" in str(w.message)]
    has_slot = _has_experiment_slot(repo, cli.config_name)
    normal = {o.input_line: _experiment_form(o, has_slot) for o in parsed}
    experiment = next((o for o in parsed if _is_experiment(o)), None)
    _check_plugins(repo, cli.config_name, parsed, experiment)
    parsed = _parse([normal[o.input_line] for o in parsed])
    _check_options(parsed, repo, notes)
    configs = [_compose(loader, cli.config_name, v, repo, notes) for v in _variants(parsed, repo)]
    multirun = cli.multirun or str(configs[0].hydra.mode) == "RunMode.MULTIRUN"
    _check_sweep_mode(hydra, parsed, multirun)
    return [normal.get(a, a) if a in cli.overrides else a for a in args]


# --- reading the command line ---------------------------------------------------------------
def _parse(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise LabError(" ".join(str(e).split())) from None


def _repository(hydra: HydraInternals, loader: Any, config_name: str, overrides: list[str]) -> Any:
    """Hydra's config repository with ``hydra.searchpath`` (command line or primary config)
    applied, by the loader's own (private) step that ``load_configuration`` takes first."""
    try:
        return hydra.caching_repo(loader, config_name, overrides)
    except HydraException as e:
        raise LabError(_one_line(e)) from None


def _is_experiment(ov: Override) -> bool:
    return ov.key_or_group == "experiment" and ov.package is None and not ov.is_delete()


def _has_experiment_slot(repo: Any, config_name: str) -> bool:
    """Whether the primary config's defaults list has an ``experiment`` entry."""
    loaded = repo.load_config(config_name) if repo.config_exists(config_name) else None
    return any(
        isinstance(d, GroupDefault) and d.group.lstrip("/") == "experiment"
        for d in (loaded.defaults_list or [] if loaded is not None else [])
    )


def _experiment_form(ov: Override, has_slot: bool) -> str:
    """``experiment=X`` or ``+experiment=X``, whichever the primary config takes."""
    line = ov.input_line
    if not _is_experiment(ov):
        return line
    if has_slot and ov.is_add():
        return line.lstrip()[1:]
    if not has_slot and not (ov.is_add() or ov.is_force_add()):
        return f"+{line.lstrip()}"
    return line


def _values(ov: Override, repo: Any) -> list[str]:
    """The values an override takes in a sweep, as override text (one for a plain value)."""
    if not ov.is_sweep_override():
        return [ov.input_line.partition("=")[2]]
    value = ov.value()
    if isinstance(value, IntervalSweep):
        return [str(value.start)]
    if isinstance(value, Glob):
        options = repo.get_group_options(ov.key_or_group, ObjectType.CONFIG)
        return value.filter(options) or [str(ov.input_line.partition("=")[2])]
    return list(ov.sweep_string_iterator())


def _variants(parsed: list[Override], repo: Any) -> Iterator[list[str]]:
    """The overrides with every sweep at its first value; then, for each other option of a
    swept group that keys are set under (``search=greedy,beam search.beam_size=4``), once more
    with that option, so that a key which only some options lack is found. (Composing costs
    Hydra a good part of a second; the other options are only looked up, see ``_check_options``.)"""
    first = [
        o.input_line
        if not o.is_sweep_override()
        else f"{o.get_key_element()}={_values(o, repo)[0]}"
        for o in parsed
    ]
    yield first
    keys = [o.key_or_group for o in parsed if not _is_group(o, repo)]
    for i, ov in enumerate(parsed):
        prefix = ov.key_or_group.replace("/", ".") + "."
        if (
            ov.is_sweep_override()
            and _is_group(ov, repo)
            and any(k.startswith(prefix) for k in keys)
        ):
            for value in _values(ov, repo)[1:]:
                yield [*first[:i], f"{ov.get_key_element()}={value}", *first[i + 1 :]]


def _check_options(parsed: list[Override], repo: Any, notes: list[str]) -> None:
    """Every option that a group override names exists (a sweep's included)."""
    for ov in parsed:
        if ov.is_delete() or not _is_group(ov, repo):
            continue
        group = ov.key_or_group
        if ov.is_sweep_override():
            names = [v for v in _values(ov, repo) if v != "null" and not v.startswith("[")]
        else:  # group=null drops the group; group=[a,b] selects several options
            value = ov.value()
            names = [str(v) for v in (value if isinstance(value, list) else [value]) if v]
        for name in names:
            if not repo.config_exists(f"{group}/{name}"):
                raise LabError(_unknown_option(group, name, None, repo, notes))


def _is_group(ov: Override, repo: Any) -> bool:
    return "/" in ov.key_or_group or bool(repo.group_exists(ov.key_or_group))


# --- composing and rewording ----------------------------------------------------------------
def _compose(
    loader: Any, config_name: str, overrides: list[str], repo: Any, notes: list[str]
) -> Any:
    """Hydra's composed config for ``overrides``; a ``LabError`` of one line when it fails."""
    try:
        return _load(loader, config_name, overrides)
    except MissingConfigException as e:
        raise LabError(_missing_message(e, repo, config_name, notes)) from None
    except (HydraException, OmegaConfBaseException, ValueError) as e:  # ValueError: Hydra too
        failure = e
    parsed = _parse(overrides)
    groups = [o.input_line for o in parsed if _is_group(o, repo) or _is_searchpath(o)]
    try:  # the same config without key overrides: which key is it?
        base = _load(loader, config_name, groups)
    except MissingConfigException as e:
        raise LabError(_missing_message(e, repo, config_name, notes)) from None
    except (HydraException, OmegaConfBaseException, ValueError):
        raise LabError(_one_line(failure)) from None
    tree = OmegaConf.to_container(base, resolve=False)
    choices = dict(base.hydra.runtime.choices)
    for ov in parsed:
        if ov.is_add() or ov.is_force_add() or _is_group(ov, repo):
            continue
        message = _unknown_key(ov.key_or_group, tree, choices)
        if message is not None:
            raise LabError(message + ("" if ov.is_delete() else NEW_KEY))
    raise LabError(_one_line(failure))


def _load(loader: Any, config_name: str, overrides: list[str]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hydra warns again in the run itself
        return loader.load_configuration(
            config_name, overrides, RunMode.RUN, validate_sweep_overrides=False
        )


def _is_searchpath(ov: Override) -> bool:
    return ov.get_key_element() == "hydra.searchpath"


def _missing_message(
    e: MissingConfigException, repo: Any, config_name: str, notes: list[str]
) -> str:
    """The message for Hydra's missing config: an option, or the primary config (``-cn``),
    naming the config that asked for it when that is not the user."""
    group, _, name = str(e.missing_cfg_file or "").rpartition("/")
    message = _unknown_option(group, name, e.options, repo, notes)
    asked = re.match(r"In '([^']+)'", str(e))
    if asked and asked[1] not in (config_name, "hydra/config"):
        message = message.replace(f"'{name}'.", f"'{name}' (named in {asked[1]}).", 1)
    return message


def _unknown_option(
    group: str, name: str, options: list[str] | None, repo: Any, notes: list[str]
) -> str:
    """``unknown search 'bem'. Did you mean 'beam'? Valid choices: ...``; a launcher or
    sweeper plugin that is not installed counts as a choice (choosing it says how to get it)."""
    if options is None:
        options = repo.get_group_options(group, ObjectType.CONFIG)
    options = [o for o in options if not (o.startswith("_") and o.endswith("_"))]  # Hydra's own
    options += [o for g, o in PLUGINS if g == group and o not in options]
    message = unknown_name_message(group or "config name", name, sorted(set(options)))
    return message + "".join(f" Note: {n}" for n in notes)


def _unknown_key(key: str, tree: dict, choices: dict[str, Any]) -> str | None:
    """The message for ``key`` when the composed config has no such key, else None (Hydra's
    own message then stands: a list index, a value that is not a mapping, ...)."""
    node: Any = tree
    parts = key.split(".")
    where = "config"
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            return None
        if part not in node:
            msg = unknown_name_message("key", part, sorted(map(str, node)))
            return msg.replace(f"'{part}'.", f"'{part}' in {where}.", 1)
        group = "/".join(parts[: i + 1])
        where = f"{group}={choices[group]}" if choices.get(group) else f"{where}.{part}"
        node = node[part]
    return None


def _one_line(e: BaseException) -> str:
    """Hydra's message (or the OmegaConf error under it) on one line, without the search path
    listing and the 'Set the environment variable HYDRA_FULL_ERROR' advice."""
    text = re.split(r"\n\s*(Config search path|Search path):", str(e))[0].strip()
    cause = str(e.__cause__ or "").strip().splitlines()  # OmegaConf: message, full_key, ...
    if cause and cause[0].strip() not in text:
        text = f"{text.rstrip('.')}: {cause[0]}" if text else cause[0]
    return " ".join((text or type(e).__name__).split())


def _check_sweep_mode(hydra: HydraInternals, parsed: list[Override], multirun: bool) -> None:
    """A sweep without ``-m`` (Hydra explains it in four lines)."""
    try:
        mode = RunMode.MULTIRUN if multirun else RunMode.RUN
        hydra.loader_class.validate_sweep_overrides_legal(parsed, mode, from_shell=True)
    except HydraException as e:
        sweep = next((o.input_line for o in parsed if o.is_sweep_override()), "")
        if not multirun and sweep:
            raise LabError(
                f"{sweep} is a sweep: add -m/--multirun to run one job per value "
                "(a list is key=[a,b]; a string with a comma is quoted: key='a,b')."
            ) from None
        raise LabError(_one_line(e)) from None


# --- launcher and sweeper plugins -----------------------------------------------------------
def _check_plugins(
    repo: Any, config_name: str, parsed: list[Override], experiment: Override | None
) -> None:
    """Raise ``LabError`` naming the install command when a chosen launcher or sweeper comes
    from a Hydra plugin that is not installed (the primary config, the experiment, then the
    command line choose, in that order)."""
    chosen: dict[str, tuple[list[str], str]] = {}  # group -> (options, how it was chosen)
    sources = [(config_name, f"{config_name}.yaml")]
    if experiment is not None:
        sources += [
            (f"experiment/{v}", f"{experiment.get_key_element()}={v}")
            for v in _values(experiment, repo)
        ]
    for path, where in sources:
        loaded = repo.load_config(path) if repo.config_exists(path) else None
        for d in loaded.defaults_list or [] if loaded is not None else []:
            if isinstance(d, GroupDefault) and d.group.lstrip("/") in HYDRA_GROUPS:
                chosen[d.group.lstrip("/")] = ([str(d.get_name())], where)
    for ov in parsed:
        if ov.key_or_group in HYDRA_GROUPS and not ov.is_delete():
            chosen[ov.key_or_group] = (_values(ov, repo), "")
    for group, (options, where) in chosen.items():
        for option in options:
            base = _plugin_option(repo, group, option)
            plugin = PLUGINS.get((group, base))
            if plugin is None or plugin.installed():
                continue
            what = f"{group}={option}" + (f" (a {base} preset)" if base != option else "")
            needs = f"needs the Hydra plugin {plugin.distribution} (not installed): "
            needs += plugin.install
            raise LabError(f"{where} sets {what}, which {needs}" if where else f"{what} {needs}")


def _plugin_option(repo: Any, group: str, option: str) -> str:
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
