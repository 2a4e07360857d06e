"""One sentence of speculative decoding: its models, random stream and counters
(``Sentence``), and the draft's side, timed into ``draft_seconds``: encoding (``start``),
proposing a block (``propose``), catching up after a fully kept block (``feed``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lab.models.base import DecoderModel, State
from lab.search.rng import uniform
from lab.search.sampling.draw import draw
from lab.search.types import NEG_INF


def kept(tokens: list[int], eos: int) -> list[int]:
    """``tokens`` up to their first EOS (included): a kept draft may be EOS."""
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


@dataclass
class Sentence:
    """One sentence being decoded: the models, its random stream and its counters."""

    model: DecoderModel
    draft: DecoderModel
    banned: Tensor  # (2,) PAD and BOS, never generated
    gen: torch.Generator
    device: torch.device
    tokens: list[int] = field(default_factory=list)
    drafted: int = 0
    accepted: int = 0
    target_calls: int = 1  # the encode call
    draft_calls: int = 1
    expanded: int = 0
    draft_seconds: float = 0.0  # wall time on the draft's side: encode, proposals, catch-ups

    def processed(self, log_probs: Tensor) -> Tensor:
        """Log-probs ``(N, V)`` of any positions with PAD and BOS banned, the one rule that
        speculative decoding applies (as ``search=sample`` without processors): it does not
        depend on the prefix, so a drafted block is processed in one call."""
        return log_probs.index_fill(-1, self.banned, NEG_INF)

    def info(self, started: float) -> dict[str, float]:
        return {
            "accepted": float(self.accepted), "drafted": float(self.drafted),
            "acceptance": self.accepted / self.drafted if self.drafted else 0.0,
            "target_calls": float(self.target_calls), "draft_calls": float(self.draft_calls),
            "seconds": time.perf_counter() - started, "draft_seconds": self.draft_seconds,
        }  # fmt: skip


def propose(
    s: Sentence, state: State, prev: int, g: int, sample: bool
) -> tuple[list[int], Tensor, list[State]]:
    """``g`` drafted tokens, the draft's processed log-probs they came from ``(g, V)`` and
    its states after feeding ``prev`` and then each of the first g-1 drafts."""
    started = time.perf_counter()
    toks: list[int] = []
    dists, states = [], []
    for _ in range(g):
        lp, state = s.draft.step(torch.tensor([prev], device=s.device), state)  # (1, V)
        s.draft_calls += 1
        q = s.processed(lp)  # (1, V)
        if sample:
            prev = int(draw(q.double().log_softmax(-1), uniform([s.gen], 1, 1, s.device))[0])
        else:
            prev = int(q[0].max(dim=-1).indices)
        toks.append(prev)
        dists.append(q)
        states.append(state)
    empty = torch.zeros(0, s.model.tgt_vocab_size, device=s.device)
    s.draft_seconds += time.perf_counter() - started
    return toks, torch.cat(dists) if dists else empty, states


def feed(s: Sentence, state: State, token: int) -> State:
    """The draft's state after one more token (every draft was kept)."""
    started = time.perf_counter()
    s.draft_calls += 1
    state = s.draft.step(torch.tensor([token], device=s.device), state)[1]
    s.draft_seconds += time.perf_counter() - started
    return state


def start(s: Sentence, source: tuple[Tensor, Tensor]) -> State:
    """The draft's first state: the source encoded (counted in ``draft_calls`` already)."""
    started = time.perf_counter()
    state = s.draft.init_state(s.draft.encode(*source), 1)
    s.draft_seconds += time.perf_counter() - started
    return state
