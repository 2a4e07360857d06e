"""The best run of a sweep (an Optuna search, or any sweep whose runs return an objective).

``lab best SWEEP_DIR [--minimize] [--top N]`` prints the best run's settings, value and run
directory, the sweeper's own record when there is one, and the top trials; the
:class:`lab.callbacks.BestTrial` callback prints the same at the end of a sweep.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lab.errors import LabError
from lab.io import flatten
from lab.results import RESULTS, read_results

OPTUNA_FILE = "optimization_results.yaml"


@dataclass
class Trial:
    """One completed run of a sweep: its objective and its resolved config, flattened."""

    run_dir: Path
    objective: float
    config: dict[str, Any]


@dataclass
class Best:
    """The best completed run of a sweep, the sweeper's own record, and all trials."""

    sweep_dir: Path
    best: Trial
    trials: list[Trial]
    sweeper: dict[str, Any] = field(default_factory=dict)
    metric: str = "objective"


def sweep_trials(sweep_dir: Path) -> list[Trial]:
    """The completed runs under ``sweep_dir`` (any depth) with their objective.

    The settings come from ``results.json``, not ``.hydra/``: Hydra rewrites ``.hydra/`` of a
    directory even when the lab then refuses to run another config there.
    """
    trials = []
    for path in sorted(Path(sweep_dir).rglob(RESULTS)):
        if any(part.startswith(".") for part in path.relative_to(sweep_dir).parts):
            continue
        res = read_results(path.parent)
        if res is None or not isinstance(res.get("objective"), int | float):
            continue
        trials.append(Trial(path.parent, float(res["objective"]), flatten(res.get("config", {}))))
    return trials


def best_run(sweep_dir: Path, minimize: bool = False) -> Best:
    """The best completed run of ``sweep_dir`` (largest objective unless ``minimize``).

    The sweeper's own summary (Optuna's ``optimization_results.yaml``) is attached when there.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise LabError(
            f"no such sweep directory: {sweep_dir}; pass the hydra.sweep.dir of a sweep."
        )
    trials = sweep_trials(sweep_dir)
    if not trials:
        raise LabError(f"no completed run under {sweep_dir}; run the sweep first.")
    order = sorted(trials, key=lambda t: t.objective, reverse=not minimize)
    sweeper: dict[str, Any] = {}
    if (sweep_dir / OPTUNA_FILE).is_file():
        loaded = OmegaConf.to_container(OmegaConf.load(sweep_dir / OPTUNA_FILE))
        sweeper = loaded if isinstance(loaded, dict) else {}
    metric = "objective"
    objective = order[0].config.get("eval.objective")
    if objective:
        split = (read_results(order[0].run_dir) or {}).get("split", "?")
        metric = f"{objective} on {split}"
    return Best(sweep_dir, order[0], order, sweeper, metric)


def _varying(trials: Sequence[Trial]) -> list[str]:
    """The config keys whose value differs between ``trials``: the swept settings."""
    keys = sorted({k for t in trials for k in t.config} - {"force"})
    return [k for k in keys if len({repr(t.config.get(k)) for t in trials}) > 1]


def format_best(b: Best, top: int = 10) -> str:
    """``b`` as text: the best settings and run directory, then the top ``top`` trials."""
    varying = _varying(b.trials)

    def settings(t: Trial) -> str:
        return " ".join(f"{k}={t.config.get(k)}" for k in varying) or "-"

    lines = [
        f"best run of {b.sweep_dir} ({len(b.trials)} completed): "
        f"{b.metric} = {b.best.objective:.4g}",
        f"  settings: {settings(b.best)}",
        f"  run directory: {b.best.run_dir}",
    ]
    if b.sweeper.get("best_params") is not None:
        params = " ".join(f"{k}={v}" for k, v in b.sweeper["best_params"].items())
        value = b.sweeper.get("best_value")
        lines.append(f"  sweeper's record ({OPTUNA_FILE}): {params} -> {value}")
    lines.append(f"  top {min(top, len(b.trials))}:")
    for t in b.trials[:top]:
        lines.append(f"    {t.objective:10.4g}  {t.run_dir.name:<14} {settings(t)}")
    return "\n".join(lines)


def cmd_best(argv: list[str]) -> None:
    """``lab best SWEEP_DIR [--minimize] [--top N]``: print the best run of a sweep."""
    p = argparse.ArgumentParser(
        prog="lab best", description="The best run of a sweep (e.g. an Optuna search)."
    )
    p.add_argument("sweep_dir", type=Path, help="the hydra.sweep.dir of the sweep")
    p.add_argument("--minimize", action="store_true", help="smaller objective is better")
    p.add_argument("--top", type=int, default=10, help="trials listed (default 10)")
    a = p.parse_args(argv)
    print(format_best(best_run(a.sweep_dir, a.minimize), a.top))
