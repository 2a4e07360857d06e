"""bAbI 1k test error of the lab's runs beside the published anchors: per task, the mean over the
20 tasks and the number of failed tasks (error > 5%), the measure of Weston et al. (2015).

Reads the runs table that ``lab report`` writes (``<name>_runs.csv``: one row per run with
``task.task_id``, ``search``, ``error`` and, for copy runs, ``model.copy``) and writes
``<out>.md`` and ``<out>.csv``:

    lab report multirun/babi_joint --out reports/babi --metric error --rows task.task_id \\
        --cols model.copy,search --mean-row --name babi_joint_error
    python reports/babi/anchors.py reports/babi/babi_joint_error_runs.csv \
        --out reports/babi/babi_joint_vs_anchors

The anchors are published figures (``Published`` below, with their sources), not runs of
the lab.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

FAILED_ABOVE = 5.0  # a task is failed when its test error is above 5%
TASKS = list(range(1, 21))

# per-task 1k test error (%) where the source gives it
LSTM_1K = [50, 80, 80, 39, 30, 52, 51, 55, 36, 56, 38, 26, 6, 73, 79, 77, 49, 48, 92, 9]
MEMN2N_1K = [0.1, 8.2, 41.8, 4.4, 13.7, 7.9, 20.3, 11.7, 13.6, 9.7]
MEMN2N_1K += [0.7, 0.0, 0.3, 0.9, 0.0, 0.4, 51.0, 10.5, 81.4, 0.0]

# (model, setting, mean error %, failed tasks, source)
PUBLISHED = [
    ("LSTM", "1k single", 51.3, 20, "Weston et al. 2015; MemN2N Table 1"),
    ("MemN2N (3 hops, PE LS RN)", "1k single", 13.9, 11, "Sukhbaatar et al. 2015"),
    ("Transformer (vanilla)", "1k single", 21.8, 5, "Dehghani et al. 2019, Table 1"),
    ("Transformer (vanilla)", "1k joint", 26.8, 14, "Dehghani et al. 2019, Table 1"),
    ("Universal Transformer", "1k joint", 8.50, 8, "Dehghani et al. 2019, Table 1"),
]


def column_name(copy: object, search: str, stop_rule: object = "-") -> str:
    """``plain|copy <search>``, with the stop rule when a run sets one other than the default."""
    model = "copy" if copy is True or str(copy) == "True" else "plain"
    rule = f" {stop_rule}" if str(stop_rule) not in ("-", "nan", "first_k") else ""
    return f"{model} {search}{rule}"


def per_task(runs: pd.DataFrame) -> pd.DataFrame:
    """Error by task (rows 1..20) and setting (columns ``plain|copy greedy|beam [rule]``)."""
    copy = runs["model.copy"] if "model.copy" in runs else pd.Series("-", index=runs.index)
    rule = runs["search.stop_rule"] if "search.stop_rule" in runs else copy.map(lambda _: "-")
    names = [column_name(*row) for row in zip(copy, runs["search"], rule, strict=True)]
    table = runs.assign(setting=names).pivot_table(
        index="task.task_id", columns="setting", values="error"
    )
    missing = sorted(set(TASKS) - set(table.index.astype(int)))
    if missing:
        raise SystemExit(f"runs table lacks tasks {missing}; run every task first")
    table.index = table.index.astype(int)
    settings = [f"{m} {s}" for m in ("plain", "copy") for s in ("greedy", "beam", "beam canonical")]
    table = table[[c for c in settings if c in table]].reindex(TASKS)
    table["LSTM [published]"] = LSTM_1K
    table["MemN2N [published]"] = MEMN2N_1K
    return table


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """The 20 task rows, then the mean and the number of failed tasks of each column."""
    mean = table.mean().rename("mean")
    failed = (table > FAILED_ABOVE).sum().rename(f"failed (> {FAILED_ABOVE:g}%)")
    cells = pd.concat([table, mean.to_frame().T]).map(lambda x: f"{x:.2f}")
    return pd.concat([cells, failed.astype(str).to_frame().T])


def published() -> pd.DataFrame:
    return pd.DataFrame(PUBLISHED, columns=["model", "setting", "mean error", "failed", "source"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="a <name>_runs.csv written by lab report")
    parser.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = parser.parse_args()
    runs = pd.read_csv(args.runs)
    seeds = runs["seed"].fillna(0).nunique() if "seed" in runs else 1  # unset: the default 0
    table = summarize(per_task(runs))
    table.index.name = "task"
    table.to_csv(args.out.with_suffix(".csv"))
    text = [
        f"bAbI 1k test error (%) by task: the lab's runs ({args.runs.name}) beside published"
        f" per-task figures; a task is failed above {FAILED_ABOVE:g}% error."
        + (
            f" The lab's cells are means over {seeds} seeds, its failed counts those of the"
            " means (each seed's mean and failed count: babi_joint_seeds.md)."
            if seeds > 1
            else ""
        ),
        "",
        table.to_markdown(
            colalign=["left"] + ["right"] * len(table.columns), disable_numparse=True
        ),
        "",
        "Published means over the 20 tasks (failed tasks). Settings differ: the published models"
        " are other implementations with their own tokenization, training length and model"
        " selection, on the same 1k training sets and 1000 test questions a task"
        + ("; the lab's runs are one seed each" if seeds == 1 else "")
        + ". Levels to aim at, not comparable runs:",
        "",
        published().to_markdown(index=False, floatfmt=".2f"),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(text))
    print(args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
