"""The pool of finished hypotheses beam-style searches keep per sentence, best first."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from lab.search.beam.candidates import Candidates
from lab.search.beam.penalties import Penalty
from lab.search.types import NEG_INF, Hypothesis


class FinishedPool:
    """The K best finished hypotheses of each sentence still in the batch, best first.

    "Finished" here means done growing: ended by EOS, cut at the length limit, or left no
    legal token by the processors; the last two are returned with ``finished=False``.
    With ``coverage``, each score has a coverage penalty subtracted (``lab.search.beam.
    coverage``), kept in ``cov_penalty`` and reported in the hypothesis' ``info``.
    """

    def __init__(
        self, n: int, k: int, max_len: int, pad: int, device: torch.device, coverage: bool = False
    ) -> None:
        self.score = torch.full((n, k), NEG_INF, device=device)  # (n, K) penalized score
        self.logp = torch.zeros(n, k, device=device)  # (n, K) model log-prob
        self.length = torch.zeros(n, k, dtype=torch.long, device=device)  # (n, K)
        self.tokens = torch.full((n, k, max_len), pad, dtype=torch.long, device=device)
        self.cov_penalty = torch.zeros(n, k, device=device)  # (n, K) subtracted from score
        self.k, self.max_len, self.pad, self.coverage = k, max_len, pad, coverage

    def add(self, score: Tensor, logp: Tensor, tokens: Tensor, cov: Tensor | None = None) -> None:
        """Merge candidates ``score, logp`` ``(n, C)``, tokens ``(n, C, t)`` and the coverage
        penalties ``cov`` ``(n, C)`` already in ``score`` (None: 0); keep the best K."""
        n, c, t = tokens.shape
        padded = tokens.new_full((n, c, self.max_len), self.pad)
        padded[:, :, :t] = tokens
        all_score = torch.cat([self.score, score], dim=1)  # (n, K+C)
        self.score, sel = all_score.topk(self.k, dim=1)  # (n, K)
        self.logp = torch.cat([self.logp, logp], 1).gather(1, sel)
        cov = torch.zeros_like(logp) if cov is None else cov
        self.cov_penalty = torch.cat([self.cov_penalty, cov], 1).gather(1, sel)
        self.length = torch.cat([self.length, self.length.new_full((n, c), t)], 1).gather(1, sel)
        all_tok = torch.cat([self.tokens, padded], dim=1)  # (n, K+C, L)
        self.tokens = all_tok.gather(1, sel[:, :, None].expand(-1, -1, self.max_len))

    def admitted(self, c: Candidates, finalize: str) -> Candidates:
        """``c`` as the pool may take it: with ``finalize=first``, EOS candidates past the
        pool's free slots (in rank order, as fairseq's ``finalize_hypos`` takes them) drop out."""
        if finalize == "best":
            return c
        ranks = torch.arange(c.score.size(1), device=c.score.device)  # (2K,)
        finishing = c.eos & c.score.isfinite() & (ranks < self.k)  # (n, 2K)
        free = self.k - self.score.isfinite().sum(1, keepdim=True)  # (n, 1) empty slots
        late = finishing & (finishing.cumsum(1) > free)  # (n, 2K)
        return dataclasses.replace(c, score=c.score.masked_fill(late, NEG_INF))

    def add_step(
        self,
        c: Candidates,
        tokens: Tensor,
        at_limit: Tensor,
        t: int,
        penalty: Penalty,
        cov: Tensor | None = None,
    ) -> None:
        """Add a beam step's finished candidates ``c`` : the EOS
        candidates ranked within the top K and, at the length limit ``at_limit`` ``(n,)``, the
        live hypotheses of the top K ranks (unfinished), as HF does. ``tokens`` ``(n*K, t-1)``
        are the live prefixes the candidates extend; ``cov`` ``(n, 2K)``: the candidates'
        coverage penalties, subtracted from their length-penalized scores."""
        n, k = c.live.shape
        ranks = torch.arange(c.score.size(1), device=at_limit.device)  # (2K,)
        new_eos = c.eos & c.score.isfinite() & (ranks < k)  # (n, 2K)
        new_cut = at_limit[:, None] & c.of_live(c.score).isfinite() & (c.live < k)  # (n, K)
        if not (new_eos.any() or new_cut.any()):
            return

        def both(values: Tensor) -> Tensor:  # (n, 2K) -> all, then the live ones: (n, 3K)
            return torch.cat([values, c.of_live(values)], dim=1)

        score = both(c.score).masked_fill(~torch.cat([new_eos, new_cut], dim=1), NEG_INF)
        beam = both(c.beam)[:, :, None].expand(-1, -1, t - 1)  # (n, 3K, t-1)
        seqs = torch.cat([tokens.view(n, k, t - 1).gather(1, beam), both(c.token)[:, :, None]], 2)
        final, extra = penalty(score, t), None if cov is None else both(cov)  # (n, 3K)
        if extra is not None:
            final = final - extra
        self.add(final.masked_fill(score.isinf(), NEG_INF), both(c.raw), seqs, extra)

    def add_stuck(
        self,
        run_score: Tensor,
        run_logp: Tensor,
        processed: Tensor,
        tokens: Tensor,
        t: int,
        penalty: Penalty,
        cov: Tensor | None = None,
    ) -> None:
        """Add the live hypotheses the processors leave no legal token at step ``t`` (every
        processed step log-prob ``(n*K, V)`` is -inf): they stop there, unfinished, with their
        ``t-1`` tokens ``(n*K, t-1)``, running score and model log-prob ``run_*`` ``(n, K)``
        (``cov`` ``(n, K)``: their coverage penalties, subtracted)."""
        n, k = run_score.shape
        stuck = run_score.isfinite() & processed.view(n, k, -1).amax(-1).isneginf()  # (n, K)
        if not stuck.any():
            return
        score = run_score.masked_fill(~stuck, NEG_INF)
        if t > 1:  # the empty output (t == 1) keeps its score: a length penalty of 0 tokens
            score = penalty(score, t - 1).masked_fill(~stuck, NEG_INF)
        if cov is not None:
            score = (score - cov).masked_fill(~stuck, NEG_INF)
        self.add(score, run_logp, tokens.view(n, k, t - 1), cov)

    def keep(self, idx: Tensor) -> None:
        self.score, self.logp = self.score[idx], self.logp[idx]
        self.length, self.tokens = self.length[idx], self.tokens[idx]
        self.cov_penalty = self.cov_penalty[idx]

    def hypotheses(self, i: int, nbest: int, eos: int) -> list[Hypothesis]:
        out = []
        for s, lp, n, toks, cov in zip(
            self.score[i, :nbest].tolist(),
            self.logp[i, :nbest].tolist(),
            self.length[i, :nbest].tolist(),
            self.tokens[i, :nbest].tolist(),
            self.cov_penalty[i, :nbest].tolist(),
            strict=True,
        ):
            if s == NEG_INF:
                break
            seq, info = tuple(toks[:n]), {"coverage_penalty": cov} if self.coverage else None
            out.append(Hypothesis(seq, lp, s, n, bool(n) and seq[-1] == eos, info=info))
        return out
