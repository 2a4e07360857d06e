"""The tables of reports/multimodel: decoding with more than one model (the ensemble of the
three seeds, LM fusion, noisy-channel reranking, speculative decoding), each paired against
the one-model search it extends, on the committed summaries."""

from __future__ import annotations

from lab.rebuild.table_spec import TableSpec

FUSION = "multimodel/fusion/runs"  # model=fusion, model.lm_weight swept, greedy and beam 5


def fusion() -> list[TableSpec]:
    """LM fusion against the translation model alone (lm_weight 0), paired per search; BLEU,
    length and empty outputs over the weights."""
    keys = {"rows": ("model.lm_weight",), "cols": ("search",)}
    return [
        TableSpec(
            FUSION,
            "multimodel/fusion",
            {"metric": "bleu", "baseline": "model.lm_weight=0.0", "name": "fusion_paired", **keys},
        ),
        *(
            TableSpec(FUSION, "multimodel/fusion", {"metric": m, "name": f"fusion_{m}", **keys})
            for m in ("bleu", "len_ratio", "empty_rate", "mean_logprob")
        ),
    ]


def multimodel() -> list[TableSpec]:
    """The ensemble of the three seeds against each seed, paired (beam 5), then fusion."""
    keys = {"rows": ("model", "seed"), "cols": ("search",), "metric": "bleu"}
    return [
        TableSpec(
            "multimodel/runs",
            "multimodel",
            {"baseline": "model=ensemble,seed=0", "name": "ensemble_paired", **keys},
        ),
        *fusion(),
    ]
