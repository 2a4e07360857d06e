"""A model checkpoint as a W&B artifact (type ``model``), for lineage: which run trained a
checkpoint, and which runs decoded with it.

The artifact holds a *reference* to the checkpoint file (``file://<absolute path>``), with
its MD5 checksum and size, rather than a copy. A checkpoint can be hundreds of megabytes and
every run of a sweep decodes with the same one: adding the file would copy it into W&B's
staging folder once per run and upload it once per run on ``wandb sync``, while the file
already lives, content-addressed, in the lab's checkpoint cache. The checksum still pins the
exact weights: the same file gives the same artifact digest (one version, shared by the
training run and every decoding run), retrained weights give a new version.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

CHECKPOINT_FILE = "model.pt"  # the cache's layout: <cache_dir>/checkpoints/<key>/model.pt
ARTIFACT_TYPE = "model"


def artifact_name(path: Path, model: str) -> str:
    """``<model>-<cache key>`` for a cached checkpoint, else ``<model>-<stem>-<path hash>``.

    A cached checkpoint's folder name is already the hash of everything that made its
    weights; any other file is told apart from its namesakes by a hash of its absolute path.
    """
    path = path.expanduser().resolve()
    if path.name == CHECKPOINT_FILE and path.parent.parent.name == "checkpoints":
        name = f"{model}-{path.parent.name}"
    else:
        digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:8]
        name = f"{model}-{path.stem}-{digest}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def checkpoint_artifact(path: Path, model: str) -> Any:
    """A ``wandb.Artifact`` of type ``model`` that references the checkpoint file ``path``."""
    import wandb

    path = path.expanduser().resolve()
    artifact = wandb.Artifact(
        artifact_name(path, model),
        type=ARTIFACT_TYPE,
        description=f"{model} checkpoint at {path}",
        metadata={"model": model, "path": str(path), "bytes": path.stat().st_size},
    )
    artifact.add_reference(path.as_uri(), name=path.name)
    return artifact
