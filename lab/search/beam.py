"""Beam search, batched over sentences x beams, built from plug-in objects: a length penalty,
a stop rule and logits processors (``beam_lp`` is the same search with another penalty).

Per step: one ``topk`` of ``2K`` over the ``K*V`` extensions of each sentence. EOS candidates
ranked within the top K enter the sentence's pool of K finished hypotheses (ranked by the
length penalty); the first K non-EOS candidates stay live. At the length limit the live
hypotheses enter the pool unfinished, and so does a live hypothesis the logits processors leave
no legal token (it stops there, with the tokens it has). A sentence leaves the batch when its
stop rule says so, or when none of its hypotheses can continue; its n-best is never empty.

``BeamRules`` holds the choices in which the toolkits' beam searches differ beyond the penalty
and the stop rule (``lab.search.presets`` bundles them per toolkit); the defaults are the lab's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import PENALTIES, SEARCHES, STOP_RULES
from lab.search.base import (
    Cost,
    Hypothesis,
    SearchOutput,
    check_min_len,
    check_positive,
    drop_sentences,
    max_lengths,  # noqa: I001 - one name a line keeps the list short
)
from lab.search.candidates import Candidates, top_candidates
from lab.search.penalties import Penalty
from lab.search.pool import NEG_INF, Pool
from lab.search.processors import ForcedEOS, Processors, apply, model_forces_eos
from lab.search.stop import StopView

FINALIZE = ("best", "first")
FORCED_EOS = ("off", "zero", "logprob", "model")


@dataclass(frozen=True)
class BeamRules:
    """How a beam treats hypotheses that end, where the toolkits disagree.

    ``refill``: an EOS among a step's top K candidates is replaced by the next non-EOS one, so
    K hypotheses stay live (2K candidates: HF, fairseq, CTranslate2); False leaves its slot
    empty for that step (K candidates: OpenNMT-py ``BeamSearchBase._pick``).
    ``finalize``: ``best``: the pool keeps the K best finished hypotheses (HF, CTranslate2);
    ``first``: the first K to finish, never replaced (fairseq ``finalize_hypos``).
    ``forced_eos``: at each sentence's last allowed step only EOS, scored 0 (``zero``, HF) or
    by its log-prob (``logprob``, fairseq); ``model``: ``zero`` if the model's config forces EOS
    (HF ``forced_eos_token_id``), else ``off``.
    ``patience``: the factor of ``stop_rule=patience`` (CTranslate2).
    """

    refill: bool = True
    finalize: str = "best"
    forced_eos: str = "off"
    patience: float = 1.0

    def __post_init__(self) -> None:
        for key, value, valid in (
            ("finalize", self.finalize, FINALIZE),
            ("forced_eos", self.forced_eos, FORCED_EOS),
        ):
            if value not in valid:
                raise LabError(f"search.{key}={value!r} is not one of {', '.join(valid)}.")
        if not isinstance(self.refill, bool):
            raise LabError(f"search.refill must be true or false, got {self.refill!r}.")
        if not (isinstance(self.patience, int | float) and math.isfinite(self.patience)):
            raise LabError(f"search.patience must be a finite number, got {self.patience!r}.")


class BeamSearch:
    """Beam search over ``beam_size`` hypotheses per sentence, returning the ``nbest`` best.

    ``settings``: what the search was built from (``build_beam``'s arguments), kept so that a
    preset's resolved values can be read back.
    """

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
    ) -> None:
        self.k, self.nbest = check_positive("beam_size", beam_size), check_positive("nbest", nbest)
        if self.nbest > self.k:
            raise LabError(f"search.nbest={nbest} exceeds search.beam_size={beam_size}; lower it.")
        self.max_len_a, self.max_len_b = (
            float(max_len[0]),
            check_positive("max_len_b", max_len[1], 0),
        )
        check_min_len(processors.min_len, self.max_len_a, self.max_len_b)
        self.penalty, self.stop_rule, self.processors = penalty, stop_rule, processors
        self.rules = rules or BeamRules()
        self.settings = dict(settings or {})

    def __call__(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        with torch.inference_mode():
            return self._search(model, src, src_lengths)

    def _search(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        procs, k, n, dev = self._processors(model), self.k, src.size(0), src.device
        cost = Cost(sentences=n, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n)]
        limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (B,)
        state = model.init_state(model.encode(src, src_lengths), k)
        alive = torch.arange(n, device=dev)  # (n,) original sentence ids
        pool = Pool(n, k, int(limit.max()), model.pad_id, dev)
        prev = torch.full((n * k,), model.bos_id, device=dev)  # (n*K,)
        tokens = prev.new_zeros(n * k, 0)  # (n*K, t) generated so far
        run_score = torch.full((n, k), NEG_INF, device=dev)  # (n, K) processed log-prob sum
        run_score[:, 0] = 0.0  # all beams start identical: expand only the first
        run_logp = torch.zeros(n, k, device=dev)  # (n, K) model log-prob sum
        ended = torch.zeros(n, dtype=torch.long, device=dev)  # (n,) hypotheses ended by EOS
        top_ever = torch.zeros(n, dtype=torch.bool, device=dev)  # (n,) a step's best ended
        t = 0
        while alive.numel():
            t += 1
            log_probs, state = model.step(prev, state)  # (n*K, V)
            cost.count_step(n * k)
            lim = limit[alive]  # (n,)
            proc = apply(procs, log_probs, tokens, t, lim.repeat_interleave(k))  # (n*K, V)
            c = top_candidates(run_score, run_logp, log_probs, proc, model.eos_id)
            at_limit = lim.le(t)  # (n,)
            pool.add_stuck(run_score, run_logp, proc, tokens, t, self.penalty)
            pool.add_step(self._admitted(c, pool), tokens, at_limit, t, self.penalty)
            live_s, live_tok = self._live(c), c.of_live(c.token)  # (n, K)
            top = c.eos[:, 0] & c.score[:, 0].isfinite()  # (n,) the step's best ended
            ended, top_ever = ended + (c.eos & c.score.isfinite())[:, :k].sum(1), top_ever | top
            view = StopView.of(
                pool, live_s[:, 0], t, lim, self.penalty, nbest=self.nbest,
                patience=self.rules.patience, n_ended=ended, top_ended=top, top_ended_ever=top_ever,
            )  # fmt: skip
            done = self.stop_rule(view) | at_limit | live_s[:, 0].isinf()  # (n,)
            rows = (torch.arange(n, device=dev)[:, None] * k + c.of_live(c.beam)).view(-1)
            state = model.reorder(state, rows)  # rows: (n*K,)
            tokens = torch.cat([tokens.index_select(0, rows), live_tok.view(-1, 1)], dim=1)
            prev, run_score, run_logp = live_tok.view(-1), live_s, c.of_live(c.raw)
            if done.any():
                for i in done.nonzero().squeeze(1).tolist():
                    results[int(alive[i])] = pool.hypotheses(i, self.nbest, model.eos_id)
                pool.keep((~done).nonzero().squeeze(1))
                state, per_sentence, (prev, tokens) = drop_sentences(
                    done, k, state, [alive, run_score, run_logp, ended, top_ever], [prev, tokens]
                )
                alive, run_score, run_logp, ended, top_ever = per_sentence
                n = alive.numel()
        return SearchOutput(results, cost)

    def _processors(self, model: DecoderModel) -> list:
        """The processors bound to ``model``'s ids, then EOS forced at the limit if asked."""
        procs, score = self.processors.for_model(model), self.rules.forced_eos
        if score == "model":
            score = "zero" if model_forces_eos(model) else "off"
        if score != "off":
            procs.append(ForcedEOS(0, score, model.eos_id))
        return procs

    def _admitted(self, c: Candidates, pool: Pool) -> Candidates:
        """``c`` as the pool may take it: with ``finalize=first``, EOS candidates past the
        pool's free slots (in rank order, as fairseq's ``finalize_hypos`` takes them) drop out."""
        if self.rules.finalize == "best":
            return c
        ranks = torch.arange(c.score.size(1), device=c.score.device)  # (2K,)
        finishing = c.eos & c.score.isfinite() & (ranks < self.k)  # (n, 2K)
        free = self.k - pool.score.isfinite().sum(1, keepdim=True)  # (n, 1) empty slots
        late = finishing & (finishing.cumsum(1) > free)  # (n, 2K)
        return dataclasses.replace(c, score=c.score.masked_fill(late, NEG_INF))

    def _live(self, c: Candidates) -> Tensor:
        """Running scores ``(n, K)`` of the hypotheses that go on; without ``refill`` only
        those ranked within the top K (the others' slots stay empty this step)."""
        live_s = c.of_live(c.score)
        return live_s if self.rules.refill else live_s.masked_fill(c.live >= self.k, NEG_INF)


def build_beam(
    *,
    beam_size: int,
    nbest: int,
    max_len_a: float,
    max_len_b: int,
    min_len: int,
    stop_rule: str,
    processors: Sequence[Mapping[str, Any]] | None,
    penalty: str = "none",
    alpha: float = 0.0,
    length_offset: int = 0,
    rules: BeamRules | None = None,
    preset: str | None = None,
) -> BeamSearch:
    """A beam search from its settings: the one place ``beam``, ``beam_lp`` and the toolkit
    presets build theirs. The search keeps the settings (``preset`` too) as ``settings``."""
    rules = rules or BeamRules()
    settings = {
        "beam_size": beam_size, "nbest": nbest, "max_len_a": max_len_a, "max_len_b": max_len_b,
        "min_len": min_len, "stop_rule": stop_rule, "processors": list(processors or ()),
        "penalty": penalty, "alpha": alpha, "length_offset": length_offset,
        **dataclasses.asdict(rules), **({"preset": preset} if preset else {}),
    }  # fmt: skip
    if stop_rule == "patience" and math.floor(beam_size * rules.patience + 0.5) < 1:
        raise LabError(
            f"search.patience={rules.patience} x search.beam_size={beam_size} rounds to 0"
            " finished hypotheses; raise search.patience (1 waits for beam_size of them)."
        )
    if stop_rule != "patience" and rules.patience != 1:
        raise LabError(
            f"search.patience={rules.patience} applies only to stop_rule=patience (it is"
            f" {stop_rule}); set search.stop_rule=patience or drop search.patience."
        )
    offset = {"offset": length_offset} if length_offset else {}
    scorer = PENALTIES.build(penalty, alpha=alpha, **offset)
    stop, procs = STOP_RULES.build(stop_rule), Processors(processors, min_len, limits=True)
    return BeamSearch(
        beam_size, nbest, (max_len_a, max_len_b), scorer, stop, procs, rules, settings
    )


@SEARCHES.register("beam")
def beam(
    beam_size: int = 5,
    nbest: int = 1,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    min_len: int = 0,
    stop_rule: str = "first_k",
    processors: Sequence[Mapping[str, Any]] | None = None,
    refill: bool = True,
    finalize: str = "best",
    forced_eos: str = "off",
    patience: float = 1.0,
) -> BeamSearch:
    """Beam search: beam_size, nbest, length limits, stop rule; BeamRules for toolkit rules."""
    return build_beam(
        beam_size=beam_size, nbest=nbest, max_len_a=max_len_a, max_len_b=max_len_b,
        min_len=min_len, stop_rule=stop_rule, processors=processors,
        rules=BeamRules(refill, finalize, forced_eos, patience),
    )  # fmt: skip
