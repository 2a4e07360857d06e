"""Small file helpers every module shares: atomic writes, writability checks, cache keys and
flat views of nested configs.

An atomic write goes to a temporary sibling, is fsync'ed, then renamed into place: a reader
sees the old file or the whole new one, never half of it, even after a crash or SIGKILL.
Written files respect the umask (a group-shared cache stays readable by the group).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from lab.errors import LabError

# errors that mean "this place cannot take the file", as opposed to errors of the data source
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def with_umask(mode: int) -> int:
    """``mode`` as the umask lets a new file have it (0o666 -> 0o644 under umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_write(path: Path, write: Callable[[BinaryIO], None], mode: int = 0o666) -> Path:
    """Create ``path`` atomically from ``write(f)`` on a binary file; ``mode`` minus the umask.

    A full disk or an unwritable directory becomes one ``LabError`` naming the file; errors
    raised by ``write`` itself (a failed download, say) pass through unchanged.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, with_umask(mode))  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise _write_error(path, e) from e
        raise
    return path


def _write_error(path: Path, e: OSError) -> LabError:
    return LabError(
        f"cannot write {path}: {e.strerror or e}; free space or choose a writable directory "
        "(hydra.run.dir=..., cache_dir=...)."
    )


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def unwritable(directory: str | os.PathLike[str]) -> str | None:
    """Why ``directory`` cannot be created or written, or None when it can (creates nothing).

    Permission bits are honoured even for root, who could write anyway: a directory without
    write bits is read-only by intent (a shared data store) and must not be written into.
    """
    path = Path(directory).absolute()
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a directory"
            writable = os.access(parent, os.W_OK | os.X_OK) and bool(
                parent.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            )
            return None if writable else f"{parent} is not writable"
    return None  # pragma: no cover - the root directory always exists


def check_writable(directory: Path, what: str, key: str) -> None:
    """Fail early with one line when files cannot be created in ``directory`` (creates it)."""
    directory = Path(directory)
    why = unwritable(directory)
    if why is None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe"):
                pass
        except OSError as e:
            why = e.strerror or str(e)
    if why is not None:
        raise LabError(
            f"the {what} {directory} is not writable ({why}); set {key}=<a writable directory>."
        )


def cache_key(parts: Any, length: int = 16) -> str:
    """A short stable hash of a JSON-able value (dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:length]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested mappings as ``{dotted.path: value}``; lists become JSON text."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple):
        value = json.dumps(value, default=str)
    return {prefix: value}
