"""Where each search's time goes: one torch.profiler table per search, on the bench's inputs.

    python reports/bench/profiles.py --out reports/bench/profiles

The `lab bench` quick-mode model and search inputs (`lab.bench.searches`: random lab
Transformer, the first 4 sentences of the bench batch, outputs forced to 20 tokens, one torch
thread): `greedy`, `beam` k=5 and k=10, `sample` with 16 samples, `stochastic_beam` and
`diverse_beam` k=10, `mbr` over 32 samples and `exact` under a budget of 300 expansions per
sentence. Each search runs once to warm up, then once under the profiler; the table lists the
operators by self CPU time (the top 20), which is what the searches' figures in `bench.md`
divide into model and search. One `<search>.txt` per search.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import profile

from lab.bench.common import MODES, build_transformer, fixed_length, random_batch
from lab.bench.searches import searching


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("--out", type=Path, required=True)
    args = a.parse_args()
    torch.set_num_threads(1)
    s = MODES["quick"]
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    src, lens = src[: s.search_batch], lens[: s.search_batch]
    src = src[:, : int(lens.max())]
    fixed = fixed_length(s.out_len, model.eos_id)
    limit = {"max_len_a": 0, "max_len_b": s.out_len}
    runs = {
        "greedy": searching("greedy", model, src, lens, **fixed),
        "beam5": searching("beam", model, src, lens, beam_size=5, **fixed),
        "beam10": searching("beam", model, src, lens, beam_size=10, **fixed),
        "sample_n16": searching("sample", model, src, lens, num_samples=16, **fixed),
        "stochastic_beam10": searching(
            "stochastic_beam", model, src, lens, beam_size=10, min_len=s.out_len, **limit
        ),
        "diverse_beam10": searching("diverse_beam", model, src, lens, beam_size=10, **fixed),
        "mbr_n32": searching(
            "mbr", model, src, lens, candidates={"name": "sample", "num_samples": 32, **limit}
        ),
        "exact": searching("exact", model, src, lens, budget=s.exact_budget, **limit),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, run in runs.items():
        run()  # warm-up
        with profile() as p:
            run()
        table = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)
        head = f"# {name}: torch.profiler, self CPU time, one call after a warm-up\n"
        (args.out / f"{name}.txt").write_text(head + table + "\n")
        print(f"{name}: {args.out / f'{name}.txt'}")


if __name__ == "__main__":
    main()
