"""One row of ``lab bench --device``: at one batch size and one precision, the lab's beam 5
and greedy against CTranslate2 (the bench Transformer converted weight by weight) and
against Hugging Face ``generate`` (a random Marian of the same size), all on the device.

Outputs are forced to ``s.hf_len`` tokens on every side (``lab.bench.ct2_speed`` says how),
so every timing does the same number of steps. Precision: the lab and ``generate`` decode
under the same autocast (``lab.precision``); CTranslate2 with its ``compute_type`` of the
same name (``float32``, ``bfloat16``, ``float16``). Identity is the share of sentences whose
output tokens are the same: lab vs CTranslate2, lab vs ``generate``, and lab in this precision
vs lab in fp32 (with the largest log-prob gap where tokens agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lab.bench.common import fixed_length, median_times
from lab.bench.hf_speed import hf_outputs
from lab.ct2.convert import to_ids, to_tokens
from lab.precision import decoding_precision
from lab.registry import SEARCHES

CT2_TYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def synced(fn: Callable[[], Any], device: torch.device) -> Callable[[], Any]:
    """``fn`` then a CUDA synchronize (on a CUDA device), so a wall time holds the queued work."""
    if device.type != "cuda":
        return fn

    def call() -> Any:
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return call


def share(a: list, b: list) -> float:
    """The share of positions where ``a`` and ``b`` hold the same output."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a else 0.0


def lab_outputs(search: Any, model: Any, src: Any, lens: Any, precision: str) -> list[tuple]:
    """``(tokens, logprob)`` of each sentence's best output, decoded in ``precision``."""
    with decoding_precision(precision, src.device), torch.inference_mode():
        return [(h.tokens, h.logprob) for h in search(model, src, lens).best()]


def against_fp32(got: list[tuple], ref: list[tuple], name: str) -> dict[str, Any]:
    """Tokens identical to fp32's and the largest log-prob gap where they are."""
    gaps = [abs(a[1] - b[1]) for a, b in zip(got, ref, strict=True) if a[0] == b[0]]
    return {
        f"{name}_identical_to_fp32": share([g[0] for g in got], [r[0] for r in ref]),
        f"{name}_max_logprob_gap_vs_fp32": max(gaps) if gaps else None,
    }


def ct2_row(s: Any, lab: dict[str, Any], translator: Any, src: Any, lens: Any) -> dict[str, Any]:
    """CTranslate2 beam 5 and greedy against the lab's (``lab``: searches, model, outputs)."""
    rows = [to_tokens(r[: int(n)].tolist()) for r, n in zip(src.cpu(), lens.cpu(), strict=True)]
    kw = {
        "max_decoding_length": s.hf_len,
        "min_decoding_length": s.hf_len - 1,
        "suppress_sequences": [["<pad>"], ["<s>"]],
        "max_batch_size": len(rows),
    }

    def ct2(k: int) -> list:
        return translator.translate_batch(rows, beam_size=k, **kw)

    eos = lab["model"].eos_id
    out: dict[str, Any] = {}
    for name, k in (("greedy", 1), ("beam5", 5)):
        theirs = [to_ids(r.hypotheses[0]) for r in ct2(k)]
        ours = [tuple(t for t in toks if t != eos) for toks, _ in lab[name]]
        out[f"lab_vs_ct2_{name}_identical"] = share(ours, theirs)
    times = median_times({"ct2_beam5": lambda: ct2(5), "ct2_greedy": lambda: ct2(1)}, s.repeats)
    out["ct2_beam5_s"], out["ct2_greedy_s"] = times["ct2_beam5"], times["ct2_greedy"]
    out["lab_vs_ct2_beam5_time_ratio"] = lab["times"]["lab_beam5"] / times["ct2_beam5"]
    out["lab_vs_ct2_greedy_time_ratio"] = lab["times"]["lab_greedy"] / times["ct2_greedy"]
    return out


def lab_row(s: Any, model: Any, src: Any, lens: Any, precision: str) -> dict[str, Any]:
    """The lab's fixed-length beam 5 and greedy on the bench Transformer: outputs and times."""
    fixed = fixed_length(s.hf_len, model.eos_id)
    searches = {
        "beam5": SEARCHES.build("beam", beam_size=5, **fixed),
        "greedy": SEARCHES.build("greedy", **fixed),
    }
    out: dict[str, Any] = {"model": model}
    for name, search in searches.items():
        out[name] = lab_outputs(search, model, src, lens, precision)

    def timed(search: Any) -> Callable[[], Any]:
        def run() -> Any:
            with decoding_precision(precision, src.device), torch.inference_mode():
                return search(model, src, lens)

        return synced(run, src.device)

    fns = {f"lab_{name}": timed(search) for name, search in searches.items()}
    out["times"] = median_times(fns, s.repeats)
    return out


def hf_row(s: Any, lab_hf: Any, hf: Any, src: Any, lens: Any, precision: str) -> dict[str, Any]:
    """The lab's beam 5 and greedy through ``model=hf`` against ``generate``, same autocast."""
    pad, eos, dev = lab_hf.pad_id, lab_hf.eos_id, src.device
    fixed = fixed_length(s.hf_len, eos)
    beam = SEARCHES.build("beam_lp", beam_size=5, penalty="average", alpha=1.0,
                          stop_rule="heuristic", **fixed)  # fmt: skip
    greedy = SEARCHES.build("greedy", **fixed)
    hf_kw = {"max_new_tokens": s.hf_len, "min_new_tokens": s.hf_len - 1, "length_penalty": 1.0}

    def generate(k: int) -> list[tuple]:
        with decoding_precision(precision, dev):
            return hf_outputs(hf, src, lens, pad, eos, num_beams=k, early_stopping=False, **hf_kw)

    out: dict[str, Any] = {}
    for name, search, k in (("beam5", beam, 5), ("greedy", greedy, 1)):
        ours = [t for t, _ in lab_outputs(search, lab_hf, src, lens, precision)]
        out[f"lab_vs_hf_{name}_identical"] = share(ours, generate(k))

    def lab_beam() -> Any:
        with decoding_precision(precision, dev), torch.inference_mode():
            return beam(lab_hf, src, lens)

    fns = {"lab_hf_beam5": synced(lab_beam, dev), "hf_beam5": synced(lambda: generate(5), dev)}
    times = median_times(fns, s.repeats)
    out["lab_hf_beam5_s"], out["hf_beam5_s"] = times["lab_hf_beam5"], times["hf_beam5"]
    out["lab_vs_hf_beam5_time_ratio"] = times["lab_hf_beam5"] / times["hf_beam5"]
    return out
