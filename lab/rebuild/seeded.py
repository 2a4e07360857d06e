"""The tables of the sections measured over seeds and paired against a baseline run:
sampling and MBR over seeds, constraints (terminology, prefix, coverage), the trie processor
and the toolkit presets. Each entry is the ``lab report`` call its section of reports/README.md
describes, on the committed summaries."""

from __future__ import annotations

from lab.rebuild.table_spec import TableSpec

SAMPLING_SEEDS = ("chrf", "bleu", "distinct_4", "len_ratio", "decode_seconds")
SEEDS = "multi30k/seeds"  # the plain greedy and beam runs of the Transformer's three seeds
TERMS = ("bleu", "len_ratio", "constraints_met", "phrases_met", "decode_seconds")
PREFIX = ("bleu", "bleu_rest", "chrf_rest", "len_ratio")
COVERAGE = ("bleu", "len_ratio", "mean_logprob", "decode_seconds")


def _pooled(
    runs: str | tuple[str, ...],
    out: str,
    metrics: tuple[str, ...],
    rows: tuple[str, ...],
    cols: tuple[str, ...],
    prefix: str,
) -> list[TableSpec]:
    """One table per metric of ``runs``' runs pooled over seeds (mean ± std, n)."""
    return [
        TableSpec(runs, out, {"metric": m, "rows": rows, "cols": cols, "name": f"{prefix}_{m}"})
        for m in metrics
    ]


def sampling_seeds() -> list[TableSpec]:
    """MBR and diverse beam on the three seeds: pooled, and paired per seed against beam 5
    (the 1-best searches) and beam 10 (diverse beam's n-best of 10)."""
    rows, runs = ("search", "search.beam_size"), "sampling_mbr/seeds"
    paired = {"metric": "chrf", "rows": rows, "cols": ("seed",)}
    return [
        *(
            TableSpec(
                runs,
                "sampling_mbr/seeds",
                {
                    "baseline": f"search=beam,search.beam_size={k}",
                    "name": f"seeds_vs_beam{k}",
                    **paired,
                },
            )
            for k in (5, 10)
        ),
        *_pooled(runs, "sampling_mbr/seeds", SAMPLING_SEEDS, rows, ("model",), "seeds"),
    ]


def trie() -> list[TableSpec]:
    """Answers restricted by the trie processor against the same model without it: XQuAD
    (EM/F1, paired) and bAbI per task (error, mean row; accuracy paired per task and search)."""
    babi, squad = "trie/runs/babi", "trie/runs/squad"
    by_search = {"rows": ("search",), "cols": ("experiment_name",)}
    return [
        TableSpec(
            squad,
            "trie",
            {
                "metric": "f1",
                "baseline": "experiment_name=squad_copy",
                "name": "trie_squad_paired",
                **by_search,
            },
        ),
        *_pooled(squad, "trie", ("em", "f1"), by_search["rows"], by_search["cols"], "trie_squad"),
        TableSpec(
            (f"{squad}/trie_squad", "trie/runs/squad_spans"),
            "trie",
            {
                "metric": "f1",
                "rows": ("search",),
                "cols": ("task.max_span",),
                "name": "trie_squad_spans_f1",
            },
        ),
        TableSpec(
            babi,
            "trie",
            {
                "metric": "error",
                "rows": ("task.task_id",),
                "cols": ("experiment_name", "search"),
                "mean_row": True,
                "name": "trie_babi_error",
            },
        ),
        TableSpec(
            babi,
            "trie",
            {
                "metric": "accuracy",
                "rows": ("task.task_id", "search"),
                "cols": ("experiment_name",),
                "baseline": "experiment_name=babi_joint",
                "name": "trie_babi_paired",
            },
        ),
    ]


def constrained() -> list[TableSpec]:
    """Terminology, prefix and coverage on the Multi30k Transformer's three seeds: pooled,
    and paired per seed against the plain searches of the same seed."""
    coverage = ("search.coverage", "search.beta")
    plain = {"metric": "bleu", "rows": ("search",), "cols": ("seed",)}
    terms, prefix = ("constrained/runs/terms", SEEDS), ("constrained/runs/prefix", SEEDS)
    cover = "constrained/runs/coverage"  # plain beam rerun there with search.coverage=none
    return [
        TableSpec(
            terms, "constrained", {"name": "terms_paired", "baseline": "search=beam", **plain}
        ),
        *_pooled(terms, "constrained", TERMS, ("search",), ("model",), "terms"),
        TableSpec(
            prefix,
            "constrained",
            {
                "metric": "bleu",
                "rows": ("search", "seed"),
                "cols": ("experiment_name",),
                "baseline": "experiment_name=multi30k",
                "name": "prefix_paired",
            },
        ),
        *_pooled(
            prefix,
            "constrained",
            PREFIX,
            ("search",),
            ("experiment_name",),
            "prefix",
        ),
        TableSpec(
            cover,
            "constrained",
            {
                "metric": "bleu",
                "rows": coverage,
                "cols": ("seed",),
                "baseline": "search.coverage=none,search.beta=0.0",
                "name": "coverage_paired",
            },
        ),
        *_pooled(cover, "constrained", COVERAGE, coverage, ("model",), "coverage"),
    ]


def toolkits_seeds() -> list[TableSpec]:
    """Each toolkit's beam on the three seeds, under its own defaults and at beam 5: BLEU and
    length pooled over seeds, each preset paired against the lab's beam of the same seed, and at
    beam 5 each against fairseq's (how far apart the length-normalized presets are)."""
    specs = []
    for kind in ("defaults", "beam5"):
        runs, name = f"toolkits/runs/seeds/{kind}", f"toolkits_{kind}_seeds"
        specs += _pooled(
            runs, "toolkits/seeds", ("bleu", "len_ratio"), ("search",), ("model",), name
        )
        paired = {
            "metric": "bleu",
            "rows": ("search",),
            "cols": ("seed",),
            "baseline": "search=beam",
        }
        specs.append(TableSpec(runs, "toolkits/seeds", {"name": f"{name}_paired", **paired}))
    among = {"metric": "bleu", "rows": ("search",), "cols": ("seed",)}
    beam5 = "toolkits/runs/seeds/beam5"  # the normalized presets against each other
    specs.append(
        TableSpec(
            beam5,
            "toolkits/seeds",
            {"name": "toolkits_beam5_vs_fairseq", "baseline": "search=beam_fairseq", **among},
        )
    )
    return specs
