"""Assemble a W&B run (config, history, summary, tables) from its ``run-<id>.wandb`` file.

Builds on the record iterator of :mod:`lab.wandb_reader.records`: finds a run's file from a
run directory, replays every record in write order (config and summary updates, history
rows, the exit record) and loads the logged tables from the run's ``files/`` folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.wandb_reader.records import RunFileError, iter_records

_RUN_DIR_TIME = re.compile(r"\d{8}_\d{6}")

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


def read_run(path_or_run_dir: str | Path) -> dict[str, Any]:
    """Read a logged run back as plain data.

    Returns a dict with:

    * ``run``: ``id``, ``project``, ``entity``, ``group``, ``job_type``, ``name``, ``tags``,
      ``notes``, ``start_time`` (Unix seconds or None);
    * ``config``: the run config, values JSON-decoded (W&B's internal ``_wandb`` key removed);
    * ``history``: one dict per ``log`` call, nested keys rebuilt as nested dicts; includes
      W&B's ``_step``, ``_runtime`` and ``_timestamp``;
    * ``summary``: the final run summary after all updates (``_wandb`` removed);
    * ``exit_code``: the code given when the run finished, or None if it never finished;
    * ``tables``: logged tables by key, each ``{"columns": [...], "data": [[...], ...]}``,
      the last one logged under that key, read from the run's ``files/`` folder when present;
    * ``file``: the path of the run file; ``producer``: the wandb version that wrote it.
    """
    run_file = find_run_file(path_or_run_dir)
    state = _RunState()
    for record in iter_records(run_file):
        state.add(record)
    for internal in _INTERNAL_KEYS:
        state.config.pop(internal, None)
        state.summary.pop(internal, None)
    return {
        "run": state.run,
        "config": state.config,
        "history": state.history,
        "summary": state.summary,
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
    exit_code: int | None = None
    producer: str | None = None

    def add(self, record: Any) -> None:
        """Fold one ``Record`` protobuf into the run; record kinds not read here are skipped."""
        kind = record.WhichOneof("record_type")
        if kind == "header":
            self.producer = record.header.version_info.producer or None
        elif kind == "run":
            self._add_run(record.run)
        elif kind == "config":
            _apply(self.config, record.config.update, record.config.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply(row, record.history.item, ())
            self.history.append(row)
        elif kind == "summary":
            _apply(self.summary, record.summary.update, record.summary.remove)
        elif kind == "exit":
            self.exit_code = record.exit.exit_code

    def _add_run(self, r: Any) -> None:
        """Take the run's metadata, and the config and summary it carries, from a ``RunRecord``."""
        started = r.start_time.ToMicroseconds() / 1e6 if r.HasField("start_time") else None
        self.run.update(
            id=r.run_id or None,
            project=r.project or None,
            entity=r.entity or None,
            group=r.run_group or None,
            job_type=r.job_type or None,
            name=r.display_name or None,
            tags=list(r.tags),
            notes=r.notes or None,
            start_time=started,
        )
        _apply(self.config, r.config.update, r.config.remove)
        _apply(self.summary, r.summary.update, r.summary.remove)


def _apply(target: dict[str, Any], updates: Iterable[Any], removes: Iterable[Any]) -> None:
    """Apply protobuf ``*Item`` updates/removes (``key`` or ``nested_key``) to ``target``."""
    for item in updates:
        node, leaf = _parent(target, item, create=True)
        node[leaf] = json.loads(item.value_json) if item.value_json else None
    for item in removes:
        node, leaf = _parent(target, item, create=False)
        if node is not None:
            node.pop(leaf, None)


def _parent(target: dict[str, Any], item: Any, *, create: bool) -> tuple[Any, str]:
    """The dict that holds ``item``'s key (``key`` or ``nested_key``) in ``target``, and the key.

    With ``create``, missing or non-dict levels on the way become empty dicts (an update
    overwrites them); without, a missing level gives ``(None, key)`` (nothing to remove).
    """
    keys = list(item.nested_key) or [item.key]
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
