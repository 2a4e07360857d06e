"""What Hydra makes of ``lab run ARGS``: its argument parser's reading, and the config search
path that ``hydra.main`` would build from it."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery

from lab.errors import LabError
from lab.overrides.hydra_private import HydraInternals

APP_FILE = Path(__file__).parents[1] / "app.py"  # Hydra resolves a relative -cp against it


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
