"""Data files: found locally, else downloaded safely and checked.

- ``fetch``: find a file in the data directories or download it atomically, under a lock,
  checked against ``Content-Length`` and a recorded sha256 (the names below come from there)
- ``archive``: extract only the wanted regular files of a tar archive, each checked against
  its recorded sha256, writing nothing unless all pass
- ``babi_sha256``: the recorded hashes of the bAbI task files
"""

from lab.download.fetch import (
    OFFLINE_ENV,
    ChecksumError,
    DownloadError,
    download,
    download_root,
    fetch_or_locate,
    is_offline,
    locate,
    sha256_of,
)

__all__ = [
    "OFFLINE_ENV",
    "ChecksumError",
    "DownloadError",
    "download",
    "download_root",
    "fetch_or_locate",
    "is_offline",
    "locate",
    "sha256_of",
]
