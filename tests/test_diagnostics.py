"""Diagnostics of n-best lists and samples, each on small hand-built lists whose values are
worked out by hand, and their place in the evaluator: reported for a run whose lists hold
several outputs, absent for a run with one output per source."""

from __future__ import annotations

import pytest
import torch

import lab  # noqa: F401  (registers the searches and models)
from lab.data import Pair
from lab.evaluate import evaluate
from lab.metrics.diversity import (
    distinct_n,
    dup_rate,
    list_diagnostics,
    oracle_bleu,
    repeats_ngram,
    repetition_rate,
    self_bleu,
)
from lab.registry import MODELS, SEARCHES
from lab.tasks.base import Example
from lab.vocab import EOS_ID

KEYS = {
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "distinct_4",
    "self_bleu",
    "repetition_rate",
    "repetition_rate_all",
    "oracle_bleu",
    "dup_rate",
    "nbest_size",
}


def test_distinct_n_is_the_share_of_distinct_ngrams_within_a_list_averaged_over_lists():
    lists = [["a b a b", "a b c"], ["x", "x"]]
    # list 1 unigrams: a b a b + a b c = 7, distinct {a, b, c}; list 2: x x = 2, distinct {x}
    assert distinct_n(lists, 1) == pytest.approx((3 / 7 + 1 / 2) / 2)
    # list 1 bigrams: ab ba ab + ab bc = 5, distinct 3; list 2 has none: left out
    assert distinct_n(lists, 2) == pytest.approx(3 / 5)
    # list 1 trigrams: aba bab + abc, all distinct; 4-grams: abab alone
    assert distinct_n(lists, 3) == 1.0 and distinct_n(lists, 4) == 1.0
    assert distinct_n([["a"], ["b c"]], 3) == 0.0  # nothing to measure


def test_self_bleu_scores_each_entry_against_the_rest_of_its_list():
    # "a b c d" vs "a b c e": 1- to 3-gram precisions 3/4, 2/3, 1/2; no 4-gram matches of 1,
    # which sacreBLEU's exp smoothing counts as 1/2; same lengths: no brevity penalty
    one_word_apart = 100 * (3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** (1 / 4)
    assert self_bleu([["a b c d", "a b c e"]]) == pytest.approx(one_word_apart)
    assert self_bleu([["a b c d", "a b c e"], ["a single entry"]]) == pytest.approx(one_word_apart)
    # "a b" twice finds itself among the others (100); "c d" shares nothing (0)
    assert self_bleu([["a b", "a b", "c d"]]) == pytest.approx(200 / 3)
    assert self_bleu([["x y", "x y"], ["p q", "r s"]]) == pytest.approx(50.0)


def test_an_output_repeats_an_ngram_when_one_occurs_twice_overlaps_included():
    assert repeats_ngram("a b c d a b c d")
    assert repeats_ngram("a a a a a")  # "a a a a" at positions 0 and 1
    assert not repeats_ngram("a a a a")  # a single 4-gram
    assert not repeats_ngram("a b c d e a b c")  # abcd bcde cdea deab eabc
    assert repeats_ngram("x y x y", n=2) and not repeats_ngram("x y x z", n=2)


def test_repetition_rate_is_the_share_of_outputs_that_repeat_a_4gram():
    lists = [["a a a a a", "a a a a a b"], ["p q r s", "p q r s p q r s"], ["z", "z z"]]
    assert repetition_rate([entries[0] for entries in lists]) == pytest.approx(1 / 3)
    assert repetition_rate([t for entries in lists for t in entries]) == pytest.approx(3 / 6)
    got = list_diagnostics(lists, [["r"]] * 3)
    assert got["repetition_rate"] == pytest.approx(1 / 3)
    assert got["repetition_rate_all"] == pytest.approx(1 / 2)


def test_oracle_bleu_is_the_corpus_bleu_of_each_lists_best_entry():
    lists = [["x y z", "the cat sat on the mat"], ["a dog runs fast", "q"]]
    refs = [["the cat sat on the mat"], ["the dog", "a dog runs fast"]]
    assert oracle_bleu(lists, refs) == pytest.approx(100.0)  # the picks are references
    assert oracle_bleu([["x y z"], ["q"]], refs) == 0.0


def test_dup_rate_counts_entries_equal_to_an_earlier_entry_of_their_list():
    assert dup_rate([["a", "a", "b"], ["c", "c", "c"], ["d"]]) == pytest.approx(3 / 7)
    assert dup_rate([["a b", "a  b"]]) == 0.0  # different texts


def test_list_diagnostics_need_a_list_with_more_than_one_entry_repetition_does_not():
    one_each = [["a b c d a b c d"], ["c"]]
    assert list_diagnostics(one_each, [["x"], ["c"]]) == {"repetition_rate": 0.5}
    got = list_diagnostics([["a b", "a b", "c"], ["d"]], [["a b"], ["d"]])
    assert set(got) == KEYS
    assert got["nbest_size"] == 2.0 and got["dup_rate"] == pytest.approx(1 / 4)


# ---------------------------------------------------------------------------------------------
# in the evaluator

WORDS = "<pad> <s> </s> <unk> the a cat dog sat ran on in mat park".split()


class Words:
    """A tokenizer of the words above: one id per word."""

    eos_id = EOS_ID

    def encode(self, text: str) -> list[int]:
        return [WORDS.index(w) for w in text.split()]

    def decode(self, ids) -> str:
        return " ".join(WORDS[i] for i in ids if i > 3)


@pytest.fixture(scope="module")
def corpus():
    torch.manual_seed(0)
    v = len(WORDS)
    model = MODELS.build(
        "transformer", v, v, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, dropout=0
    ).eval()
    texts = ["the cat sat", "a dog ran in the park", "the dog sat on the mat"]
    examples = [Example(f"t{i}", t, t, (t,)) for i, t in enumerate(texts)]
    tok = Words()
    pairs = [
        Pair(i, (*tok.encode(t), EOS_ID), (*tok.encode(t), EOS_ID)) for i, t in enumerate(texts)
    ]
    return model, examples, pairs, tok


def run(corpus, search):
    model, examples, pairs, tok = corpus
    return evaluate(model, search, examples, pairs, tok, ["bleu"], 2, torch.device("cpu"), True)


def test_a_beam_run_with_nbest_lists_reports_their_diagnostics(corpus):
    result = run(corpus, SEARCHES.build("beam", beam_size=3, nbest=3, max_len_a=0, max_len_b=6))
    assert KEYS <= set(result.metrics)
    lists = [[e["hyp"] for e in row["nbest"]] for row in result.predictions]
    refs = [[row["ref"]] for row in result.predictions]
    assert result.metrics["nbest_size"] == sum(map(len, lists)) / len(lists) > 1
    for key, value in list_diagnostics(lists, refs).items():
        assert result.metrics[key] == pytest.approx(value), key


def test_a_greedy_run_reports_no_list_diagnostics_only_its_repetition_rate(corpus):
    result = run(corpus, SEARCHES.build("greedy", max_len_a=0, max_len_b=6))
    assert KEYS & set(result.metrics) == {"repetition_rate"}
