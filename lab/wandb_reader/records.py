"""The record framing of W&B run files (``run-<id>.wandb``): header, blocks, chunks.

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

import struct
import time
import zlib
from collections.abc import Iterator
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

_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")


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
