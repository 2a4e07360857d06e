"""``lab bench``: how fast the lab's searches are, against the model's own forward passes and
against Hugging Face ``generate``.

Every figure is a ratio of two wall times measured in the same run, on the same inputs (a fixed
batch of random sentences, fixed seed), interleaved repeat by repeat so that a change in machine
load hits both sides, and reduced to medians. Where a figure needs equal work on both sides the
outputs are forced to a fixed length (EOS is banned until the last step, the length limit ends
every sentence there). Models have random weights of a realistic size: the figures measure
search and model code, not translation quality.

Figures (keys of ``bench.json``):

- ``search_overhead_beam5``: lab beam search (k=5) / the floor: the model's forward passes
  alone for the same steps and shapes (``encode`` once, then per step one ``step`` on ``B*K``
  rows and one ``reorder`` with a fixed index, which copies the cache as beam search must).
- ``beam5_vs_greedy``: beam 5 / greedy, same fixed length.
- ``cache_speedup_50``: greedy, 50 tokens, recomputing the prefix every step (teacher-forced
  ``forward``, which re-runs the encoder too) / incremental ``step`` with the KV cache.
- ``lab_vs_hf_beam5_time_ratio``: lab beam 5 through ``model=hf`` / ``generate(num_beams=5)``
  on the same Marian-architecture model, same inputs, length limits, stop rule and penalty.
- ``lab_vs_hf_beam5_identical``, ``lab_vs_hf_greedy_identical``: share of sentences whose best
  output tokens are identical, with natural stopping (the model's EOS logit is biased so that
  sentences end at various lengths).
- ``peak_mem_beam5_mb``, ``peak_mem_beam64_mb``: peak resident memory added by one beam search
  call, each measured in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.io import atomic_write_text
from lab.results import write_json

TARGETS: dict[str, tuple[str, float]] = {
    "search_overhead_beam5": ("<=", 1.15),
    "beam5_vs_greedy": ("<=", 2.5),
    "cache_speedup_50": (">=", 3.0),
    "lab_vs_hf_beam5_time_ratio": ("<=", 0.8),
    "lab_vs_hf_beam5_identical": (">=", 0.99),
    "lab_vs_hf_greedy_identical": (">=", 1.0),
}


@dataclass(frozen=True)
class Settings:
    """Sizes of one bench mode."""

    mode: str
    d_model: int = 256
    n_heads: int = 4
    layers: int = 3
    d_ff: int = 1024
    vocab: int = 8000
    batch: int = 32
    src_min: int = 8
    src_max: int = 32
    out_len: int = 50  # fixed output length of the lab-internal figures
    repeats: int = 5
    cache_len: int = 50
    cache_batch: int = 32  # sentences of the cache figure (its no-cache side is quadratic)
    cache_repeats: int = 1
    hf_len: int = 30  # fixed output length of the lab-vs-HF timing
    hf_repeats: int = 5
    natural_max_len: int = 40  # length limit of the identity check (natural stopping)
    mem_len: int = 50
    mem_beams: tuple[int, int] = (5, 64)
    seed: int = 1234


MODES: dict[str, Settings] = {
    "full": Settings("full"),
    "quick": Settings(
        "quick",
        out_len=20,
        repeats=3,
        cache_batch=8,
        cache_repeats=1,
        hf_len=15,
        hf_repeats=2,
        natural_max_len=25,
        mem_len=20,
    ),
    "tiny": Settings(
        "tiny",
        d_model=32,
        n_heads=2,
        layers=1,
        d_ff=64,
        vocab=200,
        batch=4,
        src_min=3,
        src_max=7,
        out_len=5,
        repeats=1,
        cache_len=50,
        cache_batch=4,
        cache_repeats=1,
        hf_len=5,
        hf_repeats=1,
        natural_max_len=8,
        mem_len=5,
    ),
}


# --- timing helpers -------------------------------------------------------------------------
def median_times(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: bool = True
) -> dict[str, float]:
    """Median wall time (s) of each function: one warm-up call each (unless the caller already
    ran them), then ``repeats`` rounds in which every function runs once (rotating the order),
    so load changes hit all of them."""
    if warmup:
        for fn in fns.values():
            fn()
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - start)
    return {n: statistics.median(v) for n, v in times.items()}


def random_batch(s: Settings, vocab: int, pad: int, low: int = 4) -> tuple[Any, Any]:
    """Fixed batch of ``s.batch`` random sentences (ids in ``[low, vocab)``), right-padded."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    g = torch.Generator().manual_seed(s.seed)
    lengths = torch.randint(s.src_min, s.src_max + 1, (s.batch,), generator=g)  # (B,)
    seqs = [torch.randint(low, vocab, (int(n),), generator=g) for n in lengths]
    return pad_sequence(seqs, batch_first=True, padding_value=pad), lengths


def build_transformer(s: Settings) -> Any:
    import torch

    import lab.models  # noqa: F401  (registration)
    from lab.registry import MODELS

    torch.manual_seed(s.seed)
    return MODELS.build(
        "transformer",
        s.vocab,
        s.vocab,
        d_model=s.d_model,
        n_heads=s.n_heads,
        enc_layers=s.layers,
        dec_layers=s.layers,
        d_ff=s.d_ff,
        dropout=0.0,
    ).eval()


def fixed_length(length: int, eos_id: int) -> dict[str, Any]:
    """Search arguments that make every output exactly ``length`` tokens: EOS is banned before
    the last step and the limit ends every sentence there."""
    return {
        "max_len_a": 0,
        "max_len_b": length,
        "processors": [{"name": "min_length", "min_len": length, "eos_id": eos_id}],
    }


# --- lab-internal figures ---------------------------------------------------------------------
def bench_lab(s: Settings) -> dict[str, Any]:
    """``search_overhead_beam5``, ``beam5_vs_greedy`` and ``cache_speedup_50`` on the lab's
    Transformer."""
    import torch

    import lab.search  # noqa: F401  (registration)
    from lab.registry import SEARCHES

    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    k, n, steps = 5, src.size(0), s.out_len
    fixed = fixed_length(steps, model.eos_id)
    beam = SEARCHES.build("beam", beam_size=k, **fixed)
    greedy = SEARCHES.build("greedy", **fixed)
    g = torch.Generator().manual_seed(s.seed + 1)
    feed = torch.randint(4, s.vocab, (steps, n * k), generator=g)  # (L, B*K) fixed inputs
    same = torch.arange(n * k)  # (B*K,) the trivial reorder

    def floor() -> None:
        with torch.inference_mode():
            state = model.init_state(model.encode(src, lens), k)
            prev = torch.full((n * k,), model.bos_id)
            for t in range(steps):
                _, state = model.step(prev, state)
                state = model.reorder(state, same)
                prev = feed[t]

    out: dict[str, Any] = {}
    with torch.inference_mode():
        checks = beam(model, src, lens).best(), greedy(model, src, lens).best()
    out["fixed_length_ok"] = all(len(h.tokens) == steps for hs in checks for h in hs)
    times = median_times(
        {
            "beam5": lambda: beam(model, src, lens),
            "floor_beam5": floor,
            "greedy": lambda: greedy(model, src, lens),
        },
        s.repeats,
    )

    cs, cl = src[: s.cache_batch], lens[: s.cache_batch]
    nc = cs.size(0)

    def incremental() -> Any:
        with torch.inference_mode():
            state = model.init_state(model.encode(cs, cl), 1)
            prev, toks = torch.full((nc,), model.bos_id), []
            for _ in range(s.cache_len):
                lp, state = model.step(prev, state)  # (B, V)
                prev = lp.argmax(-1)
                toks.append(prev)
            return torch.stack(toks, 1)  # (B, L)

    def recompute() -> Any:
        with torch.inference_mode():
            prefix = torch.full((nc, 1), model.bos_id)  # (B, t)
            for _ in range(s.cache_len):
                logits = model(cs, cl, prefix)  # (B, t, V)
                nxt = torch.log_softmax(logits[:, -1].float(), -1).argmax(-1)  # (B,)
                prefix = torch.cat([prefix, nxt[:, None]], 1)
            return prefix[:, 1:]

    out["cache_tokens_identical"] = bool(torch.equal(incremental(), recompute()))  # warm-up
    cache_fns = {"greedy_cached": incremental, "greedy_recompute": recompute}
    times.update(median_times(cache_fns, s.cache_repeats, warmup=False))
    out["times_s"] = times
    out["search_overhead_beam5"] = times["beam5"] / times["floor_beam5"]
    out["beam5_vs_greedy"] = times["beam5"] / times["greedy"]
    out["cache_speedup_50"] = times["greedy_recompute"] / times["greedy_cached"]
    return out


# --- lab vs Hugging Face ----------------------------------------------------------------------
def save_marian(s: Settings, path: Path) -> None:
    """A random Marian-architecture model of the bench size, saved with ``save_pretrained``.

    At random initialization the decoder barely listens to the source (every sentence gets
    nearly the same output) and EOS is never, or always, the best token. Two changes make the
    identity check meaningful without changing any cost: the decoder's cross-attention weights
    are scaled up (queries/keys x5, values/output x3), so outputs depend on the source, and the
    EOS output row is scaled x10, so the EOS logit varies from step to step and sentence to
    sentence (its bias is calibrated later, ``calibrate_eos``).
    """
    import torch
    import transformers

    torch.manual_seed(s.seed)
    config = transformers.MarianConfig(
        vocab_size=s.vocab,
        d_model=s.d_model,
        encoder_layers=s.layers,
        decoder_layers=s.layers,
        encoder_attention_heads=s.n_heads,
        decoder_attention_heads=s.n_heads,
        encoder_ffn_dim=s.d_ff,
        decoder_ffn_dim=s.d_ff,
        max_position_embeddings=512,
        pad_token_id=s.vocab - 1,
        eos_token_id=0,
        decoder_start_token_id=s.vocab - 1,
        forced_eos_token_id=None,
    )
    model = transformers.MarianMTModel(config).eval()
    with torch.no_grad():
        for layer in model.model.decoder.layers:
            attn = layer.encoder_attn
            for proj, scale in ((attn.q_proj, 5), (attn.k_proj, 5), (attn.v_proj, 3)):
                proj.weight.mul_(scale)
            attn.out_proj.weight.mul_(3)
        model.lm_head.weight[config.eos_token_id] *= 10  # sources never contain EOS here
    model.save_pretrained(path)


def hf_outputs(hf: Any, src: Any, lens: Any, pad: int, eos: int, **kw: Any) -> list[tuple]:
    """``generate`` on a right-padded seq2seq batch: generated tokens up to the first EOS."""
    import torch

    mask = (torch.arange(src.size(1))[None, :] < lens[:, None]).long()  # (B, S)
    with torch.inference_mode():
        seqs = hf.generate(
            input_ids=src,
            attention_mask=mask,
            do_sample=False,
            suppress_tokens=[pad],
            pad_token_id=pad,
            **kw,
        )
    out = []
    for row in seqs[:, 1:].tolist():  # drop the decoder start token
        out.append(tuple(row[: row.index(eos) + 1] if eos in row else row))
    return out


def calibrate_eos(lab_model: Any, src: Any, lens: Any, max_len: int, steps: int = 6) -> float:
    """EOS logit bias (bisection in [-4, 4], widened upwards if needed) with which lab greedy
    ends about half of the sentences with EOS before ``max_len``; returned, not applied."""
    import lab.search  # noqa: F401
    from lab.registry import SEARCHES

    greedy = SEARCHES.build("greedy", max_len_a=0, max_len_b=max_len)
    bias = lab_model.hf.final_logits_bias  # (1, V)
    base = float(bias[0, lab_model.eos_id])

    def ends_early(extra: float) -> bool:
        bias[0, lab_model.eos_id] = base + extra
        hyps = greedy(lab_model, src, lens).best()
        return sum(h.finished and h.length < max_len for h in hyps) * 2 >= len(hyps)

    lo, hi = -4.0, 4.0
    try:
        while not ends_early(hi) and hi < 32:
            lo, hi = hi, hi * 2
        for _ in range(steps):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if ends_early(mid) else (mid, hi)
    finally:
        bias[0, lab_model.eos_id] = base
    return hi


def bench_hf(s: Settings, workdir: Path) -> dict[str, Any]:
    """``lab_vs_hf_*``: lab searches through ``model=hf`` against ``generate``."""
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    import lab.search  # noqa: F401
    from lab.models.hf import HFModel
    from lab.registry import SEARCHES

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    path = workdir / "marian"
    save_marian(s, path)
    lab_model = HFModel(name_or_path=str(path))
    hf = transformers.MarianMTModel.from_pretrained(path).eval()  # plain SDPA, as users run it
    pad, eos = lab_model.pad_id, lab_model.eos_id
    src, lens = random_batch(s, s.vocab - 1, pad)
    k, steps = 5, s.hf_len
    out: dict[str, Any] = {"grouped_cross_attention": lab_model.grouped_cross}

    # timing: forced length, HF's default stop rule (early_stopping=False) and penalty (1.0)
    lab_beam = SEARCHES.build(
        "beam_lp",
        beam_size=k,
        penalty="average",
        alpha=1.0,
        stop_rule="heuristic",
        **fixed_length(steps, eos),
    )
    hf_kw = {
        "num_beams": k,
        "max_new_tokens": steps,
        "min_new_tokens": steps - 1,
        "early_stopping": False,
        "length_penalty": 1.0,
    }
    lab_fixed = [h.tokens for h in lab_beam(lab_model, src, lens).best()]
    hf_fixed = hf_outputs(hf, src, lens, pad, eos, **hf_kw)
    out["fixed_length_beam5_identical"] = _share(lab_fixed, hf_fixed)
    times = median_times(
        {
            "lab_beam5": lambda: lab_beam(lab_model, src, lens),
            "hf_beam5": lambda: hf_outputs(hf, src, lens, pad, eos, **hf_kw),
        },
        s.hf_repeats,
    )
    out["times_s"] = times
    out["lab_vs_hf_beam5_time_ratio"] = times["lab_beam5"] / times["hf_beam5"]

    # identity: natural stopping, EOS made likely enough that sentences end at various lengths
    limit = s.natural_max_len
    extra = calibrate_eos(lab_model, src, lens, limit)
    with torch.no_grad():
        for m in (lab_model.hf, hf):
            m.final_logits_bias[0, eos] += extra
    beam = SEARCHES.build(
        "beam_lp",
        beam_size=k,
        penalty="average",
        alpha=1.0,
        stop_rule="heuristic",
        max_len_a=0,
        max_len_b=limit,
    )
    greedy = SEARCHES.build("greedy", max_len_a=0, max_len_b=limit)
    lab_b = [h.tokens for h in beam(lab_model, src, lens).best()]
    lab_g = [h.tokens for h in greedy(lab_model, src, lens).best()]
    nat = {"max_new_tokens": limit, "early_stopping": False, "length_penalty": 1.0}
    hf_b = hf_outputs(hf, src, lens, pad, eos, num_beams=k, **nat)
    hf_g = hf_outputs(hf, src, lens, pad, eos, num_beams=1, max_new_tokens=limit)
    out["lab_vs_hf_beam5_identical"] = _share(lab_b, hf_b)
    out["lab_vs_hf_greedy_identical"] = _share(lab_g, hf_g)
    out["natural"] = {
        "eos_bias": extra,
        "max_new_tokens": limit,
        "beam5_lengths": sorted(len(t) for t in lab_b),
        "greedy_lengths": sorted(len(t) for t in lab_g),
        "beam5_finished_share": _mean([bool(t) and t[-1] == eos for t in lab_b]),
    }
    return out


def _share(a: list[tuple], b: list[tuple]) -> float:
    return _mean([x == y for x, y in zip(a, b, strict=True)])


def _mean(xs: list[bool]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


# --- peak memory ------------------------------------------------------------------------------
def _rss_kb(field: str) -> int | None:
    """``VmRSS``/``VmHWM`` of this process in kB (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def mem_child(args: dict[str, Any]) -> None:
    """Run in a fresh process: peak resident memory added by one beam search (printed as JSON).

    After building the model and inputs and a small warm-up search, the kernel's peak-RSS mark is
    reset (``/proc/self/clear_refs``); the figure is the new peak minus the resident memory just
    before the search. Without that file: ``ru_maxrss`` after minus before.
    """
    import resource

    import torch

    import lab.search  # noqa: F401
    from lab.registry import SEARCHES

    torch.set_num_threads(int(args["threads"]))
    s = replace(MODES[args["mode"]], mem_beams=tuple(args["mem_beams"]))
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    with torch.inference_mode():
        SEARCHES.build("beam", beam_size=2, max_len_a=0, max_len_b=2)(model, src[:2], lens[:2])
    fixed = fixed_length(s.mem_len, model.eos_id)
    search = SEARCHES.build("beam", beam_size=int(args["beam"]), **fixed)
    method = "ru_maxrss"
    try:
        Path("/proc/self/clear_refs").write_text("5")
        method = "VmHWM"
    except OSError:
        pass
    before = _rss_kb("VmRSS") if method == "VmHWM" else None
    max_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    search(model, src, lens)
    if method == "VmHWM" and before is not None and (peak := _rss_kb("VmHWM")) is not None:
        added = peak - before
    else:
        method = "ru_maxrss"
        added = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - max_before
    print(json.dumps({"added_mb": added / 1024, "method": method}))


def bench_memory(s: Settings, threads: int) -> dict[str, Any]:
    """Peak memory of beam 5 and beam 64 decoding, each in a fresh subprocess."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out: dict[str, Any] = {}
    for beam in s.mem_beams:
        args = {"mode": s.mode, "beam": beam, "threads": threads, "mem_beams": list(s.mem_beams)}
        call = f"mem_child(json.loads({json.dumps(args)!r}))"
        code = f"import json; from lab.bench import mem_child; {call}"
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900
        )
        if proc.returncode:
            err = proc.stderr.strip()[-300:]
            raise LabError(f"the memory measurement subprocess failed: {err}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"peak_mem_beam{beam}_mb"] = res["added_mb"]
        out["mem_method"] = res["method"]
    return out


# --- report ---------------------------------------------------------------------------------
def environment(threads: int) -> dict[str, Any]:
    import torch

    try:
        import transformers

        tf_version: str | None = transformers.__version__
    except ImportError:
        tf_version = None
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "transformers": tf_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "device": "cpu",
    }


def check_targets(res: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = res.get(key)
        ok = None if value is None else (value <= bound if op == "<=" else value >= bound)
        out[key] = {"target": f"{op} {bound:g}", "value": value, "pass": ok}
    return out


def render_md(res: dict[str, Any]) -> str:
    env, s = res["environment"], res["settings"]
    lines = [
        f"# lab bench ({res['mode']})",
        "",
        f"{env['date']}: torch {env['torch']}, transformers {env['transformers']}, "
        f"{env['torch_threads']} torch threads, {env['cpu_count']} CPUs, {env['platform']}.",
        "",
        "| figure | value | target | pass |",
        "|---|---|---|---|",
    ]
    for key, t in res["targets"].items():
        v = t["value"]
        val = "n/a" if v is None else f"{v:.3f}"
        mark = {True: "pass", False: "FAIL", None: "skipped"}[t["pass"]]
        lines.append(f"| `{key}` | {val} | {t['target']} | {mark} |")
    for key in ("peak_mem_beam5_mb", "peak_mem_beam64_mb"):
        v = res.get(key)
        lines.append(f"| `{key}` | {'n/a' if v is None else f'{v:.1f}'} | | |")
    lines += [
        "",
        "## Method",
        "",
        f"Lab-internal figures: the lab `transformer` with random weights (d_model {s['d_model']},"
        f" {s['n_heads']} heads, {s['layers']}+{s['layers']} layers, d_ff {s['d_ff']}, vocabulary"
        f" {s['vocab']}), a fixed batch of {s['batch']} random sentences of {s['src_min']}-"
        f"{s['src_max']} tokens (seed {s['seed']}), outputs forced to {s['out_len']} tokens"
        " (`min_length` processor with the limit at the same length). Wall times are medians of"
        f" {s['repeats']} interleaved repeats after one warm-up, under `torch.inference_mode`.",
        "",
        "- `search_overhead_beam5`: `beam` (k=5) / the floor: `encode` once, then per step one"
        " `step` on B*K rows and one `reorder` with a fixed index (the cache copy beam search"
        " cannot avoid).",
        "- `beam5_vs_greedy`: `beam` (k=5) / `greedy`, same fixed length.",
        f"- `cache_speedup_50`: greedy over {s['cache_len']} tokens on the first"
        f" {s['cache_batch']} sentences, recomputing the prefix with"
        " the teacher-forced `forward` every step (which re-runs the encoder) / `step` with the"
        " KV cache.",
        "- `lab_vs_hf_*`: a random `MarianMTModel` of the same size saved with"
        " `save_pretrained` (decoder cross-attention scaled up so that outputs depend on the"
        " source, EOS output row scaled x10 so that EOS is likely at some steps), decoded by the"
        " lab through `model=hf` and by `generate` (plain SDPA"
        " attention) on the same batch. Timing: beam 5, outputs forced to"
        f" {s['hf_len']} tokens, `early_stopping=False` / `stop_rule=heuristic`, "
        "`length_penalty=1.0` / `penalty=average alpha=1`. Identity: natural stopping up to"
        f" {s['natural_max_len']} new tokens, the EOS logit biased (bias found by"
        " bisection with which greedy ends half the sentences early), best output tokens compared.",
        f"- Peak memory: beam {s['mem_beams'][0]} and beam {s['mem_beams'][1]} on the lab model,"
        f" batch {s['batch']}, {s['mem_len']} tokens, each in a fresh subprocess: resident memory"
        " high-water mark during the search minus resident memory just before it"
        f" (method `{res.get('mem_method')}`: `VmHWM` after resetting it through"
        " `/proc/self/clear_refs`, else the `ru_maxrss` delta). Torch's CPU allocator returns"
        " large blocks to the OS, so RSS sees tensors that tracemalloc would not.",
        "",
        "Raw medians (s): "
        + ", ".join(f"`{k}` {v:.4f}" for k, v in sorted(res.get("times_s", {}).items())),
        "",
    ]
    if res.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in res["notes"]] + [""]
    return "\n".join(lines)


def run_bench(s: Settings, threads: int, workdir: Path) -> dict[str, Any]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_bench(s, threads, workdir)
    finally:
        torch.set_num_threads(before)


def _run_bench(s: Settings, threads: int, workdir: Path) -> dict[str, Any]:
    res: dict[str, Any] = {"mode": s.mode, "settings": asdict(s), "notes": []}
    res["environment"] = environment(threads)
    times: dict[str, float] = {}
    sections: dict[str, float] = {}  # wall time of each part of the bench, to keep modes in budget
    start = time.perf_counter()
    lab_res = bench_lab(s)
    sections["lab"] = time.perf_counter() - start
    times.update(lab_res.pop("times_s"))
    res.update(lab_res)
    try:
        import transformers  # noqa: F401

        have_hf = True
    except ImportError:
        have_hf = False
    start = time.perf_counter()
    if have_hf:
        hf_res = bench_hf(s, workdir)
        times.update(hf_res.pop("times_s"))
        res.update(hf_res)
    else:
        res["notes"].append("transformers is not installed: the lab_vs_hf figures are skipped.")
        for key in ("lab_vs_hf_beam5_time_ratio", "lab_vs_hf_beam5_identical"):
            res[key] = None
        res["lab_vs_hf_greedy_identical"] = None
    sections["hf"] = time.perf_counter() - start
    start = time.perf_counter()
    res.update(bench_memory(s, threads))
    sections["memory"] = time.perf_counter() - start
    res["times_s"] = times
    res["section_s"] = sections
    res["targets"] = check_targets(res)
    return res


def cmd_bench(argv: list[str]) -> None:
    """``lab bench [--quick] [--out DIR] [--threads N]``: write ``bench.json`` and ``bench.md``."""
    p = argparse.ArgumentParser(
        prog="lab bench",
        description="Speed of the lab's searches against the model's forward passes and "
        "Hugging Face generate (random models, fixed inputs).",
    )
    p.add_argument("--quick", action="store_true", help="smaller lengths and repeats (~1 min)")
    p.add_argument("--tiny", action="store_true", help="tiny shapes, seconds (for tests)")
    p.add_argument("--out", default="reports/bench", help="output directory (reports/bench/)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: stable timings on a shared machine)",
    )
    a = p.parse_args(argv)
    import tempfile

    s = MODES["tiny" if a.tiny else "quick" if a.quick else "full"]
    threads = a.threads
    if threads < 1:
        raise LabError(f"--threads must be >= 1, got {threads}.")
    out = Path(a.out)
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        res = run_bench(s, threads, Path(tmp))
    write_json(out / "bench.json", res)
    atomic_write_text(out / "bench.md", render_md(res))
    print(out / "bench.json")
    print(out / "bench.md")
