"""Lexically constrained beam search, registered as ``constrained_beam``: every output must
contain its example's include-phrases (and start with its prefix, which the driver forces).

Per step, EOS is banned for a hypothesis that does not yet contain every phrase; the K live
hypotheses are chosen from all ``K*V`` extensions by dynamic beam allocation over constraint
tokens met (``lab.search.beam.lexical``); every EOS extension left enters the sentence's
finished list. A sentence ends when its ``nbest``-th finished output scores at least its best
live hypothesis (log-probs only fall), when none is live, or at its length limit: then the
live hypotheses enter unfinished. Each output's ``info`` says ``constraints_met``; a finished
one always has, an unfinished one may not (its limit came first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.beam.beam_search import Batch
from lab.search.beam.lexical import Phrases, allocate, progress
from lab.search.contracts import Processor
from lab.search.driver import Move, Step, decode
from lab.search.limits import Limits, check_positive
from lab.search.prefix import ForcedPrefix
from lab.search.processors.chain import Processors
from lab.search.types import NEG_INF, Hypothesis, SearchOutput

Found = tuple[float, float, tuple[int, ...], bool, bool]  # score, logprob, tokens, finished, met


class ConstrainedStepper:
    """K rows per sentence; finished outputs kept per sentence, best first."""

    def __init__(self, procs: list[Processor], phrases: Phrases, k: int, nbest: int, eos: int):
        self.processors, self.phrases, self.k, self.nbest, self.eos = procs, phrases, k, nbest, eos
        n, dev = phrases.ids.size(0), phrases.ids.device
        self.run_score = torch.full((n, k), NEG_INF, device=dev)  # (n, K) processed sum
        self.run_score[:, 0] = 0.0  # all rows start identical: expand only the first
        self.run_logp = torch.zeros(n, k, device=dev)  # (n, K) model log-prob sum
        self.found: list[list[Found]] = [[] for _ in range(n)]

    def advance(self, step: Step) -> Move:
        k, eos = self.k, self.eos
        n, v = self.run_score.size(0), step.processed.size(1)
        banks, met = progress(step.tokens, self.phrases, k, v)  # (n*K, V), (n*K,)
        processed = step.processed.clone()  # (n*K, V)
        processed[~met, eos] = NEG_INF  # no EOS before every phrase is in
        score = (self.run_score.view(-1, 1) + processed).view(n, k * v)  # (n, K*V)
        raw = (self.run_logp.view(-1, 1) + step.log_probs).view(n, k * v)  # (n, K*V)
        self._finish_eos(score.view(n, k, v)[:, :, eos], raw.view(n, k, v)[:, :, eos], step)
        score.view(n, k, v)[:, :, eos] = NEG_INF
        pick = allocate(score, banks.view(n, k * v), k)  # (n, K)
        self.run_score, self.run_logp = score.gather(1, pick), raw.gather(1, pick)
        rows = (torch.arange(n, device=pick.device)[:, None] * k + pick // v).view(-1)
        tok = (pick % v).view(-1)  # (n*K,)
        at_limit = step.limit.le(step.t)  # (n,)
        if at_limit.any():
            total = self.phrases.total[:, None]  # (n, 1)
            self._add_cut(at_limit, step.tokens[rows].view(n, k, -1), tok.view(n, k),
                          banks.view(n, k * v).gather(1, pick) >= total)  # fmt: skip
        best_live = self.run_score.max(1).values  # (n,) allocation keeps no score order
        done = at_limit | best_live.isneginf() | self._settled(best_live)
        return Move(tok, done, rows=rows)

    def _finish_eos(self, score: Tensor, raw: Tensor, step: Step) -> None:
        """Every finite EOS extension ``(n, K)`` enters its sentence's finished list."""
        hit = score.isfinite().nonzero().tolist()
        prev = step.tokens.view(score.size(0), self.k, -1)  # (n, K, t-1)
        for i, j in hit:
            seq = (*prev[i, j].tolist(), self.eos)
            self.found[i].append((float(score[i, j]), float(raw[i, j]), seq, True, True))

    def _add_cut(self, at: Tensor, prev: Tensor, tok: Tensor, met: Tensor) -> None:
        """At the limit, the live hypotheses of sentences ``at`` ``(n,)`` enter unfinished."""
        for i in at.nonzero().squeeze(1).tolist():
            for j in range(self.k):
                if self.run_score[i, j].isfinite():
                    seq = (*prev[i, j].tolist(), int(tok[i, j]))
                    row = (float(self.run_score[i, j]), float(self.run_logp[i, j]), seq)
                    self.found[i].append((*row, False, bool(met[i, j])))

    def _settled(self, best_live: Tensor) -> Tensor:
        """Sentences ``(n,)`` whose ``nbest``-th finished output no live one can beat."""
        nth = [sorted((f[0] for f in fs if f[3]), reverse=True) for fs in self.found]
        worst = [s[self.nbest - 1] if len(s) >= self.nbest else NEG_INF for s in nth]
        return torch.tensor(worst, device=best_live.device) >= best_live

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        out = []
        for i in sentences.tolist():
            ranked = sorted(self.found[i], key=lambda f: (f[3], f[4], f[0]), reverse=True)
            hyps = [
                Hypothesis(seq, lp, sc, len(seq), fin, info={"constraints_met": met})
                for sc, lp, seq, fin, met in ranked[: self.nbest]
            ]
            none = Hypothesis((), 0.0, NEG_INF, 0, False, info={"constraints_met": False})
            out.append(hyps or [none])  # every row was ruled out before any output
        return out

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.run_score, self.run_logp = self.run_score[sentences], self.run_logp[sentences]
        self.found = [self.found[i] for i in sentences.tolist()]
        self.phrases.keep(sentences)


@SEARCHES.register("constrained_beam")
class ConstrainedBeam:
    """Beam search whose outputs contain each example's include-phrases (dynamic beam
    allocation), after its forced prefix."""

    inputs = ("constraints",)

    def __init__(
        self,
        beam_size: int = 5,
        nbest: int = 1,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        processors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.k, self.nbest = check_positive("beam_size", beam_size), check_positive("nbest", nbest)
        self.limits = Limits(max_len_a, max_len_b, min_len)
        self.processors = Processors(processors, self.limits.min_len, limits=True)
        self.constraint_kinds = ("prefix", "include", *self.processors.constraint_kinds)

    def __call__(
        self, model: DecoderModel, src: Tensor, src_lengths: Tensor, constraints: Batch = None
    ) -> SearchOutput:
        procs = self.processors.for_call(model, constraints)
        prefix = ForcedPrefix.of(constraints, src.device)
        cons = list(constraints or [None] * src.size(0))
        phrases = Phrases([c.include if c else () for c in cons], src.device)

        def start(limit: Tensor) -> ConstrainedStepper:
            return ConstrainedStepper(procs, phrases, self.k, self.nbest, model.eos_id)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, self.k, start, prefix)
