"""The bAbI joint models over seeds: each seed's mean error over the 20 tasks and its failed
tasks (error above 5%, the bAbI convention), pooled per model and search as mean ± std (n=seeds),
and each seed's training (updates, best update, minutes, parameters).

A seed counts for a (model, search) setting only when all 20 tasks ran; the per-seed figures
stay beside the pooled ones, so a spread can be traced to the seed that makes it. Read from
the committed per-run summaries of ``babi/runs/babi_joint``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lab.io import atomic_write_text
from lab.report.render import Table
from lab.report.runs import load_runs

RUNS = "babi/runs/babi_joint"
OUT = "babi"
TASKS = 20
FAILED = 5.0  # error (%) above which a task counts as failed
SETTING = ("model.copy", "search", "search.stop_rule")
TRAIN = {
    "train.steps": "updates",
    "train.best.step": "best update",
    "train.train_seconds": "minutes",
    "train.params": "parameters",
}


def _frame(runs: Path) -> pd.DataFrame:
    """One row per run: the setting (missing keys as '-', the root config's seed 0), task,
    error and training figures."""
    df = load_runs([runs])
    df["seed"] = _column(df, "seed", 0).astype(int)
    df["model"] = (
        _column(df, "model.copy", False).astype(bool).map({True: "facts + copy", False: "facts"})
    )
    stop = _column(df, "search.stop_rule", "first_k")  # beam's default stop rule
    df["search.stop_rule"] = stop.where(df["search"] == "beam", "-")
    return df


def _column(df: pd.DataFrame, key: str, default: object) -> pd.Series:
    """``df[key]`` with ``default`` where a run did not set it (or no run did)."""
    col = df[key].astype(object) if key in df else pd.Series(None, index=df.index, dtype=object)
    return col.where(col.notna(), default)


def per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, search, stop rule, seed) with all 20 tasks: mean error and failed tasks."""
    keys = ["model", "search", "search.stop_rule", "seed"]
    done = df.groupby(keys).filter(lambda g: g["task.task_id"].nunique() == TASKS)
    agg = done.groupby(keys)["error"].agg(
        mean_error="mean", failed=lambda e: int((e > FAILED).sum())
    )
    return agg.reset_index()


def _cell(values: pd.Series, digits: int) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f} (n=1)"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f} (n={len(values)})"


def pooled(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, search, stop rule): pooled cells, then each seed's ``error (failed)``."""
    rows = []
    for key, g in seeds.groupby(["model", "search", "search.stop_rule"], sort=True):
        each = {
            f"seed {s}": f"{e:.2f} ({f})"
            for s, e, f in zip(g.seed, g.mean_error, g.failed, strict=True)
        }
        rows.append(
            {
                **dict(zip(("model", "search", "stop rule"), key, strict=True)),
                "mean error": _cell(g.mean_error, 2),
                "failed tasks": _cell(g.failed.astype(float), 1),
                **each,
            }
        )
    table = pd.DataFrame(rows)
    seeds = sorted((c for c in table.columns if c.startswith("seed ")), key=lambda c: int(c[5:]))
    return table[[c for c in table.columns if not c.startswith("seed ")] + seeds]


def training(df: pd.DataFrame) -> pd.DataFrame:
    """Each model's training per seed (every run of a model and seed shares one)."""
    first = df.sort_values("run_dir").groupby(["model", "seed"]).first().reset_index()
    out = first[["model", "seed", *TRAIN]].rename(columns=TRAIN)
    out["minutes"] = (out["minutes"] / 60).round(1)
    return out


def babi_seeds(root: Path, out: Path) -> list[Path]:
    """``babi/babi_joint_seeds.{md,csv}`` from ``root``'s bAbI joint summaries (nothing without
    them)."""
    if not (root / RUNS).is_dir():
        return []
    df = _frame(root / RUNS)
    table = pooled(per_seed(df))
    seeds = [c for c in table.columns if c.startswith("seed ")]
    caption = (
        f"bAbI joint (20 tasks x 1k): mean test error over the 20 tasks and failed tasks (error "
        f"> {FAILED:g}%), mean ± std over seeds (n); per seed: mean error (failed tasks)"
    )
    main = Table(table, ["mean error", "failed tasks", *seeds], caption)
    train = training(df)
    counts = ["updates", "best update", "parameters"]
    train_t = Table(train, [*counts, "minutes"], "training of each model and seed", counts=counts)
    target = out / OUT
    target.mkdir(parents=True, exist_ok=True)
    text = f"{main.markdown()}\n\n{train_t.markdown()}\n"
    return [
        atomic_write_text(target / "babi_joint_seeds.md", text),
        atomic_write_text(target / "babi_joint_seeds.csv", table.to_csv(index=False)),
    ]
