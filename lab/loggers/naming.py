"""W&B run names from the Hydra overrides that made the run, e.g. ``beam_size=8,model=gru``.

A sweep's runs share a group, so their names must tell them apart: the overrides of a job
(Hydra's ``hydra.overrides.task``) are exactly what differs between them. Overrides that do
not change what a run computes (threads, force, logger, data/cache directories) are left out,
and so are ``experiment``/``experiment_name``, which name the group already. A dotted key is
shortened to its last part (``search.beam_size`` -> ``beam_size``) unless two kept overrides
would then read the same.

In a sweep, the overrides the sweeper chose come first (``search=beam,d_model=32,...``), so
that the part telling runs apart shows even where W&B cuts a long name short. They are the
job's overrides that the sweep's command line (``<sweep dir>/multirun.yaml``) does not hold
as such: a command-line sweep ``search=greedy,beam`` became ``search=beam`` in the job, and a
sweeper's own choices (``hydra.sweeper.params``, Optuna's) were added to it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# Top-level keys whose overrides do not change a run's results (or name its group instead).
UNNAMED_KEYS = (
    "threads",
    "force",
    "logger",
    "data_dir",
    "cache_dir",
    "hydra",
    "experiment",
    "experiment_name",
)


def hydra_task_overrides() -> list[str] | None:
    """The running Hydra job's task overrides, or None outside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None
    if not HydraConfig.initialized():
        return None
    return [str(o) for o in HydraConfig.get().overrides.task]


def hydra_swept_overrides() -> set[str]:
    """The running Hydra job's overrides that its sweeper chose (empty outside a sweep)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf
    except ImportError:  # pragma: no cover - hydra is a dependency
        return set()
    if not HydraConfig.initialized() or str(HydraConfig.get().mode) != "RunMode.MULTIRUN":
        return set()
    hc = HydraConfig.get()
    try:
        sweep = OmegaConf.load(Path(hc.sweep.dir) / "multirun.yaml")
        given = {str(o) for o in sweep.hydra.overrides.task}
    except Exception:  # noqa: BLE001 - without the sweep's file, names keep their order
        return set()
    return {str(o) for o in hc.overrides.task} - given


def _split(override: str) -> tuple[str, str] | None:
    """``(key, "=value")`` of ``key=value`` without Hydra's ``+``/``++`` prefixes; a deletion
    ``~key`` gives ``(key, "")`` and is shown as ``~key``."""
    key, sep, value = override.partition("=")
    deleted = key.startswith("~")
    key = key.lstrip("+~").strip()
    if not key:
        return None
    return key, "" if deleted else f"={value.strip()}" if sep else ""


def run_name(overrides: list[str] | None, default: str, swept: set[str] | None = None) -> str:
    """``k=v,k=v`` from the overrides that change a run, those in ``swept`` first, or
    ``default`` when no override changes the run."""
    ordered = sorted(overrides or [], key=lambda o: o not in (swept or set()))  # stable
    kept = []
    for override in ordered:
        parsed = _split(override)
        if parsed is None or parsed[0].split(".", 1)[0] in UNNAMED_KEYS:
            continue
        kept.append(parsed)
    if not kept:
        return default
    short = Counter(key.rsplit(".", 1)[-1] for key, _ in kept)
    parts = []
    for key, value in kept:
        leaf = key.rsplit(".", 1)[-1]
        shown = leaf if short[leaf] == 1 else key
        parts.append(f"{shown}{value}" if value else f"~{shown}")
    return ",".join(parts)
