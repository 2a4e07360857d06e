"""Assemble a W&B run (config, history, summary, tables, ...) from its ``run-<id>.wandb`` file.

Builds on :mod:`lab.wandb_reader.records`, which has wandb read the file: finds a run's file
from a run directory, replays every record in write order (config and summary updates,
history rows, metric definitions, artifacts, the exit record) and loads the logged tables
from the run's ``files/`` folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.wandb_reader.records import RunFileError, iter_records

_RUN_DIR_TIME = re.compile(r"\d{8}_\d{6}")
_FRACTION = re.compile(r"(\.\d{6})\d+")

# Config and summary keys that wandb adds for its own bookkeeping.
_INTERNAL_KEYS = ("_wandb",)


def find_run_file(path_or_run_dir: str | Path) -> Path:
    """Locate the ``run-<id>.wandb`` file for a file, an ``offline-run-*`` dir or a run dir.

    Accepts the file itself, a W&B run folder (``offline-run-*`` / ``run-*``), a ``wandb``
    folder, or a directory that contains one (the ``dir=`` given to ``wandb.init``). When
    several runs are present the most recent one (by folder name, which starts with its start
    time) is used.
    """
    path = Path(path_or_run_dir)
    if path.is_file():
        return path
    if not path.is_dir():
        raise RunFileError(f"{path} does not exist; pass a run directory or a run-<id>.wandb file")
    own = sorted(path.glob("run-*.wandb"))
    if own:
        return own[-1]
    for wandb_dir in (path, path / "wandb"):
        runs = [
            p
            for p in wandb_dir.glob("*run-*")
            if p.is_dir() and not p.is_symlink() and any(p.glob("run-*.wandb"))
        ]
        if runs:
            latest = max(runs, key=_run_dir_sort_key)
            return sorted(latest.glob("run-*.wandb"))[-1]
    raise RunFileError(
        f"no W&B run under {path}; expected wandb/offline-run-*/run-<id>.wandb "
        "(was the run logged with logger=wandb and mode offline or online?)"
    )


def _run_dir_sort_key(run_dir: Path) -> tuple[str, float]:
    """Order run folders by the start time in their name, then by run file age."""
    match = _RUN_DIR_TIME.search(run_dir.name)
    newest = max(p.stat().st_mtime for p in run_dir.glob("run-*.wandb"))
    return (match.group(0) if match else "", newest)


def read_run(path_or_run_dir: str | Path, *, wait: float = 30.0) -> dict[str, Any]:
    """Read a logged run back as plain data, once it has finished writing (or has gone
    ``wait`` seconds without a write; 0 reads what is there now).

    Returns a dict with:

    * ``run``: ``id``, ``project``, ``entity``, ``group``, ``job_type``, ``name``, ``tags``,
      ``notes``, ``start_time`` (Unix seconds or None);
    * ``config``: the run config (W&B's internal ``_wandb`` key removed);
    * ``history``: one dict per ``log`` call, nested keys rebuilt as nested dicts (a key is
      split at its dots, as W&B shows it); includes W&B's ``_step``, ``_runtime``, ``_timestamp``;
    * ``summary``: the final run summary after all updates (``_wandb`` removed);
    * ``metrics``: the ``define_metric`` definitions, each a dict with ``name`` (or
      ``glob_name``) and, when set, ``step_metric`` and ``summary`` (e.g. ``{"min": True}``);
    * ``artifacts``: the artifacts the run logged or used, in order, each with ``name``,
      ``type``, ``digest``, ``aliases``, ``used`` (True for an input of the run, False for an
      output), ``files`` (``{name: reference or None}``) and ``metadata``;
    * ``environment``: what W&B recorded about the machine and the code (git, cpu count...);
    * ``stats``: the system metric samples (each a dict of metric values);
    * ``exit_code``: the code given when the run finished, or None if it never finished;
    * ``tables``: logged tables by key, each ``{"columns": [...], "data": [[...], ...]}``,
      the last one logged under that key, read from the run's ``files/`` folder when present;
    * ``file``: the path of the run file; ``producer``: the wandb version that wrote it.
    """
    run_file = find_run_file(path_or_run_dir)
    state = _RunState()
    for record in iter_records(run_file, wait=wait):
        state.add(record)
    for internal in _INTERNAL_KEYS:
        state.config.pop(internal, None)
        state.summary.pop(internal, None)
    return {
        "run": state.run,
        "config": state.config,
        "history": state.history,
        "summary": state.summary,
        "metrics": state.metrics,
        "artifacts": state.artifacts,
        "environment": state.environment,
        "stats": state.stats,
        "exit_code": state.exit_code,
        "tables": _read_tables(run_file.parent / "files", state.history, state.summary),
        "file": str(run_file),
        "producer": state.producer,
    }


def _empty_run() -> dict[str, Any]:
    """The run metadata before any ``run`` record is read (what a run without one reports)."""
    return {
        "id": None,
        "project": None,
        "entity": None,
        "group": None,
        "job_type": None,
        "name": None,
        "tags": [],
        "notes": None,
        "start_time": None,
    }


@dataclass
class _RunState:
    """A run as rebuilt so far: every record read is folded into it, in write order."""

    run: dict[str, Any] = field(default_factory=_empty_run)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    producer: str | None = None

    def add(self, record: dict[str, Any]) -> None:
        """Fold one record into the run; record kinds not read here are skipped."""
        kind = record.get("type")
        body = record.get(kind, {}) if isinstance(kind, str) else {}
        if kind == "header":
            self.producer = body.get("version_info", {}).get("producer") or None
        elif kind == "run":
            self._add_run(body)
        elif kind == "config":
            _apply(self.config, body, split=False)
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply(row, {"update": body.get("item", {})}, split=True)
            self.history.append(row)
        elif kind == "summary":
            _apply(self.summary, body, split=True)
        elif kind == "metric":
            self.metrics.append(body)
        elif kind == "artifact":
            self.artifacts.append(_artifact(body))
        elif kind == "environment":
            self.environment.update({k: v for k, v in body.items() if k != "writer_id"})
        elif kind == "stats":
            self.stats.append(body.get("item", {}))
        elif kind == "exit":
            self.exit_code = int(body.get("exit_code", 0))

    def _add_run(self, r: dict[str, Any]) -> None:
        """Take the run's metadata, and the config and summary it carries, from a run record."""
        self.run.update(
            id=r.get("run_id") or None,
            project=r.get("project") or None,
            entity=r.get("entity") or None,
            group=r.get("run_group") or None,
            job_type=r.get("job_type") or None,
            name=r.get("display_name") or None,
            tags=list(r.get("tags", [])),
            notes=r.get("notes") or None,
            start_time=_seconds(r.get("start_time")),
        )
        _apply(self.config, r.get("config", {}), split=False)
        _apply(self.summary, r.get("summary", {}), split=True)


def _seconds(stamp: str | None) -> float | None:
    """Unix seconds of an RFC 3339 time stamp (nanoseconds cut to microseconds)."""
    if not stamp:
        return None
    return datetime.fromisoformat(_FRACTION.sub(r"\1", stamp)).timestamp()


def _artifact(a: dict[str, Any]) -> dict[str, Any]:
    """The parts of an artifact record that tell what it is and how the run relates to it."""
    contents = a.get("manifest", {}).get("contents", [])
    metadata = a.get("metadata")
    return {
        "name": a.get("name"),
        "type": a.get("type"),
        "digest": a.get("digest"),
        "aliases": list(a.get("aliases", [])),
        "used": bool(a.get("use_after_commit", False)),
        "files": {c.get("path"): c.get("ref") for c in contents},
        "metadata": json.loads(metadata) if metadata else {},
    }


def _apply(target: dict[str, Any], change: dict[str, Any], *, split: bool) -> None:
    """Apply an ``{"update": {key: value}, "remove": [{"key"|"nested_key": ...}]}`` change.

    With ``split``, a dotted key is a path of nested keys (wandb joins nested keys with dots).
    """
    for key, value in change.get("update", {}).items():
        node, leaf = _parent(target, key.split(".") if split else [key], create=True)
        node[leaf] = value
    for item in change.get("remove", []):
        keys = list(item.get("nested_key", [])) or [item.get("key", "")]
        node, leaf = _parent(target, keys, create=False)
        if node is not None:
            node.pop(leaf, None)


def _parent(target: dict[str, Any], keys: list[str], *, create: bool) -> tuple[Any, str]:
    """The dict that holds the last of ``keys`` (a path into ``target``), and that key.

    With ``create``, missing or non-dict levels on the way become empty dicts (an update
    overwrites them); without, a missing level gives ``(None, key)`` (nothing to remove).
    """
    node = target
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            if not create:
                return None, keys[-1]
            child = node[key] = {}
        node = child
    return node, keys[-1]


def _read_tables(
    files_dir: Path, history: list[dict[str, Any]], summary: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Load the last table logged under each key from its ``*.table.json`` file."""
    refs: dict[str, str] = {}
    for source in (*history, summary):
        for key, value in source.items():
            if isinstance(value, dict) and value.get("_type") == "table-file" and "path" in value:
                refs[key] = value["path"]
    tables: dict[str, dict[str, Any]] = {}
    for key, rel in refs.items():
        table_file = files_dir / rel
        if not table_file.is_file():
            continue
        payload = json.loads(table_file.read_text(encoding="utf-8"))
        tables[key] = {"columns": payload.get("columns", []), "data": payload.get("data", [])}
    return tables
