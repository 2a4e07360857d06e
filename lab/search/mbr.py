"""Minimum Bayes risk (MBR) decoding: generate candidates with one search, estimate each one's
expected utility against pseudo-references drawn by another (or the same) search, and return
the candidates ranked by it.

For a sentence, the candidates are its n-best list from the ``candidates`` search, duplicates
(same tokens) dropped, first occurrence kept; the pseudo-references are the n-best list from
the ``pseudo_refs`` search, or the candidate search's own list when ``pseudo_refs`` is null,
duplicates kept: they are a Monte-Carlo sample of the model's distribution (when they are
samples), each weighing 1/R, so a frequent output counts as often as it was drawn. The
expected utility of candidate c is ``mean_r u(detok(c), detok(r))`` (``lab.metrics.utility``),
and the output n-best holds the ``nbest`` candidates of highest expected utility (ties: the
earlier candidate first), each with its model ``logprob``, ``score`` = its expected utility
and ``info["expected_utility"]``.

Random streams: the inner searches run through ``call_search``; the candidate search gets the
sentence keys, the pseudo-reference search keys derived from them (``pseudo_ref_keys``), so two
sampling searches with the same seed draw independent outputs for the same sentence.

Cost: the inner searches' counters (steps, model calls, expansions), the utility's pair
evaluations (``utility_calls``), and wall time split into ``generation_seconds`` (the inner
searches) and ``selection_seconds`` (detokenizing, scoring, ranking).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from lab.errors import LabError
from lab.metrics.utility import Utility
from lab.models.base import DecoderModel
from lab.registry import SEARCHES, UTILITIES
from lab.search.contracts import Detokenize
from lab.search.limits import check_positive
from lab.search.rng import pseudo_ref_keys
from lab.search.select import Generation, Text, build_inner, distinct, texts
from lab.search.types import Hypothesis, SearchOutput


def build_utility(name: Any) -> Utility:
    """The registered utility ``name``; an unknown one fails with one line listing the valid."""
    if not isinstance(name, str):
        raise LabError(f"search.utility must be a name, one of {', '.join(UTILITIES.names())}.")
    try:
        return UTILITIES.build(name)
    except LabError as e:
        raise LabError(f"search.utility: {e}") from None


@SEARCHES.register("mbr")
class MBR:
    """Minimum Bayes risk: rank an inner search's candidates by expected utility (chrF...)."""

    inputs = ("keys", "detokenize")

    def __init__(
        self,
        candidates: Mapping[str, Any] | None = None,
        pseudo_refs: Mapping[str, Any] | None = None,
        utility: str = "fast_chrf",
        nbest: int = 1,
    ) -> None:
        self.candidates = build_inner("candidates", candidates)
        self.pseudo_refs = None if pseudo_refs is None else build_inner("pseudo_refs", pseudo_refs)
        self.utility = build_utility(utility)
        self.nbest = check_positive("nbest", nbest)

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None = None,
        detokenize: Detokenize | None = None,
    ) -> SearchOutput:
        if detokenize is None:
            raise ValueError("MBR compares texts: pass detokenize (token ids -> str)")
        n = src.size(0)
        gen = Generation()
        cands = gen.run(self.candidates, model, src, src_lengths, keys, detokenize)
        refs = cands
        if self.pseudo_refs is not None:
            ref_keys = pseudo_ref_keys(range(n) if keys is None else keys)
            refs = gen.run(self.pseudo_refs, model, src, src_lengths, ref_keys, detokenize)
        calls = self.utility.calls
        text = texts(detokenize, model.eos_id)
        nbest = [
            self.rank(cand, ref, text) for cand, ref in zip(cands.nbest, refs.nbest, strict=True)
        ]
        out = gen.output(nbest, n)
        out.cost.utility_calls += self.utility.calls - calls
        return out

    def rank(
        self, candidates: Sequence[Hypothesis], refs: Sequence[Hypothesis], text: Text
    ) -> list[Hypothesis]:
        """One sentence's ``nbest`` best distinct candidates by expected utility."""
        unique = distinct(candidates)  # duplicates dropped, first occurrence kept
        utility = self.utility.matrix([text(h) for h in unique], [text(r) for r in refs])
        expected = utility.mean(dim=1).tolist()  # (C,) uniform weights over the R refs
        order = sorted(range(len(unique)), key=lambda c: -expected[c])  # stable: ties keep order
        ranked = [(unique[c], expected[c]) for c in order[: self.nbest]]
        return [
            dataclasses.replace(h, score=e, proved_optimal=None, info={"expected_utility": e})
            for h, e in ranked
        ]
