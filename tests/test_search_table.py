"""Search on hand-built transition tables: exact beams and scores, each penalty, each stop rule."""

import itertools
import math

import pytest
import torch

from lab.registry import SEARCHES
from tests.helpers.table_model import EOS, A, B, C, D, TableModel

SRC = torch.tensor([[5, 5, 5]])
LEN = torch.tensor([3])


def run(table, name="beam", **kw):
    kw.setdefault("max_len_a", 0)
    kw.setdefault("max_len_b", 6)
    return SEARCHES.build(name, **kw)(TableModel(table), SRC, LEN).nbest[0]


# greedy is lured by a likely first word; beam 2 finds the better sentence
GARDEN_PATH = {
    (): {A: 0.5, B: 0.4, EOS: 0.1},
    (A,): {C: 0.4, D: 0.3, EOS: 0.3},
    (B,): {EOS: 0.9, C: 0.1},
    (A, C): {EOS: 1.0},
    (A, D): {EOS: 1.0},
    (B, C): {EOS: 1.0},
}


def test_greedy_follows_the_locally_best_token():
    (hyp,) = run(GARDEN_PATH, "greedy")
    assert hyp.tokens == (A, C, EOS)
    assert hyp.logprob == pytest.approx(math.log(0.5 * 0.4))
    assert hyp.length == 3 and hyp.finished


def test_beam_two_finds_the_better_sentence_with_exact_score():
    hyps = run(GARDEN_PATH, beam_size=2, nbest=2)
    assert [h.tokens for h in hyps] == [(B, EOS), (A, C, EOS)]
    assert [h.logprob for h in hyps] == pytest.approx([math.log(0.36), math.log(0.2)])
    assert [h.score for h in hyps] == pytest.approx([math.log(0.36), math.log(0.2)])


# a short sentence against a long one: the penalty decides
SHORT_OR_LONG = {
    (): {EOS: 0.3, A: 0.7},
    (A,): {B: 0.9, EOS: 0.1},
    (A, B): {C: 0.9, EOS: 0.1},
    (A, B, C): {EOS: 0.176, D: 0.824},
}
SHORT, LONG = (EOS,), (A, B, C, EOS)


@pytest.mark.parametrize(
    ("penalty", "alpha", "winner"),
    [
        ("none", 0.0, SHORT),  # log .3 = -1.20 beats log(.7*.5*.5*.57) = -2.30
        ("average", 1.0, LONG),  # -2.30 / 4 = -0.58 beats -1.20 / 1
        ("gnmt", 1.0, SHORT),  # -2.30 / 1.5 = -1.54 loses to -1.20 / 1
        ("gnmt", 3.0, LONG),  # -2.30 / 3.375 = -0.68 beats -1.20
        ("word_reward", 0.5, LONG),  # -2.30 + 2.0 beats -1.20 + 0.5
        ("word_reward", 0.2, SHORT),  # -2.30 + 0.8 loses to -1.20 + 0.2
    ],
)
def test_each_length_penalty_picks_its_winner(penalty, alpha, winner):
    name = "beam" if penalty == "none" else "beam_lp"
    kw = {} if penalty == "none" else {"penalty": penalty, "alpha": alpha}
    (hyp,) = run(SHORT_OR_LONG, name, beam_size=3, stop_rule="canonical", **kw)
    assert hyp.tokens == winner
    logp = math.log(0.3) if winner == SHORT else math.log(0.7 * 0.9 * 0.9 * 0.176)
    assert hyp.logprob == pytest.approx(logp)
    n = len(winner)
    expected = {
        "none": logp,
        "average": logp / n**alpha,
        "gnmt": logp / ((5 + n) / 6) ** alpha,
        "word_reward": logp + alpha * n,
    }[penalty]
    assert hyp.score == pytest.approx(expected)


# two hypotheses finish early, but a live one would win later
LATE_WINNER = {
    (): {A: 0.6, EOS: 0.25, B: 0.15},
    (A,): {D: 0.7, EOS: 0.3},
    (B,): {EOS: 1.0},
    (A, D): {EOS: 1.0},
}


def test_first_k_stops_as_soon_as_k_hypotheses_are_finished():
    hyps = run(LATE_WINNER, beam_size=2, nbest=2, stop_rule="first_k")
    assert [h.tokens for h in hyps] == [(EOS,), (A, EOS)]


def test_canonical_rule_keeps_going_while_a_live_hypothesis_can_still_win():
    hyps = run(LATE_WINNER, beam_size=2, nbest=2, stop_rule="canonical")
    assert [h.tokens for h in hyps] == [(A, D, EOS), (EOS,)]
    assert hyps[0].logprob == pytest.approx(math.log(0.42))


def test_hypotheses_cut_at_the_length_limit_are_returned_unfinished():
    loop = {(A,) * i: {A: 0.9, EOS: 0.1} for i in range(10)}
    (g,) = run(loop, "greedy", max_len_b=4)
    assert g.tokens == (A, A, A, A) and not g.finished
    assert g.logprob == pytest.approx(4 * math.log(0.9))
    (b,) = run(loop, beam_size=1, max_len_b=4)
    assert b == g


def test_min_length_forbids_early_eos_but_reports_model_logprob():
    (hyp,) = run(GARDEN_PATH, beam_size=2, min_len=3)
    assert hyp.tokens == (A, C, EOS)
    assert hyp.logprob == pytest.approx(math.log(0.2))


def test_nbest_lists_are_sorted_and_distinct():
    hyps = run(GARDEN_PATH, beam_size=4, nbest=4, stop_rule="canonical")
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert len({h.tokens for h in hyps}) == len(hyps)


def test_no_repeat_ngram_blocks_a_repeated_bigram():
    table = {p: {A: 0.6, B: 0.3, EOS: 0.1} for p in [()]}
    for p in itertools.product([A, B], repeat=3):
        for i in range(4):
            table.setdefault(p[:i], {A: 0.6, B: 0.3, EOS: 0.1})
    (plain,) = run(table, "greedy", max_len_b=4)
    (blocked,) = run(table, "greedy", max_len_b=4, processors=[{"name": "no_repeat_ngram", "n": 2}])
    assert plain.tokens == (A, A, A, A)
    assert blocked.tokens[:3] == (A, A, B)


def test_cost_counters_count_steps_calls_and_expansions():
    out = SEARCHES.build("beam", beam_size=2, max_len_a=0, max_len_b=6)(
        TableModel(GARDEN_PATH), SRC, LEN
    )
    assert out.cost.steps == 3 and out.cost.model_calls == 4 and out.cost.expanded == 6
