"""The inversion that ``sample`` draws with: the same token as a float64 inversion over the
whole vocabulary wherever the uniform is not within rounding of a boundary, never a token of
weight 0, and each token's share of the uniforms equal to its probability, rare tokens
included (which a float32 cumulative sum would get wrong)."""

from __future__ import annotations

import pytest
import torch

from lab.search.sampling.draw import BLOCK, draw, draw_with_total


def reference(log_q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The inversion over one float64 cumulative sum of the whole vocabulary."""
    cdf = log_q.exp().double().cumsum(-1)  # (N, V)
    return torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1)  # (N,)


def rows(vocab: int, n: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    log_q = torch.randn(n, vocab, generator=g) * 3.0  # (N, V)
    log_q[torch.rand(n, vocab, generator=g) < 0.3] = float("-inf")  # weight 0
    return log_q


@pytest.mark.parametrize("vocab", [5, BLOCK, 200, 8003])
def test_the_two_level_inversion_draws_what_the_float64_inversion_draws(vocab):
    log_q = rows(vocab)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        u = torch.rand(log_q.size(0), 1, generator=g, dtype=torch.float64)  # (N, 1)
        tok, total = draw_with_total(log_q, u)
        want = reference(log_q, u)
        assert (tok == want).float().mean() >= 0.99  # off only within rounding of a boundary
        assert torch.isfinite(log_q.gather(1, tok[:, None])).all()  # never a weight-0 token
        assert torch.allclose(total, log_q.exp().double().sum(-1), rtol=1e-6)


def test_uniforms_at_the_ends_draw_the_first_and_last_token_of_positive_weight():
    log_q = rows(300, n=8)
    first = log_q.isfinite().float().argmax(-1)  # (N,)
    last = 299 - log_q.isfinite().flip(-1).float().argmax(-1)  # (N,)
    zeros, ones = torch.zeros(8, 1, dtype=torch.float64), torch.full((8, 1), 1 - 2**-53)
    assert torch.equal(draw(log_q, zeros), first)
    assert torch.equal(draw(log_q, ones.double()), last)


def share_of_uniforms(log_q: torch.Tensor, token: int) -> float:
    """The length of the set of uniforms that draw ``token`` (draws are monotone in u)."""

    def first_u(at_least: int) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(80):
            mid = (lo + hi) / 2
            if int(draw(log_q, torch.tensor([[mid]], dtype=torch.float64))[0]) >= at_least:
                hi = mid
            else:
                lo = mid
        return hi

    return first_u(token + 1) - first_u(token)


def test_a_token_a_trillion_times_rarer_than_its_neighbour_keeps_its_probability():
    log_q = torch.full((1, 300), -2.0)  # (1, V)
    log_q[0, 130], log_q[0, 131] = 3.0, 3.0 - 27.6  # 131: weight 1e-12 of 130's, same block
    p = log_q.double().exp()[0]
    share = share_of_uniforms(log_q, 131)
    assert share == pytest.approx(float(p[131] / p.sum()), rel=1e-4)
    cdf32 = log_q.exp().cumsum(-1)[0]  # a float32 cumulative sum cannot even tell it apart
    assert cdf32[131] == cdf32[130]
