"""Which reports of ``reports/`` are ``lab report`` tables, and from which summaries.

Each entry is the ``lab report`` command that reports/README.md quotes for a section, with the
run directories replaced by the committed per-run summaries (``<section>/runs/``: one
``results.json`` per run, the same file a run writes, without its predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BEAM_CURSE = ("bleu", "len_ratio", "empty_rate", "bleu_tok_lc", "mean_logprob")
SAMPLING_ROWS = (
    "search",
    "search.processors",
    "search.candidates.num_samples",
    "search.candidates.name",
    "search.num_samples",
    "search.beam_size",
    "search.diversity_strength",
)
JOINT_COLS = ("model.copy", "search", "search.stop_rule")
SAMPLING_SEEDS = ("chrf", "bleu", "distinct_4", "len_ratio", "decode_seconds")
SEEDS = "multi30k/seeds"  # the plain greedy and beam runs of the Transformer's three seeds
TERMS = ("bleu", "len_ratio", "constraints_met", "phrases_met", "decode_seconds")
PREFIX = ("bleu", "bleu_rest", "chrf_rest", "len_ratio")
COVERAGE = ("bleu", "len_ratio", "mean_logprob", "decode_seconds")


@dataclass(frozen=True)
class TableSpec:
    """One ``lab report`` call: summaries under ``runs`` (relative to reports/; one directory
    or several), files into ``out``; ``options`` are ``lab.report.ReportSpec``'s fields."""

    runs: str | tuple[str, ...]
    out: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.options["name"])

    @property
    def dirs(self) -> tuple[str, ...]:
        """The directories whose summaries the table reads."""
        return (self.runs,) if isinstance(self.runs, str) else self.runs


def _babi(size: str) -> list[TableSpec]:
    keys = {"rows": ("task.task_id",), "cols": ("search",), "mean_row": True}
    if size == "joint":
        keys["cols"] = JOINT_COLS
    return [
        TableSpec(
            f"babi/runs/babi_{size}", "babi", {"metric": m, "name": f"babi_{size}_{m}", **keys}
        )
        for m in ("error", "accuracy")
    ]


def _multi30k_seeds() -> list[TableSpec]:
    """The Transformer's greedy and beam over seeds: pooled, and paired per seed."""
    paired = {"metric": "bleu", "rows": ("search",), "cols": ("seed",), "baseline": "search=greedy"}
    pooled = [("bleu", "multi30k_seeds"), ("bleu_tok_lc", "multi30k_seeds_tok_lc")]
    return [
        TableSpec("multi30k/seeds", "multi30k", {"name": "multi30k_seeds_paired", **paired}),
        *(
            TableSpec(
                "multi30k/seeds",
                "multi30k",
                {"metric": m, "rows": ("search",), "cols": ("model",), "name": name},
            )
            for m, name in pooled
        ),
    ]


def _curse_seeds() -> list[TableSpec]:
    """The beam-curse sweep over seeds: pooled BLEU and length, paired against beam 1 and 4."""
    keys = {"rows": ("search.beam_size",), "cols": ("search.penalty",)}
    pooled = [("bleu", "beam_curse_seeds_bleu"), ("len_ratio", "beam_curse_seeds_len")]
    paired = {"metric": "bleu", "rows": keys["rows"], "cols": ("search.penalty", "seed")}
    return [
        *(
            TableSpec("beam_curse/seeds", "beam_curse", {"metric": m, "name": n, **keys})
            for m, n in pooled
        ),
        *(
            TableSpec(
                "beam_curse/seeds",
                "beam_curse",
                {
                    "baseline": f"search.beam_size={base}",
                    "name": f"beam_curse_seeds_vs{base}",
                    **paired,
                },
            )
            for base in (1, 4)
        ),
    ]


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


def _sampling_seeds() -> list[TableSpec]:
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


def _trie() -> list[TableSpec]:
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


def _multimodel() -> list[TableSpec]:
    """The ensemble of the three seeds against each seed, paired (beam 5)."""
    keys = {"rows": ("model", "seed"), "cols": ("search",), "metric": "bleu"}
    return [
        TableSpec(
            "multimodel/runs",
            "multimodel",
            {"baseline": "model=ensemble,seed=0", "name": "ensemble_paired", **keys},
        )
    ]


def _constrained() -> list[TableSpec]:
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


def table_specs() -> list[TableSpec]:
    """Every ``lab report`` table of reports/, in the order of reports/README.md."""
    m30k = {"rows": ("search", "search.alpha"), "cols": ("model",)}
    curse = {
        "rows": ("search.beam_size",),
        "cols": ("search.penalty",),
        "x": "search.beam_size",
        "hue": ("search.penalty",),
    }
    squad = {"rows": ("search",), "cols": ("model.copy", "model.dropout")}
    return [
        TableSpec(
            "multi30k/runs", "multi30k", {"metric": "bleu_tok_lc", "name": "multi30k", **m30k}
        ),
        TableSpec(
            "multi30k/runs", "multi30k", {"metric": "bleu", "name": "multi30k_sacrebleu", **m30k}
        ),
        *_multi30k_seeds(),
        *(
            TableSpec(
                "beam_curse/runs", "beam_curse", {"metric": m, "name": f"beam_curse_{m}", **curse}
            )
            for m in BEAM_CURSE
        ),
        *_curse_seeds(),
        *_babi("1k"),
        *_babi("10k"),
        *_babi("joint"),
        TableSpec(
            "sampling_mbr/runs",
            "sampling_mbr",
            {"metric": "chrf", "name": "sampling_mbr", "rows": SAMPLING_ROWS, "cols": ("model",)},
        ),
        *(
            TableSpec("squad/runs", "squad", {"metric": m, "name": f"squad_{m}", **squad})
            for m in ("f1", "em")
        ),
        *_sampling_seeds(),
        *_constrained(),
        *_trie(),
        *_multimodel(),
    ]


CONTEXT = {  # the context table of each set of summaries
    "multi30k/multi30k_context.md": "multi30k/runs",
    "beam_curse/beam_curse_context.md": "beam_curse/runs",
    "babi/babi_1k_context.md": "babi/runs/babi_1k",
    "babi/babi_10k_context.md": "babi/runs/babi_10k",
    "babi/babi_joint_context.md": "babi/runs/babi_joint",
    "sampling_mbr/sampling_mbr_context.md": "sampling_mbr/runs",
    "squad/squad_context.md": "squad/runs",
    "multi30k/multi30k_seeds_context.md": "multi30k/seeds",
    "beam_curse/beam_curse_seeds_context.md": "beam_curse/seeds",
    "sampling_mbr/seeds/seeds_context.md": "sampling_mbr/seeds",
    "multimodel/ensemble_context.md": "multimodel/runs",
    "constrained/terms_context.md": "constrained/runs/terms",
    "constrained/prefix_context.md": "constrained/runs/prefix",
    "constrained/coverage_context.md": "constrained/runs/coverage",
}
