"""Checked extraction of a downloaded tar archive: only the members a pattern names, only
regular files, each with its recorded sha256 when there is one, and nothing written unless all
of them pass.

Member names are matched against a fixed pattern whose two groups become the destination
(``root/<group 1>/<group 2>``), so links, absolute paths and ``..`` cannot place anything
outside ``root``. A damaged archive or a member with another hash is deleted from the cache, so
that the next run fetches it again instead of failing on the same file.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock

from lab.errors import LabError
from lab.io import atomic_write_bytes


class ArchiveMismatch(LabError):
    """An archive member whose sha256 is not the recorded one; the archive has been deleted."""

    def __init__(
        self, archive: Path, member: str, expected: str, got: str, what: str = "archive"
    ) -> None:
        self.member, self.expected, self.got = member, expected, got
        super().__init__(
            f"{what} {archive} is not the published one: {member} has sha256 {got},"
            f" expected {expected}; it was deleted and nothing was extracted"
        )


def extract_members(
    archive: Path,
    root: Path,
    pattern: re.Pattern[str],
    sha256: Mapping[str, str] | None = None,
    what: str = "archive",
) -> list[Path]:
    """Extract the members of ``archive`` whose names ``pattern`` matches into
    ``root/<group 1>/<group 2>`` and return the files written.

    Files already present are kept; each new file is written to a temporary name and renamed
    into place. ``sha256`` maps ``<group 1>/<group 2>`` to the hash a member must have: the
    members are all read and checked before any is written, so a mismatch (``ArchiveMismatch``)
    writes nothing. ``what`` names the archive in errors (``bAbI archive``).
    """
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".extract.lock")):
        try:
            with tarfile.open(archive, "r:*") as tar:
                pending = _checked_members(tar, archive, root, pattern, sha256 or {}, what)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            archive.unlink(missing_ok=True)
            raise LabError(
                f"{what} {archive} is damaged ({e}); it was removed, run again to re-fetch"
            ) from None
        for dest, data in pending:
            atomic_write_bytes(dest, data)
    return [dest for dest, _ in pending]


def _checked_members(
    tar: tarfile.TarFile,
    archive: Path,
    root: Path,
    pattern: re.Pattern[str],
    sha256: Mapping[str, str],
    what: str,
) -> list[tuple[Path, bytes]]:
    """(destination, content) of every wanted member not yet extracted, each checked against
    its recorded hash; on a mismatch the archive is deleted and ``ArchiveMismatch`` raised."""
    pending: list[tuple[Path, bytes]] = []
    for member in tar:
        match = pattern.match(member.name)
        if match is None or not member.isfile():
            continue
        dest = root / match.group(1) / match.group(2)
        source = None if dest.exists() else tar.extractfile(member)
        if source is None:
            continue
        data = source.read()
        key = f"{match.group(1)}/{match.group(2)}"
        expected, got = sha256.get(key), hashlib.sha256(data).hexdigest()
        if expected is not None and got != expected:
            archive.unlink(missing_ok=True)
            raise ArchiveMismatch(archive, key, expected, got, what)
        pending.append((dest, data))
    return pending
