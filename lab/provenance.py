"""What a completed run's numbers depend on, in one place, and what changed since.

A run directory is reused (``skipping ...: already completed``) only while all of these are
unchanged; anything else is one line naming what changed:

* the resolved config, less the keys that cannot change a number (``IGNORED``);
* ``threads``: the torch thread count the run had (float sums are reduced in another order
  with another count, see ``lab.model_cache``), so ``threads=0`` and ``threads=1`` agree
  where the default is one thread;
* ``data``: a hash of the examples decoded (ids, sources, references), whatever file or
  ``data_dir`` they came from, so an edit in place is seen and a moved copy is not;
* ``checkpoint``: the weights' identity: the cache key (which hashes the training data's
  content), the content hash of a ``checkpoint=`` file, or the pretrained name.

File contents are hashed once and the digest kept by path, size and modification time under
``<cache_dir>/digests`` (as the cache keeps its locks): a rerun does not read gigabytes again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.io import atomic_write_text, cache_key, flatten

# keys that choose where files go or how a run is logged, never what it computes
IGNORED = ("force", "cache_dir", "data_dir", "logger", "threads")
# what an old results.json (recorded before ``depends``) is compared on instead
LEGACY_IGNORED = ("force", "cache_dir", "logger")
# keys added after runs were recorded, with the value that a run without them was made with
ADDED_DEFAULTS = {"precision": "fp32"}
DIGESTS = "digests"
_HEX = re.compile(r"^[0-9a-f]{64}$")


def file_digest(path: Path, cache_dir: Path | None = None) -> str:
    """The SHA-256 of ``path``'s content, remembered under ``cache_dir`` by path, size and
    modification time (an edit in place changes the time, so it is hashed again)."""
    path = Path(path).resolve()
    st = path.stat()
    memo = None
    if cache_dir is not None:
        memo = Path(cache_dir) / DIGESTS / cache_key([str(path), st.st_size, st.st_mtime_ns])
        try:
            known = memo.read_text(encoding="ascii").strip()
            if _HEX.match(known):
                return known
        except (OSError, UnicodeDecodeError):
            pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if memo is not None:
        try:
            atomic_write_text(memo, digest + "\n")
        except (OSError, LabError):  # a read-only cache only costs the hash next time
            pass
    return digest


def examples_digest(examples: Iterable[Any]) -> str:
    """A hash of the examples a run decodes: their ids, sources and references, in order."""
    h = hashlib.sha256()
    for ex in examples:
        row = [str(ex.id), ex.src, list(ex.refs)]
        h.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


def checkpoint_identity(kind: str, path: Path, cache_dir: Path) -> str:
    """The weights a run decodes: ``cache:<key>``, ``file:<content hash>`` or
    ``pretrained:<name>``."""
    if kind == "cache":
        return f"cache:{Path(path).parent.name}"
    if kind == "checkpoint":
        try:
            return f"file:{file_digest(path, cache_dir)[:16]}"
        except OSError:
            return f"file:{path} (unreadable)"
    return f"pretrained:{path}"


def dependencies(threads: int, examples: Iterable[Any], checkpoint: str) -> dict[str, Any]:
    """The ``depends`` entry of ``results.json``."""
    return {"threads": threads, "data": examples_digest(examples), "checkpoint": checkpoint}


def config_changes(previous: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """The dotted config keys whose values differ from the completed run's."""
    ignored = IGNORED if "depends" in previous else LEGACY_IGNORED
    old = flatten(
        ADDED_DEFAULTS
        | {k: v for k, v in (previous.get("config") or {}).items() if k not in ignored}
    )
    new = flatten(ADDED_DEFAULTS | {k: v for k, v in config.items() if k not in ignored})
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


WHAT = {"threads": "threads", "data": "decoded data", "checkpoint": "checkpoint"}


def dependency_changes(previous: Mapping[str, Any], depends: Mapping[str, Any]) -> list[str]:
    """What of ``depends`` differs from the completed run's (nothing for a run recorded
    before ``depends`` existed: its config, data_dir and threads included, was compared)."""
    old = previous.get("depends")
    if not isinstance(old, Mapping):
        return []
    out = []
    for key, what in WHAT.items():
        if old.get(key) != depends.get(key):
            out.append(
                f"{what} ({old.get(key)} -> {depends.get(key)})" if key == "threads" else what
            )
    return out


def describe(keys: list[str], most: int = 4) -> str:
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def stale_error(run_dir: Path, changed: list[str]) -> LabError:
    return LabError(
        f"{run_dir} holds a completed run made with other {describe(changed)}; set force=true "
        "to rerun it there, or choose a new hydra.run.dir / hydra.sweep.dir."
    )
