"""The decoding driver takes a new step-by-step search as its selection rule alone: top-2
sampling, written here in full on ``lab.search.driver``, decodes and draws each output with the
probability that enumerating the top-2 process gives it."""

from __future__ import annotations

import itertools
import math

import torch

from lab.registry import MODELS
from lab.search.driver import Move, Step, decode
from lab.search.limits import Limits
from lab.search.processors.chain import Processors
from lab.search.rng import generators, uniform
from lab.search.types import Hypothesis, SearchOutput

VOCAB, MAX_LEN, N = 9, 3, 3000


class Top2:
    """Top-2 sampling: each step draws one of the two best tokens, renormalized."""

    def __init__(self, procs: list, gens: list[torch.Generator], eos: int) -> None:
        self.processors, self.gens, self.eos = procs, gens, eos
        self.logp = torch.zeros(len(gens), dtype=torch.float64)  # (n,) model log-prob

    def advance(self, step: Step) -> Move:
        top, tok = step.processed.topk(2, dim=-1)  # (n, 2)
        u = uniform(self.gens, 1, 1, top.device)  # (n, 1)
        pick = (u > top.double().softmax(-1)[:, :1]).long()  # (n, 1) 1: the second
        tok = tok.gather(1, pick).squeeze(1)  # (n,)
        self.logp += step.log_probs.gather(1, tok[:, None]).squeeze(1).double()
        return Move(tok, tok.eq(self.eos) | step.limit.le(step.t))

    def finish(self, sentences: torch.Tensor, tokens: torch.Tensor) -> list[list[Hypothesis]]:
        out = [(tuple(tokens[i].tolist()), float(self.logp[i])) for i in sentences.tolist()]
        return [[Hypothesis(t, lp, lp, len(t), t[-1] == self.eos)] for t, lp in out]

    def keep(self, sentences: torch.Tensor, rows: torch.Tensor) -> None:
        self.logp, self.gens = self.logp[sentences], [self.gens[i] for i in sentences.tolist()]


def top2(model, src, lens, keys) -> SearchOutput:  # noqa: ANN001
    procs, gens = Processors().for_model(model), generators(0, keys, src.size(0))
    with torch.inference_mode():
        start = lambda limit: Top2(procs, gens, model.eos_id)  # noqa: E731
        return decode(model, src, lens, Limits(0.0, MAX_LEN), 1, start)


def tiny_gru():
    torch.manual_seed(3)
    model = MODELS.build("gru", VOCAB, VOCAB, emb_dim=16, hidden=16, num_layers=1, dropout=0.0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(2.0)
    return model.eval()


def enumerate_top2(model, src, lens) -> dict[tuple[int, ...], float]:  # noqa: ANN001
    """Every output of top-2 sampling with its probability, from teacher-forced log-probs."""
    out: dict[tuple[int, ...], float] = {}
    frontier: list[tuple[tuple[int, ...], float]] = [((), 1.0)]
    while frontier:
        prefix, p = frontier.pop()
        prev = torch.tensor([[model.bos_id, *prefix]])  # (1, t)
        with torch.no_grad():
            lp = torch.log_softmax(model(src, lens, prev).float(), -1)[0, -1]  # (V,)
        lp[[model.pad_id, model.bos_id]] = -math.inf
        top, tok = lp.topk(2)
        for q, t in zip(top.double().softmax(-1).tolist(), tok.tolist(), strict=True):
            seq = (*prefix, t)
            if t == model.eos_id or len(seq) == MAX_LEN:
                out[seq] = out.get(seq, 0.0) + p * q
            else:
                frontier.append((seq, p * q))
    return out


def test_top2_on_the_driver_draws_the_enumerated_distribution() -> None:
    model = tiny_gru()
    src, lens = torch.tensor([[4, 5, 6, 7]]), torch.tensor([4])
    expected = enumerate_top2(model, src, lens)
    assert math.isclose(sum(expected.values()), 1.0, rel_tol=1e-9)
    got = top2(model, src.repeat(N, 1), lens.repeat(N), list(range(N)))
    counts: dict[tuple[int, ...], int] = {}
    for [h] in got.nbest:
        counts[h.tokens] = counts.get(h.tokens, 0) + 1
    assert set(counts) <= set(expected)  # every output is one the top-2 process can reach
    for seq, p in expected.items():
        tolerance = 4 * math.sqrt(p * (1 - p) / N) + 1e-3
        assert abs(counts.get(seq, 0) / N - p) <= tolerance, (seq, counts.get(seq, 0) / N, p)
    # the model's own log-prob of each output, as teacher forcing scores it
    for h in itertools.islice((nb[0] for nb in got.nbest), 20):
        with torch.no_grad():
            forced = model.token_log_probs(src, lens, torch.tensor([h.tokens])).sum()
        assert math.isclose(h.logprob, float(forced), abs_tol=1e-4)
    assert got.cost.sentences == N and got.cost.steps <= MAX_LEN
