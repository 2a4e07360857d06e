"""Completed runs written by hand the way ``lab run`` writes them (``predictions.jsonl`` and a
``results.json`` whose BLEU and chrF the lab's own metrics computed), for report tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.metrics.translation import Bleu, Chrf

SUBJECTS = ["a man", "the woman", "two kids", "an old dog", "my sister"]
ACTIONS = ["walks to", "looks at", "paints", "runs past", "waves at", "sits near", "finds", "buys"]
REFS = [f"{s} {a} the small red house today ." for s in SUBJECTS for a in ACTIONS]  # 40


def drop_words(texts: list[str], every: int, n: int) -> list[str]:
    """``texts`` with the last ``n`` words of every ``every``-th text left out."""
    return [" ".join(t.split()[:-n]) if i % every == 0 else t for i, t in enumerate(texts)]


BASE_HYPS = drop_words(REFS, 4, 2)  # the baseline's outputs
WORSE_HYPS = drop_words(REFS, 1, 4)  # every sentence cut short: clearly worse


def completed_run(
    root: Path, name: str, hyps: list[str], refs: list[Any] = REFS, **settings: Any
) -> Path:
    """A completed run in ``root/name`` whose config takes ``settings`` (dotted keys; the
    defaults: transformer, beam 5, seed 1) and whose metrics the lab's own metrics compute."""
    config: dict[str, Any] = {}
    flat = {"task.name": "toy_mt", "model.name": "transformer", "search.name": "beam"}
    flat |= {"search.beam_size": 5, "seed": 1, "threads": 1, "eval.split": "test"}
    for key, value in (flat | {k.replace("__", "."): v for k, v in settings.items()}).items():
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    ref_lists = [r if isinstance(r, list) else [r] for r in refs]
    pairs = enumerate(zip(hyps, refs, strict=True))
    preds = [{"id": f"test-{i}", "src": "-", "ref": r, "hyp": h} for i, (h, r) in pairs]
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    metrics = Bleu().compute(hyps, ref_lists) | Chrf().compute(hyps, ref_lists)
    results = {"status": "completed", "task": "toy_mt", "model": config["model"]["name"]}
    results |= {"search": config["search"]["name"], "split": "test", "config": config}
    results |= {"metrics": metrics, "n_examples": len(preds), "checkpoint": "ckpt/model.pt"}
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir
