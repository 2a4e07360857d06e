"""The fast paths of a search step give what the plain computation gives: the two-level top-k
of beam search, the ban processors folded into one fill."""

import pytest
import torch

from lab.search.beam.candidates import BLOCK, _top_of_sums, top_extensions
from lab.search.contracts import apply
from lab.search.processors.constraints import BanTokens, MinLength
from lab.search.processors.warpers import Temperature


def scores(n: int, k: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    run = torch.randn(n, k, generator=g) * 3  # (n, K)
    run[0, 1:] = float("-inf")  # a first step: only the first beam is live
    lp = torch.randn(n * k, vocab, generator=g).log_softmax(-1)  # (n*K, V)
    lp[:, [0, 2]] = float("-inf")  # banned columns
    return run, lp


@pytest.mark.parametrize("vocab", [BLOCK * 40, BLOCK * 40 + 17, 8000, 1000])
@pytest.mark.parametrize("k", [1, 4, 5, 12])
def test_two_levels_give_the_single_topk_scores_and_indices(vocab: int, k: int) -> None:
    for seed in range(3):
        run, lp = scores(7, k, vocab, seed)
        m = 2 * k
        got, want = top_extensions(run, lp, m), _top_of_sums(run, lp, m)
        assert torch.equal(got[0], want[0])
        assert torch.equal(got[1], want[1])


def test_the_winners_can_sit_in_one_block_of_one_beam() -> None:
    run, lp = scores(2, 5, 8000, 0)
    lp[3, 130:140] = 10.0  # sentence 0, beam 3: the ten best, all in block 2
    run[0, 3] = 0.0
    score, idx = top_extensions(run, lp, 10)
    assert sorted(idx[0].tolist()) == [3 * 8000 + t for t in range(130, 140)]
    assert torch.equal(score, _top_of_sums(run, lp, 10)[0])


def test_a_sentence_with_fewer_finite_extensions_than_asked_takes_the_single_topk() -> None:
    run, lp = scores(3, 4, 8000, 1)
    lp[4:8] = float("-inf")  # sentence 1: every extension banned but three
    lp[4, [5, 70, 900]] = -1.0
    got, want = top_extensions(run, lp, 8), _top_of_sums(run, lp, 8)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert got[0][1, :3].isfinite().all() and got[0][1, 3:].isinf().all()


def test_ban_processors_fold_into_one_fill_around_the_others_in_order() -> None:
    lp = torch.randn(4, 30).log_softmax(-1)
    tokens = torch.zeros(4, 0, dtype=torch.long)
    procs = [BanTokens([0, 1]), MinLength(5, eos_id=2), Temperature(0.5), BanTokens([7])]
    want = lp
    for p in procs:
        want = p(want, tokens, 1)
    got = apply(procs, lp, tokens, 1)
    assert torch.equal(got, want)
    assert got[:, [0, 1, 2, 7]].isinf().all() and not lp.isinf().any()  # the input is untouched
    assert apply([MinLength(5, eos_id=2)], lp, tokens, 6) is lp  # nothing to ban: no copy
