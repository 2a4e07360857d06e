"""The ``lab`` commands quoted in the docs and experiment headers, as argument lists.

Sources: the code blocks and inline code of README.md and reports/README.md, and the header
comments of experiments/*.yaml. A quoted command is read as the shell would: continuation
lines joined, comments dropped, ``VAR="lab run ..."`` definitions expanded where ``$VAR`` is
used, leading ``VAR=value`` environment assignments and ``&&`` chains split off. ``<a
placeholder>`` becomes one word, ``PLACEHOLDER``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "reports/README.md")
_FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
_INLINE = re.compile(r"`(lab [^`]+)`")
_ASSIGN = re.compile(r"^(\w+)=\"(.*)\"$")
_PLACEHOLDER = re.compile(r"<[^<>]*>")


@dataclass(frozen=True)
class Command:
    """One quoted ``lab`` command: where it is quoted and its words after ``lab``."""

    source: str
    text: str
    argv: tuple[str, ...]


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined."""
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def _commands_in(lines: list[str], source: str) -> list[Command]:
    found, variables = [], {}
    for line in lines:
        line = _PLACEHOLDER.sub("PLACEHOLDER", line.strip())
        match = _ASSIGN.match(line)
        if match:
            variables[match.group(1)] = match.group(2)
            continue
        for name, value in variables.items():
            line = line.replace(f"${name}", value)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        found += _split_chain(words, source, line)
    return found


def _split_chain(words: list[str], source: str, line: str) -> list[Command]:
    """The ``lab`` commands of one shell line (``a && lab run ...``, ``VAR=x lab ...``)."""
    commands, part = [], []
    for word in [*words, "&&"]:
        if word not in ("&&", ";", "|"):
            part.append(word)
            continue
        while part and re.match(r"^\w+=", part[0]):
            part = part[1:]
        if part and part[0] == "lab":
            commands.append(Command(source, line, tuple(part[1:])))
        part = []
    return commands


def doc_commands(path: Path) -> list[Command]:
    """The commands in the code blocks and inline code of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    source = str(path.relative_to(ROOT))
    commands = []
    for block in _FENCE.findall(text):
        commands += _commands_in(_logical_lines(block), source)
    prose = _FENCE.sub("", text)
    for inline in _INLINE.findall(prose):
        commands += _commands_in([inline], source)
    return commands


def header_commands(path: Path) -> list[Command]:
    """The commands in an experiment file's header comment."""
    header = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#"))
    return _commands_in(_logical_lines("\n".join(header)), str(path.relative_to(ROOT)))


def all_commands() -> list[Command]:
    """Every quoted command, docs first, then the experiment headers."""
    commands = [c for doc in DOCS for c in doc_commands(ROOT / doc)]
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        commands += header_commands(path)
    return commands
