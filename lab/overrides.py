"""Check ``lab run`` overrides against the config tree before Hydra starts.

Hydra reports an unknown option or key over several lines; this turns the common mistakes (a
misspelled plugin name, a misspelled key) into one line with the valid choices and a "did you
mean", in the parent process, before a sweep launches any job.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from lab.errors import LabError
from lab.registry import unknown_name_message

GROUPS = ("task", "model", "search", "train", "logger")


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
                    group = k.replace("override ", "").strip().lstrip("/")
                    if group in GROUPS:
                        chosen[group] = str(v)
    return chosen


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
