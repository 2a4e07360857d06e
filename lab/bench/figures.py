"""The figures of ``lab bench``: one table that the bench, its report and its tests all read.

Each figure is a key of ``bench.json`` with what it measures, the part of the bench that
measures it (``lab``, ``searches``, ``hf``, ``ct2`` or ``memory``), its target (if it has
one) and how the report prints it. Adding, renaming or retargeting a figure happens here and
nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One figure of ``bench.json``."""

    key: str
    section: str  # the part of the bench that measures it: "lab", "searches", "hf", "ct2", "memory"
    what: str
    target: tuple[str, float] | None = None  # ("<=" or ">=", bound); None: reported only
    fmt: str = ".3f"  # how bench.md prints the value


FIGURES: tuple[Figure, ...] = (
    Figure(
        "search_overhead_beam5",
        "lab",
        "lab beam search (k=5) / the floor: the model's forward passes alone for the same steps"
        " and shapes (encode once, then per step one step on B*K rows and one reorder with a"
        " fixed index, which copies the cache as beam search must): what the search itself"
        " costs, where beam 5 / greedy would measure the CPU's cost of 5x the rows",
        ("<=", 1.05),
    ),
    Figure(
        "cache_speedup_50",
        "lab",
        "greedy, 50 tokens, recomputing the prefix every step (teacher-forced forward, which"
        " re-runs the encoder too) / incremental step with the KV cache",
        (">=", 3.0),
    ),
    Figure(
        "sample_overhead_n16",
        "searches",
        "sample, 16 samples per sentence / the forward passes alone of the same 16 rows per"
        " sentence (encode once, one step per token, no reorder), outputs of a fixed length",
        ("<=", 1.15),
    ),
    Figure(
        "sample_apart_layout_n16",
        "searches",
        "the forward passes of sample_overhead_n16's floor with each row its own batch entry"
        " (each with its own copy of its sentence's cross-attention keys and values, as sample"
        " decodes so that ended rows leave at once) / grouped: the layout's part of the overhead",
    ),
    Figure(
        "stochastic_beam_vs_beam10",
        "searches",
        "stochastic_beam k=10 / beam k=10 on the same sentences, outputs of a fixed length",
        ("<=", 1.3),
    ),
    Figure(
        "diverse_beam_vs_beam10",
        "searches",
        "diverse_beam k=10 (10 groups of one) / beam k=10, outputs of a fixed length",
    ),
    Figure(
        "beam10_overhead",
        "searches",
        "beam k=10 / its forward passes alone (one step and one trivial reorder per token)",
    ),
    Figure(
        "mbr_selection_share",
        "searches",
        "mbr over 32 samples (fast_chrf): selection seconds / generation seconds, median",
    ),
    Figure(
        "exact_expansions_per_s",
        "searches",
        "exact under a node budget on the first sentences: prefixes expanded per second",
        fmt=".0f",
    ),
    Figure(
        "exact_vs_beam4",
        "searches",
        "exact under the node budget / beam k=4 on the same sentences and length limit",
    ),
    Figure(
        "lab_vs_hf_beam5_time_ratio",
        "hf",
        "lab beam 5 through model=hf / generate(num_beams=5) on the same Marian-architecture"
        " model, same inputs, length limits, stop rule and penalty",
        ("<=", 0.7),
    ),
    Figure(
        "lab_vs_hf_beam5_identical",
        "hf",
        "share of sentences whose best beam-5 output tokens are identical, natural stopping",
        (">=", 0.99),
    ),
    Figure(
        "lab_vs_hf_greedy_identical",
        "hf",
        "share of sentences whose greedy output tokens are identical, natural stopping",
        (">=", 1.0),
    ),
    Figure(
        "lab_vs_ct2_beam5_time_ratio",
        "ct2",
        "lab beam 5 / CTranslate2 translate_batch(beam_size=5) on the same lab Transformer"
        " converted weight by weight, same inputs, fixed length and thread count, float32"
        " (goal 1.2)",
        ("<=", 1.3),
    ),
    Figure(
        "lab_vs_ct2_greedy_time_ratio",
        "ct2",
        "lab greedy / CTranslate2 greedy (beam_size=1), same model, inputs and length",
        ("<=", 1.4),
    ),
    Figure(
        "lab_vs_ct2_greedy_identical",
        "ct2",
        "share of sentences whose greedy output tokens are identical in the lab and CTranslate2",
        (">=", 1.0),
    ),
    Figure(
        "lab_int8_vs_ct2_int8_beam5_time_ratio",
        "ct2",
        "lab beam 5 with model.quantize=int8 (dynamic int8 linear layers) / CTranslate2 beam 5"
        " with int8 weights and compute type, same model, inputs and length",
    ),
    Figure(
        "int8_speedup_beam5",
        "ct2",
        "lab beam 5 float32 / lab beam 5 with model.quantize=int8 (the int8 lever)",
    ),
    Figure(
        "peak_mem_beam5_mb",
        "memory",
        "peak resident memory (MB) added by one beam-5 search, in a fresh subprocess",
        fmt=".1f",
    ),
    Figure(
        "peak_mem_beam64_mb",
        "memory",
        "peak resident memory (MB) added by one beam-64 search, in a fresh subprocess",
        fmt=".1f",
    ),
)

KEYS: tuple[str, ...] = tuple(f.key for f in FIGURES)
TARGETS: dict[str, tuple[str, float]] = {f.key: f.target for f in FIGURES if f.target}


def section_keys(section: str) -> list[str]:
    """The keys of the figures that ``section`` measures (to mark them skipped together)."""
    return [f.key for f in FIGURES if f.section == section]


def check_targets(res: dict[str, Any]) -> dict[str, Any]:
    """Each targeted figure of ``res``: its target, value and pass (None when not measured)."""
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = res.get(key)
        ok = None if value is None else (value <= bound if op == "<=" else value >= bound)
        out[key] = {"target": f"{op} {bound:g}", "value": value, "pass": ok}
    return out
