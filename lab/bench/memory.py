"""The peak-memory figures of ``lab bench``, measured in a fresh process each::

    python -m lab.bench.memory --mode quick --beam 64 --threads 1 --mem-beams 5,64

prints one JSON line, ``{"added_mb": ..., "method": ...}``: the peak resident memory added by
one beam search on the lab Transformer of that mode. A fresh process, because the peak-RSS mark
of a process that has already run other figures says nothing about one search.
``lab.bench.bench_memory`` runs it; this module is never imported by the bench itself (running
a module that is already imported would warn).
"""

from __future__ import annotations

import argparse
import json
import resource
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from lab.bench.common import MODES, build_transformer, fixed_length, random_batch
from lab.registry import SEARCHES


def _rss_kb(field: str) -> int | None:
    """``VmRSS``/``VmHWM`` of this process in kB (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(mode: str, beam: int, threads: int, mem_beams: tuple[int, int]) -> dict[str, object]:
    """Peak resident memory (MB) added by one beam search of width ``beam``, and the method.

    After building the model and inputs and a small warm-up search, the kernel's peak-RSS mark is
    reset (``/proc/self/clear_refs``); the figure is the new peak minus the resident memory just
    before the search. Without that file: ``ru_maxrss`` after minus before.
    """
    torch.set_num_threads(threads)
    s = replace(MODES[mode], mem_beams=mem_beams)
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    with torch.inference_mode():
        SEARCHES.build("beam", beam_size=2, max_len_a=0, max_len_b=2)(model, src[:2], lens[:2])
    search = SEARCHES.build("beam", beam_size=beam, **fixed_length(s.mem_len, model.eos_id))
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
    return {"added_mb": added / 1024, "method": method}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the child's arguments, measure, print the result as one JSON line."""
    p = argparse.ArgumentParser(prog="python -m lab.bench.memory", description=__doc__)
    p.add_argument("--mode", choices=sorted(MODES), required=True)
    p.add_argument("--beam", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mem-beams", default="5,64", help="the mode's two beam widths, a,b")
    a = p.parse_args(argv)
    first, second = (int(x) for x in a.mem_beams.split(","))
    print(json.dumps(measure(a.mode, a.beam, a.threads, (first, second))))


if __name__ == "__main__":
    main()
