"""What every part of ``lab bench`` shares: the sizes of each mode, interleaved median timing,
the fixed random inputs, the lab model under test and the machine's description."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

import lab.models  # noqa: F401  (registration)
import lab.search  # noqa: F401  (registration)
from lab.registry import MODELS


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
    search_batch: int = 16  # sentences of the search figures (lab.bench.searches)
    exact_budget: int = 500  # node expansions per sentence of the exact figure


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
        search_batch=4,
        exact_budget=300,
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
        search_batch=2,
        exact_budget=50,
    ),
}


def round_times(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Wall times (s) of each function in each of ``repeats`` rounds: one warm-up call each
    (unless the caller already ran them), then rounds in which every function runs once (the
    order rotated round by round), so a change in load hits all of them."""
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
    return times


def median_times(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: bool = True
) -> dict[str, float]:
    """The median over ``round_times``' rounds of each function's wall time (s)."""
    return {n: statistics.median(v) for n, v in round_times(fns, repeats, warmup).items()}


def paired_ratio(slow: list[float], fast: list[float]) -> float:
    """The median over rounds of ``slow / fast`` measured in the same round: less sensitive to
    a machine whose speed drifts than the ratio of two medians."""
    return statistics.median(a / b for a, b in zip(slow, fast, strict=True))


def random_batch(
    s: Settings, vocab: int, pad: int, low: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed batch of ``s.batch`` random sentences (ids in ``[low, vocab)``), right-padded."""
    g = torch.Generator().manual_seed(s.seed)
    lengths = torch.randint(s.src_min, s.src_max + 1, (s.batch,), generator=g)  # (B,)
    seqs = [torch.randint(low, vocab, (int(n),), generator=g) for n in lengths]
    return pad_sequence(seqs, batch_first=True, padding_value=pad), lengths


def build_transformer(s: Settings) -> Any:
    """The lab ``transformer`` of the mode's size with random weights (seeded), in eval mode."""
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


def transformers_version() -> str | None:
    """The installed transformers version (the optional ``hf`` extra), or None; no import."""
    try:
        return importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's name as the OS reports it (``/proc/cpuinfo``'s model name on Linux), since a
    kernel's speed, and which library's GEMM wins, depends on it; the platform's processor
    string elsewhere, or "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(threads: int) -> dict[str, Any]:
    """The machine and library versions a result was measured on."""
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "transformers": transformers_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "device": "cpu",
    }


def write_json(result: dict[str, Any], path: Path | None) -> None:
    """A bench script's result as sorted, indented JSON: to ``path``, or stdout without one."""
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if path is None:
        print(text, end="")
    else:
        path.write_text(text)
