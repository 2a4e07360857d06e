"""Every ``lab`` command quoted in README.md, reports/README.md and the experiment headers
still runs as far as its arguments go: a ``lab run`` is composed by Hydra through the same
check that ``lab run`` makes before it starts (``lab.overrides.check_overrides``: unknown keys,
groups, options and missing launcher plugins fail), and the plugins it names are registered;
any other subcommand's arguments are parsed by its own parser, which is stopped right after
parsing. Nothing trains, decodes or reads data."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

import lab  # noqa: F401  (registers the plugins)
import lab.tasks  # noqa: F401
from lab import cli
from lab.app import CONF_DIR
from lab.errors import LabError
from lab.overrides import check_overrides
from lab.registry import MODELS, SEARCHES, TASKS
from tests.commands import ROOT, all_commands

# Quoted on purpose with parts the reader supplies; the reason says which.
NOT_RUNNABLE_HERE = {
    "run -m +experiment=NAME": "NAME stands for any experiment",
    "run -cd my_conf search=my_beam": "the reader's own config directory",
    "run hydra.searchpath=[file:///abs/my_conf] search=my_beam": "the reader's own configs",
    "run search=capped_greedy search.max_tokens=3": "needs tests/plugin_example installed",
    "run search=PLACEHOLDER": "shell completion of search=<TAB>",
}


def _quoted() -> list[Any]:
    seen: dict[tuple[str, ...], Any] = {}
    for command in all_commands():
        words = command.argv
        if len(words) < 2 or "..." in words or " ".join(words) in NOT_RUNNABLE_HERE:
            continue  # a bare command name in prose, or an elided command
        seen.setdefault(words, pytest.param(command, id=f"{command.source}: lab {' '.join(words)}"))
    return list(seen.values())


COMMANDS = _quoted()


def _first_values(overrides: list[str]) -> list[str]:
    """Each sweep at its first value, without ``hydra`` overrides (the launcher is checked by
    ``check_overrides``; ``compose`` only builds the job's config)."""
    out = []
    for ov in OverridesParser.create().parse_overrides(overrides):
        if ov.key_or_group.startswith("hydra"):
            continue
        if ov.is_sweep_override():
            out.append(f"{ov.get_key_element()}={next(iter(ov.sweep_string_iterator()))}")
        else:
            out.append(ov.input_line)
    return out


def _check_run(argv: list[str]) -> None:
    args = check_overrides(argv, CONF_DIR)
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=_first_values(overrides))
    for registry, section in ((MODELS, "model"), (SEARCHES, "search"), (TASKS, "task")):
        name = cfg[section]["name"]
        assert name in registry.names(), f"{section}.name={name} is not a registered {section}"


class _Parsed(Exception):
    """Raised in place of running a subcommand once its arguments parsed."""


def _check_parse(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        raise _Parsed(original(self, *a, **k))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    command = getattr(cli, f"cmd_{argv[0]}", None)
    assert command is not None, f"lab has no command {argv[0]!r}"
    with pytest.raises(_Parsed) as parsed:
        command(argv[1:])
    return parsed.value.args[0]


def _check_written(argv: list[str], args: argparse.Namespace) -> None:
    """A report into a committed section of reports/ names files committed there."""
    out, name = getattr(args, "out", None), getattr(args, "name", None)
    if argv[0] not in ("report", "toolkits") or not out or not name or getattr(args, "html", False):
        return
    if not str(out).startswith("reports/") or not (ROOT / out).is_dir():
        return
    first = f"{name}_pivot.md" if argv[0] == "report" else f"{name}.md"
    assert (ROOT / out / first).is_file(), f"--name {name}: no {out}/{first} is committed"


def test_commands_are_found() -> None:
    sources = {c.values[0].source for c in COMMANDS}
    assert {"README.md", "reports/README.md", "experiments/multi30k.yaml"} <= sources
    assert len(COMMANDS) > 60


@pytest.mark.parametrize("command", COMMANDS)
def test_quoted_command_parses(command: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = list(command.argv)
    try:
        if argv[0] == "run":
            _check_run(argv[1:])
        else:
            _check_written(argv, _check_parse(argv, monkeypatch))
    except (LabError, SystemExit) as e:
        pytest.fail(f"{command.source}: `lab {' '.join(argv)}` fails: {e}")
