"""The tables of reports/multimodel: decoding with more than one model (the ensemble of the
three seeds, LM fusion, noisy-channel reranking, speculative decoding), each paired against
the one-model search it extends, on the committed summaries."""

from __future__ import annotations

from lab.rebuild.table_spec import TableSpec

FUSION = "multimodel/fusion/runs"  # model=fusion: lm_weight swept, greedy and beam 5


def fusion() -> list[TableSpec]:
    """LM fusion against the translation model alone (lm_weight 0), paired per search and
    translation seed (seed 0 at every weight, seeds 1 and 2 at 0 and 0.2); BLEU, length, empty
    outputs and the translation model's log-prob over the weights."""
    keys = {"rows": ("model.lm_weight",), "cols": ("search", "seed")}
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


CHANNEL = "multimodel/channel/runs"  # rerank of beam-10 lists: 2x2 grids of channel and LM
GRIDS = ("search.grid.channel", "search.grid.lm")  # [0]: the scorer held at weight 0


def channel() -> list[TableSpec]:
    """Noisy-channel reranking: each scorer set against length-only reranking (what the
    channel and the LM add), and every reranking against plain beam 5 and beam 10 (seed 0)."""
    keys = {"metric": "bleu", "rows": GRIDS, "cols": ("search",)}
    beams = (
        "multi30k/seeds/model=transformer,search=beam,seed=0",
        "sampling_mbr/seeds/search.beam_size=10,search.nbest=10,search=beam,seed=0",
    )
    rows = ("search", "search.beam_size", *GRIDS)
    tuned = [  # the weights the validation split chose, one table per scorer
        TableSpec(
            CHANNEL,
            "multimodel/channel",
            {"metric": f"search_settings.weights.{s}", "name": f"channel_weight_{s}", **keys},
        )
        for s in ("channel", "lm", "length")
    ]
    return [
        *tuned,
        TableSpec(
            CHANNEL,
            "multimodel/channel",
            {
                "baseline": "search.grid.channel=[0],search.grid.lm=[0]",
                "name": "channel_paired",
                **keys,
            },
        ),
        TableSpec(
            (CHANNEL, *beams),
            "multimodel/channel",
            {
                "metric": "bleu",
                "rows": rows,
                "cols": ("model",),
                "baseline": "search=beam,search.beam_size=5,search.grid.channel=-,search.grid.lm=-",
                "name": "channel_vs_beam5",
            },
        ),
    ]


SPECULATIVE = "multimodel/speculative/runs"  # greedy (twice) and gamma 2, 4, 6, batch 1
SPEC_METRICS = ("decode_seconds", "spec_acceptance", "spec_target_calls", "bleu")


def speculative() -> list[TableSpec]:
    """Speculative greedy against plain greedy, one sentence at a time: wall time, acceptance
    and target calls by gamma (the two greedy runs pooled)."""
    keys = {"rows": ("search", "search.gamma"), "cols": ("model",)}
    return [
        TableSpec(
            SPECULATIVE, "multimodel/speculative", {"metric": m, "name": f"speculative_{m}", **keys}
        )
        for m in SPEC_METRICS
    ]


NARROW = "multimodel/speculative/narrow/runs"  # the same, drafted by a d_model-128 model
NARROW_METRICS = (*SPEC_METRICS, "spec_draft_seconds")


def speculative_narrow() -> list[TableSpec]:
    """Speculative greedy drafted by the narrow model, against plain greedy run just before
    and after the sweep: the figures of ``speculative``, and the draft's own seconds."""
    keys = {"rows": ("search", "search.gamma"), "cols": ("model",)}
    return [
        TableSpec(
            NARROW, "multimodel/speculative/narrow", {"metric": m, "name": f"narrow_{m}", **keys}
        )
        for m in NARROW_METRICS
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
        *channel(),
        *speculative(),
        *speculative_narrow(),
    ]
