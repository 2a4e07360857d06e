"""Paired tables that give an interval to comparisons first reported as single runs: the
GNMT length penalty over the Transformer's seeds, sampling and MBR against beam 5 (seed 0),
diverse beam's strengths against beam 10, and every beam against the exact mode per seed."""

from __future__ import annotations

from lab.rebuild.table_spec import TableSpec

BEAM5 = "search=beam,search.processors=[],search.candidates.num_samples=-,search.candidates.name=-"
EXACT = "search=exact,search.penalty=none,search.beam_size=-"  # the exact run of each seed


def exact_paired() -> TableSpec:
    """Exact search (the model's mode) against beam 1, 4 and 64 of the beam-curse sweep, with
    and without normalization, on each of the three seeds: how much BLEU the mode loses."""
    runs = (
        "search_errors/runs/exact/search=exact,train.label_smoothing=0.1",  # seed 0
        "search_errors/runs/exact_seeds",  # seeds 1 and 2
        "beam_curse/seeds",
    )
    keys = {"rows": ("search", "search.penalty", "search.beam_size"), "cols": ("seed",)}
    return TableSpec(
        runs,
        "search_errors/seeds",
        {"metric": "bleu", "baseline": EXACT, "name": "exact_paired", **keys},
    )


def length_penalty_seeds() -> list[TableSpec]:
    """GNMT-penalized beam 5 (alpha 0.6 and 1.0) against plain beam 5, per seed, and pooled."""
    runs = ("multi30k/seeds", "multi30k/length_penalty/runs")
    keys = {"rows": ("search", "search.alpha"), "cols": ("seed",), "metric": "bleu"}
    return [
        TableSpec(
            runs,
            "multi30k",
            {"baseline": "search=beam,search.alpha=-", "name": "multi30k_lp_paired", **keys},
        ),
        TableSpec(
            "multi30k/length_penalty/runs",
            "multi30k",
            {
                "metric": "bleu",
                "rows": ("search.alpha",),
                "cols": ("model",),
                "name": "multi30k_lp",
            },
        ),
    ]


def rnn_paired(model: str) -> TableSpec:
    """An RNN's (``gru``, ``lstm``) beam 5 and GNMT-penalized beam 5 (alpha 0.6, 1.0) against
    its greedy, on the same sentences (one trained model: the intervals are over sentences,
    not seeds)."""
    keys = {"rows": ("search", "search.alpha"), "cols": ("model",), "metric": "bleu"}
    return TableSpec(
        f"multi30k/{model}/runs",
        "multi30k",
        {"baseline": "search=greedy,search.alpha=-", "name": f"multi30k_{model}_paired", **keys},
    )


def sampling_paired() -> list[TableSpec]:
    """Seed 0's one-output searches (sampling with each truncation, MBR over 8-64 samples and
    over beam's 5-best) against beam 5, and diverse beam's strengths against beam 10's top
    entry, on the same sentences (sacreBLEU's paired bootstrap, chrF and BLEU)."""
    seed0 = "sampling_mbr/seeds/{}seed=0"
    one = (
        "sampling_mbr/paired/runs/one",
        seed0.format("search=beam,"),
        seed0.format("search=greedy,"),
        seed0.format("search.candidates.num_samples=16,search=mbr,"),
    )
    lists = (
        "sampling_mbr/paired/runs/lists",
        seed0.format("search.beam_size=10,search.nbest=10,search=beam,"),
        seed0.format("search.diversity_strength=1.0,search.nbest=10,search=diverse_beam,"),
    )
    one_rows = (
        "search",
        "search.processors",
        "search.candidates.num_samples",
        "search.candidates.name",
    )
    list_rows = ("search", "search.diversity_strength")
    return [
        TableSpec(
            one,
            "sampling_mbr/paired",
            {
                "metric": "chrf",
                "rows": one_rows,
                "cols": ("seed",),
                "baseline": BEAM5,
                "name": "vs_beam5",
            },
        ),
        TableSpec(
            lists,
            "sampling_mbr/paired",
            {
                "metric": "chrf",
                "rows": list_rows,
                "cols": ("seed",),
                "baseline": "search=beam,search.diversity_strength=-",
                "name": "vs_beam10",
            },
        ),
    ]
