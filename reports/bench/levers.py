"""The speed levers of the bench section of reports/README.md, one by one, on the `lab bench` model.

    python reports/bench/levers.py --out reports/bench/levers.json            # the levers
    python reports/bench/levers.py --out reports/bench/levers.json --compile  # + torch.compile

Model and inputs are `lab bench`'s full mode (random lab Transformer, d_model 256, 3+3 layers,
vocabulary 8000, batch 32), outputs forced to 30 tokens (the shape of the CTranslate2 figures),
one torch thread. Each lever the lab ships is switched off alone, all else on, and greedy and
beam 5 are timed against everything on, in interleaved rounds (each round runs every variant
once); a speedup is the median over rounds of the round's ratio, with its 95% bootstrap
interval. `all_on_again` times everything on a second time: its ratio is the noise of
the machine, the floor under which a lever's effect is not shown. `all_off` switches every
lever off at once. The levers tried and not shipped (`TRIED`) are each switched on alone
over everything on. Each row says whether the outputs stay token-identical to everything on.
`--compile` adds `torch.compile` of the model's step (not shipped: measured here only).
Writes one JSON object (`--out`, else stdout); `lab.bench.levers_table` renders it.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F

import lab.models.layers as layers
import lab.models.linear as packed_linear
import lab.models.transformer as transformer
import lab.search.beam.candidates as candidates
from lab.bench.common import (
    MODES,
    build_transformer,
    environment,
    fixed_length,
    random_batch,
    round_times,
    write_json,
)
from lab.bench.tried import TRIED_STEP, patched
from lab.registry import SEARCHES
from lab.search.processors.constraints import BanTokens, MinLength


@contextlib.contextmanager
def two_fills() -> Iterator[None]:
    """Each ban processor fills its own copy of the scores, as before they were folded."""
    with patched(BanTokens, "banned", None), patched(MinLength, "banned", None):
        yield


LEVERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "packed_linears": (
        "every linear layer of the Transformer and the vocabulary projection through oneDNN with"
        " a weight prepacked once (lab.models.linear)",
        lambda: patched(packed_linear, "ONEDNN", False),
    ),
    "one_fill": (
        "the ban processors (PAD, BOS, EOS before the minimum length) as one index_fill per"
        " step (lab.search.contracts.apply)",
        two_fills,
    ),
    "packed_encoder": (
        "the encoder's linear layers and feed-forward over the real tokens only, not the"
        " padding (lab.models.packed)",
        lambda: patched(transformer, "worth_packing", lambda real: False),
    ),
    "two_level_topk": (
        "beam's top 2K per sentence by block maxima, never forming the K*V sums"
        " (lab.search.beam.candidates.top_extensions)",
        lambda: patched(candidates, "top_extensions", candidates._top_of_sums),
    ),
}


def plain_attention(q, k, v, attn_mask=None, dropout_p=0.0):  # noqa: ANN001, ANN201
    """softmax(QK^T / sqrt(d)) V in two products (mask True = keep) for at most 64 queries,
    the fused kernel above that."""
    if q.size(-2) > 64 or dropout_p:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    w = (q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5
    if attn_mask is not None:
        w = w.masked_fill(~attn_mask, float("-inf"))
    return torch.softmax(w, -1) @ v


PLAIN_F = SimpleNamespace(**{**vars(F), "scaled_dot_product_attention": plain_attention})

# levers measured and not shipped, each switched on alone: name -> (what, context from model)
TRIED: dict[str, tuple[str, Callable[[Any], Callable[[], Any]]]] = {
    "plain_step_attention": (
        "two products and a softmax instead of the fused SDPA kernel for a step's few queries",
        lambda model: (
            lambda: patched(
                layers,
                "F",
                SimpleNamespace(**{**vars(F), "scaled_dot_product_attention": plain_attention}),
            )
        ),
    ),
    **{name: (what, lambda model, on=on: on) for name, (what, on) in TRIED_STEP.items()},
}


def without(names: list[str], fn: Callable[[], Any], extra: Any = None) -> Callable[[], Any]:
    """``fn`` with the levers ``names`` switched off (and the context ``extra`` entered)."""

    def run() -> Any:
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(LEVERS[name][1]())
            if extra is not None:
                stack.enter_context(extra())
            return fn()

    return run


def tokens(fn: Callable[[], Any]) -> list[tuple[int, ...]]:
    return [h.tokens for h in fn().best()]


def ratio(slow: list[float], fast: list[float]) -> dict[str, float]:
    """The per-round ratios ``slow / fast`` (paired within a round): their median and its 95%
    percentile-bootstrap interval (2000 resamples of the rounds, seed 0)."""
    r = torch.tensor([a / b for a, b in zip(slow, fast, strict=True)], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    picks = torch.randint(len(r), (2000, len(r)), generator=g)  # (2000, rounds)
    medians = r[picks].median(dim=1).values  # (2000,)
    low, high = torch.quantile(medians, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return {"median": float(r.median()), "low": float(low), "high": float(high)}


def measure(repeats: int, compile_step: bool) -> dict[str, Any]:
    s = MODES["full"]
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    fixed = fixed_length(30, model.eos_id)
    searches = {
        "greedy": SEARCHES.build("greedy", **fixed),
        "beam5": SEARCHES.build("beam", beam_size=5, **fixed),
    }
    configs = {"all_on": [], "all_on_again": [], **{f"no_{n}": [n] for n in LEVERS}}
    configs |= {"all_off": list(LEVERS)} | {f"with_{n}": [] for n in TRIED}
    fns = {
        f"{c}/{name}": without(
            off,
            lambda search=search: search(model, src, lens),
            TRIED[c[5:]][1](model) if c.startswith("with_") else None,
        )
        for c, off in configs.items()
        for name, search in searches.items()
    }
    with torch.inference_mode():
        same = {k: tokens(f) == tokens(fns[f"all_on/{k.split('/')[1]}"]) for k, f in fns.items()}
        t = round_times(fns, repeats)
        if compile_step:
            compile_out = compiled(s, src, lens, searches["greedy"], repeats)
    on = {k: t[f"all_on/{k}"] for k in searches}
    out: dict[str, Any] = {
        "repeats": repeats,
        "times_s": {k: statistics.median(v) for k, v in t.items()},
        "identical_to_all_on": same,
        "noise": {k: ratio(t[f"all_on_again/{k}"], on[k]) for k in searches},
        "levers": {
            name: {"what": what} | {k: ratio(t[f"no_{name}/{k}"], on[k]) for k in searches}
            for name, (what, _) in LEVERS.items()
        },
        "tried": {
            name: {"what": what} | {k: ratio(on[k], t[f"with_{name}/{k}"]) for k in searches}
            for name, (what, _) in TRIED.items()
        },
        "all_off_vs_all_on": {k: ratio(t[f"all_off/{k}"], on[k]) for k in searches},
    }
    if compile_step:
        out["compile"] = compile_out
    return out


def compiled(s: Any, src: Any, lens: Any, greedy: Any, repeats: int) -> dict[str, Any]:
    """``torch.compile(step, dynamic=True)`` against eager, greedy: first call and medians."""
    eager, fast = build_transformer(s), build_transformer(s)
    fast.step = torch.compile(fast.step, dynamic=True)
    start = time.perf_counter()
    same = tokens(lambda: greedy(fast, src, lens)) == tokens(lambda: greedy(eager, src, lens))
    first = time.perf_counter() - start
    runs = {"greedy_eager": eager, "greedy_compiled": fast}
    t = round_times({k: lambda m=m: greedy(m, src, lens) for k, m in runs.items()}, repeats)
    return {"first_call_s": first, "identical": same,
            "greedy": ratio(t["greedy_eager"], t["greedy_compiled"])}  # fmt: skip


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("--compile", action="store_true")
    a.add_argument("--repeats", type=int, default=25)
    a.add_argument("--out", type=Path)
    args = a.parse_args()
    torch.set_num_threads(1)
    command = "python reports/bench/levers.py" + (" --compile" if args.compile else "")
    out = {"environment": environment(1), "command": command}
    out |= measure(args.repeats, args.compile)
    write_json(out, args.out)


if __name__ == "__main__":
    main()
