"""Speculative decoding, ``search=speculative``: a small draft model proposes ``gamma`` tokens,
the target model scores the whole block in one ``step_block`` call and keeps the drafts it
agrees with (``lab.search.speculative.verify``), plus one token of its own.

``sample=false``: the output is token for token greedy search on the target; ``sample=true``:
it is distributed as ancestral sampling from the target (PAD and BOS banned, as ``search=
sample`` without processors), per-sentence random streams. Sentences are decoded one at a time
(a block's kept length differs between sentences), as Hugging Face's assisted generation does.
Each hypothesis reports the target's ``logprob``; its ``info`` holds ``accepted`` /
``drafted`` tokens, ``acceptance`` (their ratio), ``target_calls``, ``draft_calls``,
``seconds`` (wall time of the sentence) and ``draft_seconds`` (the part spent on the draft's
side: what a free draft would save). The cost counts a ``step_block`` call as one step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import Tensor

from lab.checkpoint import load_member
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.limits import Limits, check_positive
from lab.search.rng import generators
from lab.search.speculative.draft import Sentence, feed, kept, propose, start
from lab.search.speculative.verify import greedy_verdict, sampled_verdict
from lab.search.types import Cost, Hypothesis, SearchOutput


@SEARCHES.register("speculative")
class Speculative:
    """Speculative decoding: a draft model proposes, the target verifies a block per call."""

    inputs = ("keys",)

    def __init__(
        self,
        draft: str | DecoderModel = "",
        gamma: int = 4,
        sample: bool = False,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        seed: int = 0,
    ) -> None:
        if isinstance(draft, str) and not draft:
            raise LabError(
                "search.draft is empty; name the draft model's checkpoint or run directory, "
                "e.g. search.draft=outputs/small_run."
            )
        self.draft = load_member(draft)[0] if isinstance(draft, str) else draft
        self.gamma, self.sample = check_positive("gamma", gamma), bool(sample)
        self.limits, self.seed = Limits(max_len_a, max_len_b), int(seed)

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None = None,
    ) -> SearchOutput:
        draft = self.draft.to(src.device)
        if draft.tgt_vocab_size != model.tgt_vocab_size:
            raise LabError(
                f"search.draft predicts {draft.tgt_vocab_size} tokens, the model "
                f"{model.tgt_vocab_size}; draft with a model of the same tokenizer."
            )
        limit = torch.minimum(
            self.limits.per_sentence(src_lengths, model),
            self.limits.per_sentence(src_lengths, draft),
        )  # (B,)
        gens = generators(self.seed, keys, src.size(0))
        banned = torch.tensor([model.pad_id, model.bos_id], device=src.device)
        cost, nbest = Cost(sentences=src.size(0)), []
        with torch.inference_mode():
            for i in range(src.size(0)):
                one = (src[i : i + 1, : int(src_lengths[i])], src_lengths[i : i + 1])
                s = Sentence(model, draft, banned, gens[i], src.device)
                nbest.append([self.decode_one(s, one, int(limit[i]), cost)])
        return SearchOutput(nbest, cost)

    def decode_one(
        self, s: Sentence, source: tuple[Tensor, Tensor], limit: int, cost: Cost
    ) -> Hypothesis:
        """One sentence: draft, verify, keep, until EOS or ``limit`` tokens."""
        started, model = time.perf_counter(), s.model
        target_state = model.init_state(model.encode(*source), 1)
        draft_state = start(s, source)
        prev, logprob = model.bos_id, 0.0
        while True:
            g = min(self.gamma, limit - len(s.tokens) - 1)  # the target adds one token more
            d, q, draft_states = propose(s, draft_state, prev, g, self.sample)
            block = torch.tensor([[prev, *d]], device=s.device)  # (1, g+1)
            raw, target_states = model.step_block(block, target_state)  # (1, g+1, V)
            s.target_calls, s.expanded = s.target_calls + 1, s.expanded + g + 1
            p = s.processed(raw[0])  # (g+1, V)
            drafts = torch.tensor(d, dtype=torch.long, device=s.device)  # (g,)
            n, nxt = (
                sampled_verdict(p, q, drafts, s.gen) if self.sample else greedy_verdict(p, drafts)
            )
            s.drafted, s.accepted = s.drafted + g, s.accepted + n
            new = kept([*d[:n], nxt], model.eos_id)
            picked = raw[0, torch.arange(len(new)), torch.tensor(new, device=s.device)]
            logprob += float(picked.double().sum())
            s.tokens.extend(new)
            if new[-1] == model.eos_id or len(s.tokens) >= limit:
                break
            target_state, prev = target_states[n], nxt
            draft_state = draft_states[n] if n < g else feed(s, draft_states[-1], d[-1])
        cost.steps += s.target_calls - 1
        cost.model_calls += s.target_calls + s.draft_calls
        cost.expanded += s.expanded
        toks = tuple(s.tokens)
        return Hypothesis(
            toks, logprob, logprob, len(toks), toks[-1] == model.eos_id, info=s.info(started)
        )
