"""Beam search, batched over sentences x beams, with a pluggable length penalty and stop rule.

Per step: one ``topk`` of ``2K`` over the ``K*V`` extensions of each sentence. EOS candidates
ranked within the top K enter the sentence's pool of K finished hypotheses (ranked by the
length penalty); the first K non-EOS candidates stay live. At the length limit the live
hypotheses enter the pool unfinished. A sentence leaves the batch when its stop rule says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import PENALTIES, SEARCHES, STOP_RULES
from lab.search.base import Cost, Hypothesis, SearchOutput, check_positive, max_lengths
from lab.search.processors import apply, build_processors
from lab.search.stop import StopView

NEG_INF = float("-inf")


class Pool:
    """The K best finished hypotheses of each sentence still in the batch, best first."""

    def __init__(self, n: int, k: int, max_len: int, pad: int, device: torch.device) -> None:
        self.score = torch.full((n, k), NEG_INF, device=device)  # (n, K) penalized score
        self.logp = torch.zeros(n, k, device=device)  # (n, K) model log-prob
        self.length = torch.zeros(n, k, dtype=torch.long, device=device)  # (n, K)
        self.tokens = torch.full((n, k, max_len), pad, dtype=torch.long, device=device)
        self.k, self.max_len, self.pad = k, max_len, pad

    def add(self, score: Tensor, logp: Tensor, tokens: Tensor) -> None:
        """Merge candidates ``score, logp`` ``(n, C)``, tokens ``(n, C, t)``; keep the best K."""
        n, c, t = tokens.shape
        padded = tokens.new_full((n, c, self.max_len), self.pad)
        padded[:, :, :t] = tokens
        all_score = torch.cat([self.score, score], dim=1)  # (n, K+C)
        self.score, sel = all_score.topk(self.k, dim=1)  # (n, K)
        self.logp = torch.cat([self.logp, logp], 1).gather(1, sel)
        self.length = torch.cat([self.length, self.length.new_full((n, c), t)], 1).gather(1, sel)
        all_tok = torch.cat([self.tokens, padded], dim=1)  # (n, K+C, L)
        self.tokens = all_tok.gather(1, sel[:, :, None].expand(-1, -1, self.max_len))

    def keep(self, idx: Tensor) -> None:
        self.score, self.logp = self.score[idx], self.logp[idx]
        self.length, self.tokens = self.length[idx], self.tokens[idx]

    def hypotheses(self, i: int, nbest: int, eos: int) -> list[Hypothesis]:
        out = []
        for s, lp, n, toks in zip(
            self.score[i, :nbest].tolist(),
            self.logp[i, :nbest].tolist(),
            self.length[i, :nbest].tolist(),
            self.tokens[i, :nbest].tolist(),
            strict=True,
        ):
            if s == NEG_INF:
                break
            seq = tuple(toks[:n])
            out.append(Hypothesis(seq, lp, s, n, bool(n) and seq[-1] == eos))
        return out


class BeamSearch:
    """Shared implementation of ``beam`` and ``beam_lp``."""

    def __init__(
        self,
        beam_size: int = 5,
        nbest: int = 1,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        stop_rule: str = "first_k",
        penalty: str = "none",
        alpha: float = 0.0,
        processors: Sequence[dict] | None = None,
    ) -> None:
        self.k = check_positive("beam_size", beam_size)
        self.nbest = check_positive("nbest", nbest)
        if self.nbest > self.k:
            raise LabError(
                f"search.nbest={nbest} exceeds search.beam_size={beam_size}; "
                "set nbest <= beam_size."
            )
        self.max_len_a, self.max_len_b = float(max_len_a), check_positive("max_len_b", max_len_b, 0)
        self.min_len, self.processor_specs = int(min_len), processors
        self.stop_rule = STOP_RULES.build(stop_rule)
        self.penalty = PENALTIES.build(penalty, alpha=alpha)

    def __call__(
        self, model: DecoderModel, src_tokens: Tensor, src_lengths: Tensor
    ) -> SearchOutput:
        with torch.inference_mode():
            return self._search(model, src_tokens, src_lengths)

    def _search(self, model: DecoderModel, src_tokens: Tensor, src_lengths: Tensor) -> SearchOutput:
        procs = build_processors(
            self.processor_specs, self.min_len, [model.pad_id, model.bos_id], model.eos_id
        )
        k, dev, eos = self.k, src_tokens.device, model.eos_id
        n = src_tokens.size(0)
        cost = Cost(sentences=n, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n)]
        limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (B,)
        state = model.init_state(model.encode(src_tokens, src_lengths), k)
        alive = torch.arange(n, device=dev)  # (n,) original sentence ids
        pool = Pool(n, k, int(limit.max()), model.pad_id, dev)
        prev = torch.full((n * k,), model.bos_id, device=dev)  # (n*K,)
        tokens = prev.new_zeros(n * k, 0)  # (n*K, t) generated so far
        run_score = torch.full((n, k), NEG_INF, device=dev)  # (n, K) processed log-prob sum
        run_score[:, 0] = 0.0  # all beams start identical: expand only the first
        run_logp = torch.zeros(n, k, device=dev)  # (n, K) model log-prob sum
        ranks = torch.arange(2 * k, device=dev)  # (2K,)
        t = 0
        while alive.numel():
            t += 1
            log_probs, state = model.step(prev, state)  # (n*K, V)
            cost.steps, cost.model_calls = cost.steps + 1, cost.model_calls + 1
            cost.expanded += n * k
            vocab = log_probs.size(1)
            proc = apply(procs, log_probs, tokens, t)  # (n*K, V)
            cand = (run_score[:, :, None] + proc.view(n, k, vocab)).view(n, k * vocab)
            top_s, top_i = cand.topk(min(2 * k, k * vocab), dim=1)  # (n, 2K)
            beam_i, tok = top_i // vocab, top_i % vocab  # (n, 2K)
            top_raw = run_logp.gather(1, beam_i) + log_probs.view(n, -1).gather(1, top_i)
            is_eos = tok.eq(eos)  # (n, 2K)
            # the first K non-EOS candidates, in rank order, stay live
            live_j = torch.sort(is_eos.to(torch.int8), dim=1, stable=True).indices[:, :k]
            live_s, live_b = top_s.gather(1, live_j), beam_i.gather(1, live_j)  # (n, K)
            live_tok, live_raw = tok.gather(1, live_j), top_raw.gather(1, live_j)
            at_limit = limit[alive].le(t)  # (n,)
            new_eos = is_eos & top_s.isfinite() & (ranks[: top_s.size(1)] < k)  # (n, 2K)
            new_cut = (
                at_limit[:, None] & live_s.isfinite() & (live_j < k)
            )  # (n, K) top-K ranks, as HF
            if new_eos.any() or new_cut.any():
                cand_s = torch.cat(
                    [top_s.masked_fill(~new_eos, NEG_INF), live_s.masked_fill(~new_cut, NEG_INF)],
                    dim=1,
                )  # (n, 3K)
                prefix = tokens.view(n, k, t - 1)
                src_b = torch.cat([beam_i, live_b], dim=1)  # (n, 3K)
                seqs = torch.cat(
                    [
                        prefix.gather(1, src_b[:, :, None].expand(-1, -1, t - 1)),
                        torch.cat([tok, live_tok], dim=1)[:, :, None],
                    ],
                    dim=2,
                )  # (n, 3K, t)
                pool.add(
                    self.penalty(cand_s, t).masked_fill(cand_s.isinf(), NEG_INF),
                    torch.cat([top_raw, live_raw], dim=1),
                    seqs,
                )
            view = StopView(
                k,
                pool.score.isfinite().sum(1),
                pool.score[:, -1],
                live_s[:, 0],
                t,
                limit[alive],
                self.penalty,
            )
            done = self.stop_rule(view) | at_limit | live_s[:, 0].isinf()  # (n,)
            rows = (torch.arange(n, device=dev)[:, None] * k + live_b).view(-1)  # (n*K,)
            state = model.reorder(state, rows)
            tokens = torch.cat([tokens.index_select(0, rows), live_tok.view(-1, 1)], dim=1)
            prev, run_score, run_logp = live_tok.view(-1), live_s, live_raw
            if done.any():
                for i in done.nonzero().squeeze(1).tolist():
                    results[int(alive[i])] = pool.hypotheses(i, self.nbest, eos)
                keep = (~done).nonzero().squeeze(1)  # (n',)
                hyp_rows = (keep[:, None] * k + torch.arange(k, device=dev)).view(-1)
                alive, run_score, run_logp = alive[keep], run_score[keep], run_logp[keep]
                prev, tokens = prev[hyp_rows], tokens[hyp_rows]
                pool.keep(keep)
                n = alive.numel()
                if n:
                    state = state.select_sentences(keep)
        return SearchOutput(results, cost)


@SEARCHES.register("beam")
class Beam(BeamSearch):
    """Beam search: beam_size, nbest, length limits, stop rule (first_k|canonical|heuristic)."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003 - the BeamSearch arguments
        for key in ("penalty", "alpha"):
            if key in kwargs:
                raise LabError(
                    f"search=beam has no '{key}'; use search=beam_lp for a length penalty."
                )
        super().__init__(**kwargs)


@SEARCHES.register("beam_lp")
class BeamLP(BeamSearch):
    """Length-penalized beam search: penalty average|gnmt|word_reward with strength alpha."""

    def __init__(self, penalty: str = "gnmt", alpha: float = 0.6, **kwargs) -> None:  # noqa: ANN003
        super().__init__(penalty=penalty, alpha=alpha, **kwargs)
