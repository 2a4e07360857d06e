"""``lab bench --device cuda``: the lab's searches on an accelerator, in each precision, against
CTranslate2 and Hugging Face ``generate`` on the same device.

For each batch size (32 and 128; ``--tiny``: 2 and 4) and each precision the device runs
(``fp32``, ``bf16``, ``fp16``; on CPU ``fp32`` and ``bf16``), one row (``device_compare``):
lab beam 5 and greedy times, CTranslate2's, ``generate``'s, their ratios, the identical-output
rates, and tokens identical to fp32 with the largest log-prob gap. Then, at the bench batch in
fp32: ``search_overhead_beam5`` (beam 5 / the model's forward passes alone), ``sample_n16``
(16 samples per sentence / the forward passes of 16 rows per sentence), ``exact`` (depth-first
exact search on a few sentences under a node budget: time, nodes, share proved) and
``rng_cost`` (``lab.bench.rng_cost``). Written as ``device_bench.json`` and ``device_bench.md``
with the device name and the torch, CUDA, cuDNN, transformers and CTranslate2 versions.

``--device cpu`` runs the same code on the CPU (the tests use it with ``--tiny``).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from lab.bench import ct2_speed, hf_speed
from lab.bench.common import Settings, build_transformer, environment, fixed_length, median_times
from lab.bench.common import random_batch as _random_batch
from lab.bench.device_compare import CT2_TYPES, against_fp32, ct2_row, hf_row, lab_row, synced
from lab.bench.render import render_device_md
from lab.bench.rng_cost import rng_cost
from lab.ct2.convert import convert
from lab.errors import LabError
from lab.io import atomic_write_text
from lab.registry import SEARCHES
from lab.results import write_json


def check_device(name: str) -> torch.device:
    """The bench device, or one line saying why it cannot run here."""
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise LabError(f"lab bench --device {name}: choose cpu or cuda.")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LabError(
            f"lab bench --device {name}: torch sees no CUDA device; run it on a GPU machine "
            "(reports/bench/gpu_check.sh) or use --device cpu."
        )
    return torch.device(name)


def precisions(device: torch.device) -> list[str]:
    """The precisions to bench: fp16 only on CUDA, bf16 where the device supports it."""
    if device.type != "cuda":
        return ["fp32", "bf16"]
    return ["fp32", *(["bf16"] if torch.cuda.is_bf16_supported() else []), "fp16"]


def device_environment(device: torch.device, threads: int) -> dict[str, Any]:
    """``environment`` plus the accelerator: name, memory, CUDA/cuDNN, CTranslate2."""
    env = environment(threads) | {"device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {
            "device_name": props.name,
            "device_memory_gb": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    env["ctranslate2"] = ct2_speed.ctranslate2().__version__ if ct2_speed.available() else None
    return env


def batch_on(s: Settings, vocab: int, pad: int, device: torch.device) -> tuple[Any, Any]:
    src, lens = _random_batch(s, vocab, pad)
    return src.to(device), lens.to(device)


def floor(model: Any, src: Any, lens: Any, rows: int, steps: int) -> Any:
    """The forward passes alone of ``rows`` rows per sentence for ``steps`` steps."""
    dev, n = src.device, src.size(0)
    feed = torch.randint(4, model.tgt_vocab_size, (steps, n * rows), device=dev)  # (L, B*R)
    same = torch.arange(n * rows, device=dev)  # (B*R,) the trivial reorder

    def run() -> None:
        with torch.inference_mode():
            state = model.init_state(model.encode(src, lens), rows)
            prev = torch.full((n * rows,), model.bos_id, device=dev)
            for t in range(steps):
                _, state = model.step(prev, state)
                state = model.reorder(state, same)
                prev = feed[t]

    return synced(run, dev)


def lab_internal(s: Settings, model: Any, device: torch.device) -> dict[str, Any]:
    """``search_overhead_beam5``, ``sample_n16`` and ``exact`` in fp32 at the bench batch."""
    src, lens = batch_on(s, s.vocab, model.pad_id, device)
    fixed = fixed_length(s.out_len, model.eos_id)
    beam = SEARCHES.build("beam", beam_size=5, **fixed)
    sample = SEARCHES.build("sample", num_samples=16, **fixed)

    fns = {
        "beam5": timed(beam, model, src, lens),
        "floor_beam5": floor(model, src, lens, 5, s.out_len),
        "sample_n16": timed(sample, model, src, lens),
        "floor_sample_n16": floor(model, src, lens, 16, s.out_len),
    }
    times = median_times(fns, s.repeats)
    few = min(4, src.size(0))
    budget = 50 if s.mode == "tiny" else 500
    exact = SEARCHES.build("exact", max_len_a=0, max_len_b=s.out_len, budget=budget)
    exact_s = median_times({"exact": timed(exact, model, src[:few], lens[:few])}, 1)
    out = timed(exact, model, src[:few], lens[:few])()
    return {
        "times_s": times,
        "search_overhead_beam5": times["beam5"] / times["floor_beam5"],
        "sample_n16_s": times["sample_n16"],
        "sample_n16_overhead": times["sample_n16"] / times["floor_sample_n16"],
        "exact": {
            "sentences": few,
            "budget": budget,
            "seconds": exact_s["exact"],
            "expanded": out.cost.expanded,
            "proved_share": sum(bool(h.proved_optimal) for h in out.best()) / few,
        },
    }


def timed(search: Any, model: Any, src: Any, lens: Any) -> Any:
    """A call of ``search`` on the batch, under inference mode, synchronized."""

    def run() -> Any:
        with torch.inference_mode():
            return search(model, src, lens)

    return synced(run, src.device)


def compare_rows(s: Settings, device: torch.device, batches: tuple[int, ...], workdir: Path,
                 threads: int) -> tuple[list[dict[str, Any]], list[str]]:  # fmt: skip
    """One ``device_compare`` row per batch size and precision, and notes on what was left out."""
    model = build_transformer(s).to(device)
    notes: list[str] = []
    translators = ct2_translators(model, device, workdir, threads, notes)
    hf = hf_models(s, device, workdir, notes)
    rows: list[dict[str, Any]] = []
    for b in batches:
        sb = replace(s, batch=b)
        src, lens = batch_on(sb, s.vocab, model.pad_id, device)
        ref: dict[str, Any] = {}
        for precision in precisions(device):
            lab = lab_row(sb, model, src, lens, precision)
            ref = ref or lab  # fp32 comes first
            row = {"batch": b, "precision": precision}
            row |= {f"lab_{k}_s": v for k, v in ((n[4:], t) for n, t in lab["times"].items())}
            row |= against_fp32(lab["beam5"], ref["beam5"], "beam5")
            row |= against_fp32(lab["greedy"], ref["greedy"], "greedy")
            if precision in translators:
                row |= ct2_row(sb, lab, translators[precision], src, lens)
            if hf is not None:
                hsrc, hlens = batch_on(sb, s.vocab - 1, hf[0].pad_id, device)
                row |= hf_row(sb, hf[0], hf[1], hsrc, hlens, precision)
            rows.append(row)
    return rows, notes


def ct2_translators(model: Any, device: torch.device, workdir: Path, threads: int,
                    notes: list[str]) -> dict[str, Any]:  # fmt: skip
    """A CTranslate2 translator of the bench model per precision the device supports."""
    if not ct2_speed.available():
        notes.append("ctranslate2 is not installed: the lab_vs_ct2 columns are skipped.")
        return {}
    ct2 = ct2_speed.ctranslate2()
    supported = set(ct2.get_supported_compute_types(device.type))
    path = convert(model.cpu(), workdir / "ct2", None)
    model.to(device)
    out = {}
    for precision in precisions(device):
        if CT2_TYPES[precision] not in supported:
            notes.append(f"CTranslate2 has no {CT2_TYPES[precision]} on this {device.type}.")
            continue
        out[precision] = ct2.Translator(
            str(path), device=device.type, device_index=device.index or 0,
            compute_type=CT2_TYPES[precision], intra_threads=threads, inter_threads=1,
        )  # fmt: skip
    return out


def hf_models(s: Settings, device: torch.device, workdir: Path, notes: list[str]) -> Any:
    """The lab's ``model=hf`` and ``MarianMTModel`` of the bench Marian on ``device``."""
    if not hf_speed.available():
        notes.append("transformers is not installed: the lab_vs_hf columns are skipped.")
        return None
    transformers = hf_speed._transformers()
    transformers.utils.logging.set_verbosity_error()
    path = workdir / "marian"
    hf_speed.save_marian(s, path)
    lab_hf = hf_speed.HFModel(name_or_path=str(path)).to(device)
    return lab_hf, transformers.MarianMTModel.from_pretrained(path).eval().to(device)


def run_device_bench(s: Settings, device: torch.device, threads: int, out: Path) -> dict:
    """Every row and figure of ``lab bench --device``; writes the JSON and markdown to ``out``."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batches = (2, 4) if s.mode == "tiny" else (32, 128)
        res: dict[str, Any] = {"mode": s.mode, "settings": asdict(s), "batches": list(batches)}
        res["environment"] = device_environment(device, threads)
        res["precisions"] = precisions(device)
        with tempfile.TemporaryDirectory(prefix="lab-bench-device-") as tmp:
            res["rows"], res["notes"] = compare_rows(s, device, batches, Path(tmp), threads)
        res |= lab_internal(s, build_transformer(s).to(device), device)
        res["rng_cost"] = rng_cost(s, device)
    finally:
        torch.set_num_threads(before)
    write_json(out / "device_bench.json", res)
    atomic_write_text(out / "device_bench.md", render_device_md(res))
    return res
