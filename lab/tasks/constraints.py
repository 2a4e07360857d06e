"""Per-example output constraints read from a side file: one JSON object per source line.

Each line is ``{}`` (no constraint) or an object with any of ``prefix`` (a string every output
starts with), ``include`` (a list of phrases every output must contain) and ``allowed`` (a list
of the only outputs allowed), e.g. ``{"prefix": "A man", "include": ["dog"]}``. The texts stay
texts here; the evaluator tokenizes them with the task's tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.tasks.base import read_lines

KEYS = ("prefix", "include", "allowed")


@dataclass(frozen=True)
class TextConstraints:
    """One example's constraints as text (see the module docstring). A task may also allow the
    word spans of a text (``lab.tasks.allowed``): every run of 1..``max_span`` words of
    ``span_text`` (no file line sets these)."""

    prefix: str = ""
    include: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    span_text: str | None = None
    max_span: int = 0


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LabError(f"{where}: '{key}' must be a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


def parse_constraints(line: str, where: str) -> TextConstraints:
    """One line of a constraints file; ``where`` (``file:line``) names it in errors."""
    try:
        obj = json.loads(line) if line.strip() else {}
    except json.JSONDecodeError as e:
        raise LabError(
            f'{where}: not a JSON object ({e.msg}); write e.g. {{"include": ["dog"]}}'
        ) from None
    if not isinstance(obj, dict):
        raise LabError(f"{where}: expected a JSON object with keys {', '.join(KEYS)}, got {line!r}")
    unknown = sorted(set(obj) - set(KEYS))
    if unknown:
        raise LabError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(KEYS)}")
    prefix = obj.get("prefix", "")
    if not isinstance(prefix, str):
        raise LabError(f"{where}: 'prefix' must be a string, got {prefix!r}")
    include = _strings(obj["include"], "include", where) if "include" in obj else ()
    allowed = _strings(obj["allowed"], "allowed", where) if "allowed" in obj else None
    return TextConstraints(prefix.strip(), include, allowed)


def read_constraints(path: Path, n_lines: int) -> list[TextConstraints]:
    """The constraints of ``n_lines`` examples from ``path``, one JSON line per source line."""
    lines = read_lines(path)
    if len(lines) != n_lines:
        raise LabError(
            f"constraints file {path} has {len(lines)} lines but the source has {n_lines};"
            " write one JSON line per source line ({} for none)"
        )
    return [parse_constraints(line, f"{path}:{i + 1}") for i, line in enumerate(lines)]


def constraints_file(value: str, data_dir: Path) -> Path:
    """The constraints file ``value``: absolute, or under ``data_dir``, or the working dir."""
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [data_dir / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise LabError(
        f"constraints file not found: {' or '.join(map(str, candidates))}; write one with"
        " python -m lab.tasks.constraint_files (terms|prefix) or set task.constraints_path=null"
    )


def split_constraints(
    path: Any, split: str, constrained_split: str, n_lines: int, data_dir: Path
) -> list[Any]:
    """Each line's constraints for ``split``: read from ``path`` when ``split`` is the
    ``constrained_split`` and a path is set, else None for every line."""
    if not path or split != constrained_split:
        return [None] * n_lines
    return list(read_constraints(constraints_file(str(path), data_dir), n_lines))
