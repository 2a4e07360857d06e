"""Read W&B offline run files (``run-<id>.wandb``) back into plain Python data.

Offline runs store everything that was logged in one append-only binary file. Recent wandb
releases no longer ship a Python reader for it, and reading it back locally is what lets us
check a run, compare runs or build reports without an account or a network connection.

File layout (verified against files written by wandb 0.31):

* a 7-byte header: the magic ``b":W&B"``, the identifier ``0xBEE1`` (2 bytes, little endian)
  and a format version byte (``0``);
* then a LevelDB-style log, counted from the start of the file (the header sits inside the
  first block): 32 KiB blocks made of chunks, each with a 7-byte chunk header
  ``crc32 (4, LE) | length (2, LE) | type (1)`` followed by ``length`` payload bytes. Type is
  FULL=1, FIRST=2, MIDDLE=3 or LAST=4; a record split across blocks is FIRST, MIDDLE..., LAST.
  A block tail shorter than a chunk header is zero padding. The checksum is the plain IEEE
  CRC-32 (``zlib.crc32``, unmasked) of the type byte followed by the payload;
* each reassembled record is a serialized ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import re
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lab.errors import LabError

MAGIC = b":W&B"
IDENT = 0xBEE1
VERSION = 0
HEADER_SIZE = 7
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER_SIZE = 7

FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

_RUN_DIR_TIME = re.compile(r"\d{8}_\d{6}")
_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")

# Config and summary keys that wandb adds for its own bookkeeping.
_INTERNAL_KEYS = ("_wandb",)


class RunFileError(LabError):
    """A ``.wandb`` file that is missing, not a W&B run file, or damaged."""


def iter_records(path: str | Path, *, verify_crc: bool = True) -> Iterator[Any]:
    """Yield every ``Record`` protobuf stored in the run file at ``path``, in write order.

    A chunk cut short at the very end of the file (a run that is still writing, or a process
    that was killed mid-write) ends the iteration quietly, since everything before it is
    intact. A checksum mismatch or a broken chunk sequence raises ``RunFileError``.
    """
    from wandb.proto import wandb_internal_pb2

    for payload in _iter_payloads(Path(path), verify_crc=verify_crc):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def read_header(path: str | Path) -> tuple[int, int]:
    """Return ``(identifier, version)`` of the run file, raising if it is not one."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(HEADER_SIZE)
    return _check_header(path, head)


def _check_header(path: Path, head: bytes) -> tuple[int, int]:
    if len(head) < HEADER_SIZE:
        raise RunFileError(f"{path} is too short to be a W&B run file; pass a run-<id>.wandb file")
    magic, ident, version = _HEADER.unpack(head[:HEADER_SIZE])
    if magic != MAGIC or ident != IDENT:
        raise RunFileError(f"{path} is not a W&B run file; pass a run-<id>.wandb file")
    if version != VERSION:
        raise RunFileError(
            f"{path} uses W&B run file format version {version}, this reader knows {VERSION}; "
            "read it with the wandb release that wrote it"
        )
    return ident, version


def _iter_payloads(path: Path, *, verify_crc: bool) -> Iterator[bytes]:
    """Reassemble every record payload of the file."""
    if not path.is_file():
        raise RunFileError(f"no W&B run file at {path}; pass a run-<id>.wandb file or a run dir")
    data = path.read_bytes()
    _check_header(path, data)
    yield from _frame(path, data, HEADER_SIZE, verify_crc=verify_crc, resync=False)


def _frame(path: Path, data: bytes, pos: int, *, verify_crc: bool, resync: bool) -> Iterator[bytes]:
    """Reassemble record payloads from the block-framed log in ``data``, starting at ``pos``.

    ``data[0]`` must sit at a block boundary of the file. With ``resync``, chunks that continue
    a record begun before ``pos`` are skipped instead of being treated as damage.
    """
    size = len(data)
    pending: list[bytes] | None = None
    while pos < size:
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER_SIZE:
            pos += left_in_block  # zero padding at the block end
            continue
        if pos + CHUNK_HEADER_SIZE > size:
            return  # truncated chunk header at the end of the file
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        if kind == 0 and length == 0 and crc == 0:
            pos += left_in_block  # zeroed (preallocated or padded) rest of the block
            continue
        start = pos + CHUNK_HEADER_SIZE
        end = start + length
        if length > left_in_block - CHUNK_HEADER_SIZE:
            raise RunFileError(f"{path}: chunk at byte {pos} overruns its block; file is damaged")
        if end > size:
            return  # truncated payload at the end of the file
        payload = data[start:end]
        if verify_crc and zlib.crc32(payload, zlib.crc32(bytes((kind,)))) != crc:
            raise RunFileError(f"{path}: checksum mismatch at byte {pos}; file is damaged")
        chunk_at, pos = pos, end
        if kind in (FULL, FIRST):
            if pending is not None:
                raise RunFileError(f"{path}: unfinished record before byte {chunk_at}; damaged")
            resync = False
            if kind == FULL:
                yield payload
            else:
                pending = [payload]
        elif kind in (MIDDLE, LAST):
            if pending is None:
                if resync:
                    continue
                raise RunFileError(f"{path}: stray record piece at byte {chunk_at}; damaged")
            pending.append(payload)
            if kind == LAST:
                yield b"".join(pending)
                pending = None
        else:
            raise RunFileError(f"{path}: unknown chunk type {kind} at byte {chunk_at}; damaged")


def is_finished(path: str | Path) -> bool:
    """Whether the run file already holds the run's exit record (the run has finished).

    Only the last two blocks are read, so this is cheap to poll on large files.
    """
    from wandb.proto import wandb_internal_pb2

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size <= HEADER_SIZE:
        return False
    base = max(0, (size - 1) // BLOCK_SIZE - 1) * BLOCK_SIZE
    with path.open("rb") as fh:
        fh.seek(base)
        tail = fh.read()
    if base == 0:
        _check_header(path, tail)
    record = wandb_internal_pb2.Record()
    offset = HEADER_SIZE if base == 0 else 0
    for payload in _frame(path, tail, offset, verify_crc=True, resync=True):
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "exit":
            return True
    return False


def wait_until_finished(path: str | Path, timeout: float = 30.0, poll: float = 0.01) -> bool:
    """Wait until the run file holds its exit record and has stopped growing.

    wandb's ``run.finish()`` can return before its background process has flushed and closed
    the run file; call this before reading a run that was just finished. Returns False if the
    file is still incomplete after ``timeout`` seconds.
    """
    path = Path(path)
    deadline = time.monotonic() + timeout
    last_size = -1
    while True:
        size = path.stat().st_size if path.is_file() else -1
        if size == last_size and size > 0 and is_finished(path):
            return True
        if time.monotonic() >= deadline:
            return False
        last_size = size
        time.sleep(poll)


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
    run: dict[str, Any] = {
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
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    exit_code: int | None = None
    producer: str | None = None

    for record in iter_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "header":
            producer = record.header.version_info.producer or None
        elif kind == "run":
            r = record.run
            started = r.start_time.ToMicroseconds() / 1e6 if r.HasField("start_time") else None
            run.update(
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
            _apply(config, r.config.update, r.config.remove)
            _apply(summary, r.summary.update, r.summary.remove)
        elif kind == "config":
            _apply(config, record.config.update, record.config.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply(row, record.history.item, ())
            history.append(row)
        elif kind == "summary":
            _apply(summary, record.summary.update, record.summary.remove)
        elif kind == "exit":
            exit_code = record.exit.exit_code

    for internal in _INTERNAL_KEYS:
        config.pop(internal, None)
        summary.pop(internal, None)

    return {
        "run": run,
        "config": config,
        "history": history,
        "summary": summary,
        "exit_code": exit_code,
        "tables": _read_tables(run_file.parent / "files", history, summary),
        "file": str(run_file),
        "producer": producer,
    }


def _apply(target: dict[str, Any], updates: Iterable[Any], removes: Iterable[Any]) -> None:
    """Apply protobuf ``*Item`` updates/removes (``key`` or ``nested_key``) to ``target``."""
    for item in updates:
        keys = list(item.nested_key) or [item.key]
        node = target
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = json.loads(item.value_json) if item.value_json else None
    for item in removes:
        keys = list(item.nested_key) or [item.key]
        node = target
        for key in keys[:-1]:
            node = node.get(key)
            if not isinstance(node, dict):
                break
        else:
            node.pop(keys[-1], None)


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
