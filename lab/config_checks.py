"""Checks of a composed run config that Hydra does not make: finite numbers, whole numbers
where a count is meant, and ranges. Each failure is one ``LabError`` line naming the key and
a valid value, raised before anything is trained or written: a NaN must never become a score.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from lab.errors import LabError
from lab.model_cache import DECODE_ONLY
from lab.models.copy import check_copy_option
from lab.models.quantize import check_quantize
from lab.precision import check_precision
from lab.registry import MODELS, check_type
from lab.train import TrainSettings

# root keys that are counts: (key, minimum); None is allowed where the default is None
COUNTS = (("seed", 0), ("threads", 0), ("eval.batch_size", 1), ("eval.limit", 1))


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse a resolved config (plain dict) that would run but record a wrong number."""
    for key, value in leaves(config):
        if isinstance(value, float) and not math.isfinite(value):
            raise LabError(f"{key}={value} is not a finite number; give a finite value.")
    for key, minimum in COUNTS:
        check_count(key, lookup(config, key), minimum, allow_none=key == "eval.limit")
    check_train_keys(dict(config.get("train") or {}))
    model = dict(config.get("model") or {})
    check_facts_option(model, dict(config.get("task") or {}))
    check_copy_option(str(model.get("name", "")), model)
    check_model_keys(model)
    model.pop("name", None)
    device = str(config.get("device", "auto"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LabError(f"device={device} but torch sees no CUDA device; use device=cpu or auto.")
    check_quantize(model.get("quantize"), device)
    check_precision(config.get("precision", "fp32"), device, config.get("model"))


def check_train_keys(train: Mapping[str, Any]) -> None:
    """Every ``train.*`` key is a ``TrainSettings`` field (``+train.foo=1`` would otherwise
    fail only once training starts) and has its default's kind."""
    fields = {f.name: f for f in dataclasses.fields(TrainSettings)}
    for key, value in train.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean 'train.{close[0]}'?" if close else ""
            raise LabError(f"train: unknown key '{key}'.{hint} Valid keys: {', '.join(fields)}.")
        if value is not None:
            check_type(f"train.{key}", value, fields[key].default)


def check_model_keys(model: Mapping[str, Any]) -> None:
    """Every ``model.*`` key is an argument of the architecture (``+model._target_=x`` would
    otherwise fail only when the model is built, after the tokenizer is trained)."""
    name = str(model.get("name", ""))
    if name not in MODELS:
        return  # Hydra's config group names the valid models
    args = {k: v for k, v in model.items() if k not in DECODE_ONLY}
    MODELS.check_arguments(name, 0, 0, **args)


def check_facts_option(model: Mapping[str, Any], task: Mapping[str, Any]) -> None:
    """``model.facts=true`` reads ``<sep>``-separated statements: only the Transformer has such
    an encoder, and only a task that writes the separators (bAbI with ``task.facts=true``) gives
    it more than one fact; anything else would train a model on one blurred fact."""
    if not model.get("facts"):
        return
    if model.get("name") != "transformer":
        raise LabError(
            f"model.facts=true: model={model.get('name')} has no fact encoder;"
            " use model=transformer."
        )
    if not task.get("facts"):
        raise LabError(
            f"model.facts=true reads statements separated by <sep>, which task={task.get('name')}"
            " does not write; use task=babi task.facts=true, or drop model.facts."
        )


def check_count(key: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise LabError(f"{key} must be a whole number, got {value!r}; set {key}={minimum} or more.")
    if value < minimum:
        raise LabError(f"{key} must be >= {minimum}, got {value}; set {key}={minimum} or more.")


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from leaves(v, f"{prefix}{k}.")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], node


def lookup(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node
