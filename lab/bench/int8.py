"""int8 against float32 on one trained model: the same run's split decoded both ways::

    python -m lab.bench.int8 RUN_DIR --out FILE.json [--repeats 2] [--batch-size 100]

``RUN_DIR`` is a completed ``lab run`` of a lab Transformer (its checkpoint still cached). The
run's split is decoded with the run's search by the float32 model and by its dynamically
quantized int8 copy (``model.quantize=int8``), repeats in ABBA order (fp32, int8, int8, fp32,
...) so that a drift in machine load hits both alike; the JSON holds each side's median wall
time, the speedup (fp32 / int8), both corpus BLEUs (sacreBLEU defaults), the share of outputs
identical to float32 and the largest log-prob gap among those. One torch thread unless
``--threads`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sacrebleu
import torch

from lab.bench import run_pair
from lab.ct2.parity import run_inputs
from lab.evaluate import decode_pairs
from lab.models.quantize import quantize

CPU = torch.device("cpu")


def compare(run_dir: Path, repeats: int, batch_size: int) -> dict[str, Any]:
    """The figures of the module docstring for ``run_dir``."""
    model, search, pairs, _, tokenizer, refs = run_inputs(run_dir)
    models = {"fp32": model, "int8": quantize(model, "int8")}
    order = run_pair.abba("fp32", "int8", repeats)
    seconds: dict[str, list[float]] = {"fp32": [], "int8": []}
    best: dict[str, Any] = {}
    with torch.inference_mode():
        for name in order:
            nbest, _, took = decode_pairs(models[name], search, pairs, batch_size, CPU)
            seconds[name].append(took)
            best[name] = [nbest[p.index][0] for p in pairs]
    texts = {
        name: [tokenizer.decode([t for t in h.tokens if t != model.eos_id]) for h in hyps]
        for name, hyps in best.items()
    }
    same = [i for i, (a, b) in enumerate(zip(*best.values(), strict=True)) if a.tokens == b.tokens]
    out = run_pair.timings(run_dir, len(pairs), batch_size, repeats, seconds)
    median = out["median_s"]
    return {
        **out,
        "int8_speedup": median["fp32"] / median["int8"],
        "bleu": {name: sacrebleu.corpus_bleu(t, [refs]).score for name, t in texts.items()},
        "identical": len(same) / len(pairs),
        "max_logprob_gap_identical": max(
            (abs(best["fp32"][i].logprob - best["int8"][i].logprob) for i in same), default=0.0
        ),
    }


def main(argv: list[str] | None = None) -> None:
    shown = ("median_s", "int8_speedup", "bleu", "identical")
    run_pair.main("lab.bench.int8", __doc__, compare, shown, argv)


if __name__ == "__main__":
    main()
