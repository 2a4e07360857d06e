"""Fetching data files: find them locally, else download them safely.

A data file is looked for in the data directory first, then in ``<cache_dir>/data``. When it is
in neither, it is downloaded into the data directory if that directory may be written, else into
the cache. Downloads stream into a temporary file beside the destination, are checked against
``Content-Length`` (a cut-off transfer must never pass for a complete file) and are moved into
place with one atomic ``os.replace``, under a file lock so that two processes never fetch the
same file at once. With ``LAB_OFFLINE=1`` (or no network) nothing is fetched and the error names
the file, where it was looked for and where to get it.

A download given the file's ``sha256`` is hashed while it streams and refused when the hash
differs, before anything is moved into place: a file that is not the published one (a changed
or tampered source, a captive portal's page) never reaches the cache. The tasks record the
sha256 next to each pinned URL (e.g. ``lab.tasks.multi30k.SHA256``; bAbI's archive has none,
its members are checked as they are extracted, ``lab.download.archive``). The existing code is
extended rather than replaced by ``pooch``: it already gives the atomic writes, the lock, the
fallback from a read-only data directory and the one-line errors the lab needs, and pooch would
add a dependency with its own cache layout and messages for one hash check.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from lab.errors import LabError
from lab.io import atomic_write, unwritable

OFFLINE_ENV = "LAB_OFFLINE"
_CHUNK = 1 << 16


class DownloadError(LabError):
    """A download that failed or was refused (offline, HTTP error, cut-off transfer).

    ``reason`` is the short cause (e.g. ``HTTP 404 Not Found``) for callers that word their own
    message around it.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class ChecksumError(DownloadError):
    """A download refused because its sha256 is not the one recorded for its URL.

    ``expected`` and ``got`` are the two hex digests; nothing was written at the destination.
    """

    def __init__(self, url: str, dest: Path, expected: str, got: str) -> None:
        self.url, self.expected, self.got = url, expected, got
        reason = f"sha256 mismatch: expected {expected}, got {got}"
        super().__init__(
            f"download of {url} refused ({reason}): it is not the published file, and nothing"
            f" was saved to {dest}; put a copy you trust into the data directory by hand"
            " (data_dir=...; files found there are used as they are)",
            reason,
        )


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_offline() -> bool:
    """True when ``LAB_OFFLINE`` is set to anything but an empty string, ``0`` or ``false``."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def locate(relpath: str | Path, roots: Sequence[Path]) -> Path | None:
    """The first ``root / relpath`` that is an existing file, or None."""
    for root in roots:
        candidate = Path(root) / relpath
        if candidate.is_file():
            return candidate
    return None


def download_root(roots: Sequence[Path]) -> Path | None:
    """The first of ``roots`` that may be written into (a download destination), or None."""
    for root in roots:
        if unwritable(root) is None:
            return Path(root)
    return None


def _offline_message(url: str, dest: Path, reason: str) -> str:
    return (
        f"cannot download {url} ({reason}); fetch it by hand into {dest}"
        f" (or go online and unset {OFFLINE_ENV})"
    )


def download(url: str, dest: str | Path, *, timeout: float = 30, sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    If ``dest`` already exists (e.g. another process fetched it while we waited for the lock)
    it is returned untouched. With ``sha256`` (hex), a body with another hash is refused with a
    ``ChecksumError``. Raises ``DownloadError`` (a ``LabError``) on any failure, and then leaves
    no partial file behind.
    """
    dest = Path(dest)
    if is_offline():
        reason = f"offline: {OFFLINE_ENV}=1"
        raise DownloadError(_offline_message(url, dest, reason), reason)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest.parent / f".{dest.name}.lock")):
        if dest.is_file():
            return dest
        atomic_write(dest, lambda out: _stream(url, out, dest, timeout, sha256))
    return dest


def _stream(url: str, out: BinaryIO, dest: Path, timeout: float, sha256: str | None) -> None:
    """Copy the body of ``url`` into ``out``; raise ``DownloadError`` if it is incomplete or
    ``ChecksumError`` if its hash is not ``sha256`` (when given)."""
    request = urllib.request.Request(url, headers={"User-Agent": "decoding-lab"})
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as e:
        reason = f"HTTP {e.code} {e.reason}"
        raise DownloadError(f"download of {url} failed: {reason}; check the URL", reason) from None
    except http.client.IncompleteRead as e:
        reason = f"transfer cut off after {len(e.partial)} bytes"
        raise DownloadError(f"download of {url} failed: {reason}; try again", reason) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = f"no network: {getattr(e, 'reason', None) or e}"
        raise DownloadError(_offline_message(url, dest, reason), reason) from None
    if expected is not None and received != int(expected):
        reason = f"incomplete transfer: got {received} of {expected} bytes"
        raise DownloadError(f"download of {url} failed: {reason}; try again", reason)
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise ChecksumError(url, dest, sha256.lower(), digest.hexdigest())


def fetch_or_locate(
    relpath: str | Path,
    roots: Sequence[Path],
    url: str,
    *,
    timeout: float = 30,
    what: str = "data file",
    sha256: str | None = None,
) -> Path:
    """Find ``relpath`` under one of ``roots`` or download ``url`` into the first writable one.

    ``roots`` are searched in order (typically the data directory, then ``<cache>/data``). A
    file found there is used as it is; a download is checked against ``sha256`` when given. The
    error when nothing can be done names the file, the directories and the source URL.
    """
    found = locate(relpath, roots)
    if found is not None:
        return found
    root = download_root(roots)
    where = " or ".join(str(Path(r) / Path(relpath).parent) for r in roots)
    if root is None:
        raise DownloadError(
            f"{what} {Path(relpath).name} not found in {where} and none of them is writable;"
            f" download {url} into one of them",
            "no writable directory",
        )
    try:
        return download(url, root / relpath, timeout=timeout, sha256=sha256)
    except ChecksumError:
        raise  # already names the URL, both hashes and the fix
    except DownloadError as e:
        message = f"{what} {Path(relpath).name} not found in {where}; {e}"
        raise DownloadError(message, e.reason) from None
