"""Hydra's errors reworded in one line: an unknown option or key with the valid choices and a
"did you mean", and any other message without Hydra's search path listing and advice."""

from __future__ import annotations

import re
from typing import Any

from hydra.core.object_type import ObjectType
from hydra.errors import MissingConfigException

from lab.overrides.plugins import PLUGINS
from lab.registry import unknown_name_message

NEW_KEY = " (+key=value adds a new key)"


def missing_message(
    e: MissingConfigException, repo: Any, config_name: str, notes: list[str]
) -> str:
    """The message for Hydra's missing config: an option, or the primary config (``-cn``),
    naming the config that asked for it when that is not the user."""
    group, _, name = str(e.missing_cfg_file or "").rpartition("/")
    message = unknown_option(group, name, e.options, repo, notes)
    asked = re.match(r"In '([^']+)'", str(e))
    if asked and asked[1] not in (config_name, "hydra/config"):
        message = message.replace(f"'{name}'.", f"'{name}' (named in {asked[1]}).", 1)
    return message


def unknown_option(
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


def unknown_key(key: str, tree: dict, choices: dict[str, Any]) -> str | None:
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


def one_line(e: BaseException) -> str:
    """Hydra's message (or the OmegaConf error under it) on one line, without the search path
    listing and the 'Set the environment variable HYDRA_FULL_ERROR' advice."""
    text = re.split(r"\n\s*(Config search path|Search path):", str(e))[0].strip()
    cause = str(e.__cause__ or "").strip().splitlines()  # OmegaConf: message, full_key, ...
    if cause and cause[0].strip() not in text:
        text = f"{text.rstrip('.')}: {cause[0]}" if text else cause[0]
    return " ".join((text or type(e).__name__).split())
