"""Write small run directories for reports/dashboard/ from the committed run tables.

Run directories and checkpoints stay out of git, so the dashboard is built from summaries:
one ``results.json`` per row of the committed runs tables (``multi30k/multi30k_runs.csv`` and
``beam_curse/beam_curse_bleu_runs.csv``: the settings that vary within each experiment and
every metric; settings constant within an experiment are not in those tables), with
``config.experiment_name`` naming the experiment. A row gets the first ``SENTENCES`` lines of
a ``predictions.jsonl`` (id, src, ref, hyp, logprob) when a local run directory of the same
name under ``multirun/`` has exactly the row's BLEU, chrF and mean log-prob. Without
``multirun/`` the predictions already in ``runs/`` are kept.

So that the page has runs to compare sentence by sentence, three runs of the search_errors
experiment (the same Transformer and test set: beam 4, beam 64, exact search) are summarised
from their local run directories, when present, in the same shape. Run from the project root:

    python reports/dashboard/summarise_runs.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

OUT = Path("reports/dashboard/runs")
TABLES = {  # experiment -> (committed runs table, its first metric column)
    "multi30k": (Path("reports/multi30k/multi30k_runs.csv"), "bleu_tok_lc"),
    "beam_curse": (Path("reports/beam_curse/beam_curse_bleu_runs.csv"), "bleu"),
}
EXTRA = {  # experiment -> local runs summarised with their predictions
    "search_errors": [
        "search.beam_size=4,search=beam",
        "search.beam_size=64,search=beam",
        "search=exact",
    ]
}
SENTENCES = 200
TOP_LEVEL = ("objective", "seconds")  # results.json fields that a runs table holds as columns
KEPT = ("status", "task", "model", "search", "split", "n_examples", "train", *TOP_LEVEL)
SAME = ("bleu", "chrf", "mean_logprob")  # a local run matches a row when these are equal


def _value(text: Any) -> Any:
    """A CSV cell as JSON: missing dropped (None), whole floats as ints, True/False as bools."""
    if isinstance(text, str):
        return {"True": True, "False": False}.get(text, text)
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    if isinstance(text, float) and text.is_integer():
        return int(text)
    return text.item() if hasattr(text, "item") else text


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}`` (a key's last part may hold a slash)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _from_row(experiment: str, row: pd.Series, first_metric: str) -> dict[str, Any]:
    """A results.json from one row of a runs table."""
    columns = list(row.index)
    start = columns.index(first_metric)
    keys = {c: _value(row[c]) for c in columns[4:start]}
    keys = {c: v for c, v in keys.items() if v is not None}
    metrics = {c: _value(row[c]) for c in columns[start:] if _value(row[c]) is not None}
    config = {k: v for k, v in keys.items() if k not in TOP_LEVEL and not k.startswith("train.")}
    config.update({"experiment_name": experiment, "task.name": row["task"]})
    config.update({"model.name": row["model"], "search.name": row["search"]})
    results = {"status": "completed", "task": row["task"], "model": row["model"]}
    results["search"] = row["search"]
    results.update(_nest({k: v for k, v in keys.items() if k.startswith("train.")}))
    results.update({k: keys[k] for k in TOP_LEVEL if k in keys})
    return {**results, "config": _nest(config), "metrics": metrics}


def _summary(results: dict[str, Any], experiment: str) -> dict[str, Any]:
    """A local run's results.json in the shape of ``_from_row``: no paths, no signatures."""
    config = results["config"]
    kept = {k: results[k] for k in KEPT if k in results}
    sections = {k: config[k] for k in ("task", "model", "search") if k in config}
    metrics = {k: v for k, v in results["metrics"].items() if not k.endswith("_signature")}
    return {**kept, "config": {"experiment_name": experiment, **sections}, "metrics": metrics}


def _local(experiment: str, run: str) -> dict[str, Any] | None:
    path = Path("multirun") / experiment / run / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text(encoding="utf-8"))
    return results if results.get("status") == "completed" else None


def results_text(results: dict[str, Any]) -> str:
    """A summary as the text of its ``results.json``."""
    return json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _write(run_dir: Path, results: dict[str, Any], predictions: Path | None) -> None:
    """``results.json``, and the first sentences of ``predictions`` when given (else a
    ``predictions.jsonl`` already there is kept)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(results_text(results), encoding="utf-8")
    if predictions is None:
        return
    lines = []
    with predictions.open(encoding="utf-8") as f:
        for line in f:
            if len(lines) == SENTENCES:
                break
            row = json.loads(line)
            short = {k: row[k] for k in ("id", "src", "ref", "hyp", "logprob") if k in row}
            lines.append(json.dumps(short, ensure_ascii=False) + "\n")
    (run_dir / "predictions.jsonl").write_text("".join(lines), encoding="utf-8")


def main() -> None:
    for experiment, (table, first_metric) in TABLES.items():
        for _, row in pd.read_csv(table).iterrows():
            results = _from_row(experiment, row, first_metric)
            local = _local(experiment, row["run"])
            same = local is not None and all(
                math.isclose(local["metrics"][k], results["metrics"][k], rel_tol=1e-12)
                for k in SAME
            )
            preds = Path("multirun") / experiment / row["run"] / "predictions.jsonl"
            run_dir = OUT / experiment / row["run"]
            _write(run_dir, results, preds if same else None)
            kept = (run_dir / "predictions.jsonl").is_file()
            print(f"{experiment}/{row['run']}" + (" (with predictions)" if kept else ""))
    for experiment, runs in EXTRA.items():
        for run in runs:
            local = _local(experiment, run)
            if local is None:
                print(f"{experiment}/{run}: no completed local run; left as it was")
                continue
            preds = Path("multirun") / experiment / run / "predictions.jsonl"
            _write(OUT / experiment / run, _summary(local, experiment), preds)
            print(f"{experiment}/{run} (with predictions)")


if __name__ == "__main__":
    main()
