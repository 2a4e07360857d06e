"""Runs that decode the same checkpoint in several precisions, compared with the fp32 one::

    python -m lab.bench.precisions RUN_DIR [RUN_DIR ...] --out DIR

Each argument is a completed run directory (``lab run ... precision=bf16``); the one whose
config says ``precision: fp32`` is the reference. Per precision: the share of outputs whose
text is identical to fp32's, the largest log-prob gap among those, BLEU and decoding time.
Written as ``precisions.json`` and ``precisions.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.io import atomic_write_text
from lab.results import read_predictions, read_results, write_json


def compare(run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per run: precision, identical share and largest gap vs fp32, BLEU, seconds."""
    runs = []
    for d in run_dirs:
        res = read_results(Path(d))
        if res is None:
            raise LabError(f"{d} holds no completed run; give the directories of finished runs.")
        precision = res["config"].get("precision", "fp32")
        runs.append((precision, res, {r["id"]: r for r in read_predictions(Path(d))}))
    ref = next((r for r in runs if r[0] == "fp32"), None)
    if ref is None:
        raise LabError("none of the runs decoded with precision=fp32; add the fp32 run.")
    rows = []
    for precision, res, preds in runs:
        if preds.keys() != ref[2].keys():
            raise LabError(f"the {precision} run decoded other examples than the fp32 run.")
        same = [i for i, p in preds.items() if p["hyp"] == ref[2][i]["hyp"]]
        gaps = [abs(preds[i]["logprob"] - ref[2][i]["logprob"]) for i in same]
        m = res["metrics"]
        rows.append(
            {
                "precision": precision,
                "examples": len(preds),
                "identical_to_fp32": len(same) / len(preds) if preds else 0.0,
                "max_logprob_gap_vs_fp32": max(gaps) if gaps else None,
                "bleu": m.get("bleu"),
                "decode_seconds": m.get("decode_seconds"),
                "device": res["config"].get("device"),
            }
        )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| precision | examples | identical to fp32 | max log-prob gap | BLEU | decode (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gap, bleu, secs = (
            "n/a" if r[k] is None else format(r[k], f)
            for k, f in (
                ("max_logprob_gap_vs_fp32", ".4f"),
                ("bleu", ".2f"),
                ("decode_seconds", ".2f"),
            )
        )
        lines.append(
            f"| {r['precision']} | {r['examples']} | {r['identical_to_fp32']:.3f} | {gap} "
            f"| {bleu} | {secs} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lab.bench.precisions", description=__doc__)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    rows = compare(a.runs)
    write_json(a.out / "precisions.json", rows)
    atomic_write_text(a.out / "precisions.md", render(rows))
    print(render(rows), end="")


if __name__ == "__main__":
    main()
