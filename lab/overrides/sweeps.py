"""The options and values an override names, a sweep's included: every option a group override
names must exist, and a sweep is composed once per option of a swept group that keys are set
under, so that a key which only some options lack is found."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, IntervalSweep, Override
from hydra.errors import HydraException

from lab.errors import LabError


def parse(overrides: list[str]) -> list[Override]:
    """Hydra's parse of override strings; a ``LabError`` of one line for a malformed one."""
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise LabError(" ".join(str(e).split())) from None


def is_group(ov: Override, repo: Any) -> bool:
    """Whether ``ov`` chooses a config group option (rather than sets a key)."""
    return "/" in ov.key_or_group or bool(repo.group_exists(ov.key_or_group))


def sweep_values(ov: Override, repo: Any) -> list[str]:
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


def variants(parsed: list[Override], repo: Any) -> Iterator[list[str]]:
    """The overrides with every sweep at its first value; then, for each other option of a
    swept group that keys are set under (``search=greedy,beam search.beam_size=4``), once more
    with that option, so that a key which only some options lack is found. (Composing costs
    Hydra a good part of a second; the other options are only looked up, see
    ``named_options``.)"""
    first = [
        o.input_line
        if not o.is_sweep_override()
        else f"{o.get_key_element()}={sweep_values(o, repo)[0]}"
        for o in parsed
    ]
    yield first
    keys = [o.key_or_group for o in parsed if not is_group(o, repo)]
    for i, ov in enumerate(parsed):
        prefix = ov.key_or_group.replace("/", ".") + "."
        if (
            ov.is_sweep_override()
            and is_group(ov, repo)
            and any(k.startswith(prefix) for k in keys)
        ):
            for value in sweep_values(ov, repo)[1:]:
                yield [*first[:i], f"{ov.get_key_element()}={value}", *first[i + 1 :]]


def named_options(parsed: list[Override], repo: Any) -> Iterator[tuple[str, str]]:
    """(group, option) for every option that a group override names (a sweep's included);
    ``group=null`` drops the group and names none, ``group=[a,b]`` names several."""
    for ov in parsed:
        if ov.is_delete() or not is_group(ov, repo):
            continue
        if ov.is_sweep_override():
            names = [v for v in sweep_values(ov, repo) if v != "null" and not v.startswith("[")]
        else:
            value = ov.value()
            names = [str(v) for v in (value if isinstance(value, list) else [value]) if v]
        for name in names:
            yield ov.key_or_group, name
