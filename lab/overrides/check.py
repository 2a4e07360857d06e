"""``check_overrides``: a ``lab run`` command line checked with Hydra's own config loader
before Hydra runs it (see the package docstring for what is checked and why)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hydra.core.default_element import GroupDefault
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.types import RunMode

from lab.errors import LabError
from lab.overrides import hydra_private
from lab.overrides.command_line import config_search_path, parse_command_line
from lab.overrides.compose import compose
from lab.overrides.hydra_private import HydraInternals
from lab.overrides.messages import one_line, unknown_option
from lab.overrides.plugins import check_plugins
from lab.overrides.sweeps import named_options, parse, variants


def check_overrides(args: list[str], conf: Path) -> list[str]:
    """Raise ``LabError`` for an unknown group option or config key among ``args``, or a
    launcher or sweeper whose plugin is missing; returns ``args`` with an experiment override
    in the form the primary config takes (see the package docstring). Without Hydra's private
    API (``lab.overrides.hydra_private``) nothing is checked: ``args`` are returned as they are
    and Hydra reports what it refuses."""
    hydra = hydra_private.INTERNALS
    cli = None if hydra is None else parse_command_line(args, conf, hydra)
    if hydra is None or cli is None:
        return list(args)
    parsed = parse(cli.overrides)
    loader = hydra.loader(config_search_path(cli, hydra))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repo = _repository(hydra, loader, cli.config_name, cli.overrides)
    notes = [str(w.message) for w in caught if "is not available" in str(w.message)]
    has_slot = _has_experiment_slot(repo, cli.config_name)
    normal = {o.input_line: _experiment_form(o, has_slot) for o in parsed}
    experiment = next((o for o in parsed if _is_experiment(o)), None)
    check_plugins(repo, cli.config_name, parsed, experiment)
    parsed = parse([normal[o.input_line] for o in parsed])
    for group, name in named_options(parsed, repo):
        if not repo.config_exists(f"{group}/{name}"):
            raise LabError(unknown_option(group, name, None, repo, notes))
    configs = [compose(loader, cli.config_name, v, repo, notes) for v in variants(parsed, repo)]
    multirun = cli.multirun or str(configs[0].hydra.mode) == "RunMode.MULTIRUN"
    _check_sweep_mode(hydra, parsed, multirun)
    return [normal.get(a, a) if a in cli.overrides else a for a in args]


def _repository(hydra: HydraInternals, loader: Any, config_name: str, overrides: list[str]) -> Any:
    """Hydra's config repository with ``hydra.searchpath`` (command line or primary config)
    applied, by the loader's own (private) step that ``load_configuration`` takes first."""
    try:
        return hydra.caching_repo(loader, config_name, overrides)
    except HydraException as e:
        raise LabError(one_line(e)) from None


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
        raise LabError(one_line(e)) from None
