"""The ``lab_vs_hf_*`` figures of ``lab bench``: lab searches through ``model=hf`` against
Hugging Face ``generate`` on the same random Marian-architecture model and inputs.

transformers is the optional ``hf`` extra: it is imported only here, when these figures are
measured (``lab bench`` skips them with a note when it is missing, see ``available``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from lab.bench.common import Settings, fixed_length, median_times, random_batch
from lab.errors import LabError
from lab.models.hf import HFModel
from lab.registry import SEARCHES


def available() -> bool:
    """Whether transformers is installed (without importing it)."""
    return importlib.util.find_spec("transformers") is not None


def _transformers() -> ModuleType:
    """transformers, imported on first use: it is optional, and slow to import."""
    try:
        import transformers
    except ImportError:
        raise LabError(
            "the lab_vs_hf figures need transformers; install it with pip install -e '.[hf]'."
        ) from None
    return transformers


def save_marian(s: Settings, path: Path) -> None:
    """A random Marian-architecture model of the bench size, saved with ``save_pretrained``.

    At random initialization the decoder barely listens to the source (every sentence gets
    nearly the same output) and EOS is never, or always, the best token. Two changes make the
    identity check meaningful without changing any cost: the decoder's cross-attention weights
    are scaled up (queries/keys x5, values/output x3), so outputs depend on the source, and the
    EOS output row is scaled x10, so the EOS logit varies from step to step and sentence to
    sentence (its bias is calibrated later, ``calibrate_eos``).
    """
    transformers = _transformers()
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
    steps = torch.arange(src.size(1), device=src.device)  # the mask on the batch's device
    mask = (steps[None, :] < lens.to(src.device)[:, None]).long()  # (B, S)
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
    """``lab_vs_hf_*``: lab searches through ``model=hf`` against ``generate``; the raw medians
    under ``times_s``. The model is saved under ``workdir``."""
    transformers = _transformers()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    path = workdir / "marian"
    save_marian(s, path)
    lab_model = HFModel(name_or_path=str(path))
    hf = transformers.MarianMTModel.from_pretrained(path).eval()  # plain SDPA, as users run it
    src, lens = random_batch(s, s.vocab - 1, lab_model.pad_id)
    out: dict[str, Any] = {"grouped_cross_attention": lab_model.grouped_cross}
    out.update(_timing(s, lab_model, hf, src, lens))
    out.update(_identity(s, lab_model, hf, src, lens))
    return out


def _timing(s: Settings, lab_model: Any, hf: Any, src: Any, lens: Any) -> dict[str, Any]:
    """Beam 5 with outputs forced to ``s.hf_len`` tokens, HF's default stop rule
    (``early_stopping=False``) and penalty (1.0) on both sides."""
    pad, eos, k, steps = lab_model.pad_id, lab_model.eos_id, 5, s.hf_len
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
    out: dict[str, Any] = {"fixed_length_beam5_identical": _share(lab_fixed, hf_fixed)}
    times = median_times(
        {
            "lab_beam5": lambda: lab_beam(lab_model, src, lens),
            "hf_beam5": lambda: hf_outputs(hf, src, lens, pad, eos, **hf_kw),
        },
        s.hf_repeats,
    )
    out["times_s"] = times
    out["lab_vs_hf_beam5_time_ratio"] = times["lab_beam5"] / times["hf_beam5"]
    return out


def _identity(s: Settings, lab_model: Any, hf: Any, src: Any, lens: Any) -> dict[str, Any]:
    """Natural stopping, with EOS made likely enough (the same bias on both models) that
    sentences end at various lengths: the share of identical best outputs."""
    pad, eos, k, limit = lab_model.pad_id, lab_model.eos_id, 5, s.natural_max_len
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
    return {
        "lab_vs_hf_beam5_identical": _share(lab_b, hf_b),
        "lab_vs_hf_greedy_identical": _share(lab_g, hf_g),
        "natural": {
            "eos_bias": extra,
            "max_new_tokens": limit,
            "beam5_lengths": sorted(len(t) for t in lab_b),
            "greedy_lengths": sorted(len(t) for t in lab_g),
            "beam5_finished_share": _mean([bool(t) and t[-1] == eos for t in lab_b]),
        },
    }


def _share(a: list[tuple], b: list[tuple]) -> float:
    """The share of positions where ``a`` and ``b`` hold the same output."""
    return _mean([x == y for x, y in zip(a, b, strict=True)])


def _mean(xs: list[bool]) -> float:
    return sum(xs) / len(xs) if xs else 0.0
