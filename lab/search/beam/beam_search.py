"""Beam search, batched over sentences x beams, built from plug-in objects: a length penalty,
a stop rule and logits processors (``beam_lp`` is the same search with another penalty).

Per step: one ``topk`` of ``2K`` over the ``K*V`` extensions of each sentence. EOS candidates
ranked within the top K enter the sentence's pool of K finished hypotheses (ranked by the
length penalty); the first K non-EOS candidates stay live. At the length limit the live
hypotheses enter the pool unfinished, and so does a live hypothesis the logits processors leave
no legal token (it stops there, with the tokens it has). A sentence leaves the batch when its
stop rule says so, or when none of its hypotheses can continue; its n-best is never empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.search.beam.candidates import top_candidates
from lab.search.beam.coverage import CoveragePenalty, CoverageTracker, penalties
from lab.search.beam.finished import FinishedPool
from lab.search.beam.penalties import Penalty
from lab.search.beam.rules import BeamRules
from lab.search.beam.stop import StopView
from lab.search.contracts import Processor
from lab.search.driver import Move, Step, decode
from lab.search.limits import Limits, check_positive
from lab.search.prefix import ForcedPrefix
from lab.search.processors.chain import Processors
from lab.search.types import NEG_INF, Constraints, Hypothesis, SearchOutput

Batch = Sequence[Constraints | None] | None  # one example's constraints per sentence
Cov = CoverageTracker | None


class BeamSearch:
    """Beam search over ``beam_size`` hypotheses per sentence, returning the ``nbest`` best.

    ``settings``: what the search was built from (``build_beam``'s arguments), kept so that a
    preset's resolved values can be read back. Examples may force a target prefix. ``coverage``:
    a coverage penalty subtracted from finished hypotheses' scores (``lab.search.beam.coverage``).
    """

    inputs = ("constraints",)  # optional input: forced prefixes (and allowed outputs, with trie)

    def __init__(
        self,
        beam_size: int,
        nbest: int,
        max_len: tuple[float, int],
        penalty: Penalty,
        stop_rule: Callable[[StopView], Tensor],
        processors: Processors,
        rules: BeamRules | None = None,
        settings: Mapping[str, Any] | None = None,
        coverage: CoveragePenalty | None = None,
    ) -> None:
        self.k, self.nbest = check_positive("beam_size", beam_size), check_positive("nbest", nbest)
        if self.nbest > self.k:
            raise LabError(f"search.nbest={nbest} exceeds search.beam_size={beam_size}; lower it.")
        self.limits = Limits(max_len[0], max_len[1], processors.min_len)
        self.penalty, self.stop_rule, self.processors = penalty, stop_rule, processors
        self.constraint_kinds = ("prefix", *processors.constraint_kinds)
        self.rules = rules or BeamRules()
        self.settings, self.coverage = dict(settings or {}), coverage

    def __call__(
        self, model: DecoderModel, src: Tensor, src_lengths: Tensor, constraints: Batch = None
    ) -> SearchOutput:
        procs = self.processors.for_call(model, constraints, self.rules.forced_eos)
        prefix = ForcedPrefix.of(constraints, src.device)
        track = CoverageTracker.of(self.coverage, model, src_lengths, src.size(1), self.k)

        def start(limit: Tensor) -> BeamStepper:
            n, dev, cov = src.size(0), src.device, track is not None
            pool = FinishedPool(n, self.k, int(limit.max()), model.pad_id, dev, coverage=cov)
            return BeamStepper(self, procs, pool, model.eos_id, track)

        with torch.inference_mode():
            asks = track is not None  # for the model's cross-attention
            return decode(model, src, src_lengths, self.limits, self.k, start, prefix, asks)


class BeamStepper:
    """One call's beams: running scores, the finished pool and what the stop rules count."""

    def __init__(
        self, search: BeamSearch, procs: list[Processor], pool: FinishedPool, eos: int, cov: Cov
    ) -> None:
        self.search, self.processors, self.pool, self.eos = search, procs, pool, eos
        self.coverage = cov  # with a coverage penalty, each live row's coverage
        n, k, dev = pool.score.size(0), search.k, pool.score.device
        self.run_score = torch.full((n, k), NEG_INF, device=dev)  # (n, K) processed log-prob sum
        self.run_score[:, 0] = 0.0  # all beams start identical: expand only the first
        self.run_logp = torch.zeros(n, k, device=dev)  # (n, K) model log-prob sum
        self.ended = torch.zeros(n, dtype=torch.long, device=dev)  # (n,) ended by EOS
        self.top_ever = torch.zeros(n, dtype=torch.bool, device=dev)  # (n,) a step's best ended

    def advance(self, step: Step) -> Move:
        s, k, t, pool = self.search, self.search.k, step.t, self.pool
        c = top_candidates(self.run_score, self.run_logp, step.log_probs, step.processed, self.eos)
        at_limit = step.limit.le(t)  # (n,)
        stuck_cov, cand_cov = penalties(self.coverage, step.attention, c.beam)  # (n, K), (n, 2K)
        pool.add_stuck(
            self.run_score, self.run_logp, step.processed, step.tokens, t, s.penalty, stuck_cov
        )
        admitted = pool.admitted(c, s.rules.finalize)
        pool.add_step(admitted, step.tokens, at_limit, t, s.penalty, cand_cov)
        live_s, live_tok = c.live_scores(s.rules.refill), c.of_live(c.token)  # (n, K)
        top = c.eos[:, 0] & c.score[:, 0].isfinite()  # (n,) the step's best ended
        self.ended = self.ended + (c.eos & c.score.isfinite())[:, :k].sum(1)
        self.top_ever = self.top_ever | top
        view = StopView.of(
            pool, live_s[:, 0], t, step.limit, s.penalty, nbest=s.nbest,
            patience=s.rules.patience, n_ended=self.ended, top_ended=top,
            top_ended_ever=self.top_ever,
        )  # fmt: skip
        done = s.stop_rule(view) | at_limit | live_s[:, 0].isinf()  # (n,)
        n = live_s.size(0)
        rows = (torch.arange(n, device=live_s.device)[:, None] * k + c.of_live(c.beam)).view(-1)
        self.run_score, self.run_logp = live_s, c.of_live(c.raw)
        if self.coverage is not None:
            self.coverage.move(rows)
        return Move(live_tok.view(-1), done, rows=rows)  # rows: (n*K,)

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        return [self.pool.hypotheses(i, self.search.nbest, self.eos) for i in sentences.tolist()]

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.pool.keep(sentences)
        self.run_score, self.run_logp = self.run_score[sentences], self.run_logp[sentences]
        self.ended, self.top_ever = self.ended[sentences], self.top_ever[sentences]
        if self.coverage is not None:
            self.coverage.keep(sentences, rows)
