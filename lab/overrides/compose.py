"""Composing a command line's config with Hydra's loader, as ``lab run`` will; when that
fails, the failure in one line, naming the unknown option or key when there is one."""

from __future__ import annotations

import warnings
from typing import Any

from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lab.errors import LabError
from lab.overrides.messages import NEW_KEY, missing_message, one_line, unknown_key
from lab.overrides.sweeps import is_group, parse

# what Hydra raises for a config it cannot compose (ValueError: Hydra too)
COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, ValueError)


def compose(
    loader: Any, config_name: str, overrides: list[str], repo: Any, notes: list[str]
) -> Any:
    """Hydra's composed config for ``overrides``; a ``LabError`` of one line when it fails."""
    try:
        return _load(loader, config_name, overrides)
    except MissingConfigException as e:
        raise LabError(missing_message(e, repo, config_name, notes)) from None
    except COMPOSE_ERRORS as e:
        failure = e
    parsed = parse(overrides)
    groups = [o.input_line for o in parsed if is_group(o, repo) or _is_searchpath(o)]
    try:  # the same config without key overrides: which key is it?
        base = _load(loader, config_name, groups)
    except MissingConfigException as e:
        raise LabError(missing_message(e, repo, config_name, notes)) from None
    except COMPOSE_ERRORS:
        raise LabError(one_line(failure)) from None
    raise LabError(_unknown_key_message(parsed, base, repo) or one_line(failure))


def _unknown_key_message(parsed: list[Override], base: Any, repo: Any) -> str | None:
    """The message for the first key override that ``base`` (the config composed without key
    overrides) has no key for, or None."""
    tree = OmegaConf.to_container(base, resolve=False)
    choices = dict(base.hydra.runtime.choices)
    for ov in parsed:
        if ov.is_add() or ov.is_force_add() or is_group(ov, repo):
            continue
        message = unknown_key(ov.key_or_group, tree, choices)
        if message is not None:
            return message + ("" if ov.is_delete() else NEW_KEY)
    return None


def _load(loader: Any, config_name: str, overrides: list[str]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hydra warns again in the run itself
        return loader.load_configuration(
            config_name, overrides, RunMode.RUN, validate_sweep_overrides=False
        )


def _is_searchpath(ov: Override) -> bool:
    return ov.get_key_element() == "hydra.searchpath"
