"""What the per-sentence random streams of ``lab.search.rng`` cost per decoding step, on the
CPU generators the searches use and on generators living on the decode device::

    python -m lab.bench.rng_cost --device cuda

prints one JSON object: for ``sample`` (one uniform per row: ``N`` rows per sentence) and
``stochastic_beam`` (``2k + 1`` uniforms per row, ``k`` rows per sentence), the median
seconds per step of drawing the noise with CPU generators and moving it to ``device``
(``cpu_generators_s``), with generators on ``device`` (``device_generators_s``), and the
median seconds of one model step at the same shape (``model_step_s``), on the bench
Transformer (``lab.bench.common``). ``lab bench --device cuda`` records it as ``rng_cost``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch

from lab.bench.common import MODES, Settings, build_transformer, median_times, random_batch
from lab.bench.device_compare import synced
from lab.search.rng import generators, uniform

SHAPES = {"sample_n16": (16, 1), "stochastic_beam5": (5, 11)}  # rows per sentence, width


def step_time(s: Settings, rows: int, device: torch.device) -> float:
    """Median seconds of one decoder ``step`` on ``s.batch * rows`` rows (a mid-output step)."""
    model = build_transformer(s).to(device)
    src, lens = (t.to(device) for t in random_batch(s, s.vocab, model.pad_id))
    with torch.inference_mode():
        state = model.init_state(model.encode(src, lens), rows)
        prev = torch.full((src.size(0) * rows,), model.bos_id, device=device)
        for _ in range(8):  # a cache of a few tokens, as in the middle of an output
            _, state = model.step(prev, state)

        def one() -> None:
            model.step(prev, state)

        return median_times({"step": synced(one, device)}, s.repeats)["step"]


def rng_cost(s: Settings, device: torch.device) -> dict[str, Any]:
    """Seconds per step of the noise each stochastic search draws, by generator placement."""
    keys = list(range(s.batch))
    out: dict[str, Any] = {"device": str(device), "batch": s.batch, "vocab": s.vocab}
    for name, (rows, width) in SHAPES.items():
        fns = {}
        for where in ("cpu", device.type):
            gens = generators(0, keys, len(keys), device=where if where == "cpu" else device)
            fns[f"{where}_generators_s"] = synced(
                partial(uniform, gens, rows, width, device), device
            )
        times = median_times(fns, s.repeats)
        out[name] = {
            "rows_per_sentence": rows,
            "width": width,
            "cpu_generators_s": times["cpu_generators_s"],
            "device_generators_s": times[f"{device.type}_generators_s"],
            "model_step_s": step_time(s, rows, device),
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lab.bench.rng_cost", description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", choices=sorted(MODES), default="quick")
    a = p.parse_args(argv)
    print(json.dumps(rng_cost(MODES[a.mode], torch.device(a.device)), indent=1))


if __name__ == "__main__":
    main()
