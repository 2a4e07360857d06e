"""Which reports of ``reports/`` are ``lab report`` tables, and from which summaries.

Each entry is the ``lab report`` command that reports/README.md quotes for a section, with the
run directories replaced by the committed per-run summaries (``<section>/runs/``: one
``results.json`` per run, the same file a run writes, without its predictions).
"""

from __future__ import annotations

from lab.rebuild.intervals import (
    exact_paired,
    length_penalty_seeds,
    rnn_paired,
    sampling_paired,
)
from lab.rebuild.multimodel import multimodel
from lab.rebuild.seeded import constrained, sampling_seeds, toolkits_seeds, trie
from lab.rebuild.table_spec import TableSpec

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


def _babi_paired() -> TableSpec:
    """Each beam of the joint models against greedy on the same model, task and seed."""
    keys = {
        "metric": "accuracy",
        "rows": ("task.task_id", "search", "search.stop_rule"),
        "cols": ("model.copy", "seed"),
        "baseline": "search=greedy,search.stop_rule=-",
    }
    return TableSpec("babi/runs/babi_joint", "babi", {"name": "babi_joint_paired", **keys})


def _babi_retrained(size: str) -> TableSpec:
    """The per-task models retrained with statistics: beam 5 against greedy on each task's own
    model (seed 0), the same 1000 questions."""
    keys = {"metric": "accuracy", "rows": ("task.task_id",), "cols": ("search",)}
    options = {"name": f"babi_{size}_retrained_paired", "baseline": "search=greedy", **keys}
    runs = "babi/retrained/runs" if size == "1k" else f"babi/retrained_{size}/runs"
    return TableSpec(runs, "babi", options)


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


def _squad_recipe() -> TableSpec:
    """The copy decoder against the plain one trained with the copy model's recipe: paired
    per search on the same XQuAD questions (EM and F1)."""
    runs = tuple(
        f"squad/runs/squad_copy/{copy}search={s}"
        for copy in ("", "model.copy=False,")
        for s in ("greedy", "beam")
    )
    keys = {"rows": ("search",), "cols": ("model.copy",), "baseline": "model.copy=False"}
    return TableSpec(runs, "squad", {"metric": "f1", "name": "squad_recipe_paired", **keys})


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
        *length_penalty_seeds(),
        rnn_paired("gru"),
        rnn_paired("lstm"),
        *(
            TableSpec(
                "beam_curse/runs", "beam_curse", {"metric": m, "name": f"beam_curse_{m}", **curse}
            )
            for m in BEAM_CURSE
        ),
        *_curse_seeds(),
        exact_paired(),
        *_babi("1k"),
        *_babi("10k"),
        *_babi("joint"),
        _babi_paired(),
        _babi_retrained("1k"),
        _babi_retrained("10k"),
        TableSpec(
            "sampling_mbr/runs",
            "sampling_mbr",
            {"metric": "chrf", "name": "sampling_mbr", "rows": SAMPLING_ROWS, "cols": ("model",)},
        ),
        *(
            TableSpec("squad/runs", "squad", {"metric": m, "name": f"squad_{m}", **squad})
            for m in ("f1", "em")
        ),
        _squad_recipe(),
        *sampling_seeds(),
        *sampling_paired(),
        *constrained(),
        *trie(),
        *multimodel(),
        *toolkits_seeds(),
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
    "multimodel/fusion/fusion_context.md": "multimodel/fusion/runs",
    "multimodel/channel/channel_context.md": "multimodel/channel/runs",
    "multimodel/speculative/speculative_context.md": "multimodel/speculative/runs",
    "toolkits/seeds/toolkits_seeds_context.md": "toolkits/runs/seeds",
    "constrained/terms_context.md": "constrained/runs/terms",
    "constrained/prefix_context.md": "constrained/runs/prefix",
    "constrained/coverage_context.md": "constrained/runs/coverage",
}
