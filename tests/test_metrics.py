"""Metrics against hand-computed values and sacrebleu itself."""

from __future__ import annotations

import math

import pytest
from sacrebleu.metrics import BLEU, CHRF, TER

from lab.errors import LabError
from lab.metrics import compute_metrics
from lab.metrics.length import LengthStats
from lab.metrics.qa import Babi, BabiOrdered, Squad, answer_set, normalize_answer, squad_f1
from lab.metrics.translation import Bleu, Chrf, Ter, ref_streams
from lab.registry import METRICS, Entry

CORPUS = ["the cat sat on the mat", "a dog barked at the mailman"]


def test_all_metrics_registered_with_descriptions():
    for name in ("bleu", "chrf", "ter", "squad", "babi", "length"):
        assert name in METRICS
    descriptions = {e.name: e.description for e in METRICS.entries()}
    assert all(descriptions[n] for n in ("bleu", "chrf", "ter", "squad", "babi", "length"))


# --------------------------------------------------------------------------------------- BLEU


def test_bleu_identical_corpus_is_100():
    out = Bleu().compute(CORPUS, [[r] for r in CORPUS])
    assert out["bleu"] == pytest.approx(100.0)
    assert out["bleu_tok_lc"] == pytest.approx(100.0)
    assert out["bleu_bp"] == pytest.approx(1.0)
    assert out["bleu_sys_len"] == out["bleu_ref_len"] == 12


def test_bleu_hand_computed_precisions():
    # 1..4-gram precisions 6/7, 5/6, 4/5, 3/4, no brevity penalty -> (3/7) ** (1/4)
    out = Bleu().compute(["the cat sat on the mat today"], [["the cat sat on the mat"]])
    assert out["bleu"] == pytest.approx(100 * (3 / 7) ** 0.25)
    assert out["bleu_bp"] == pytest.approx(1.0)


def test_bleu_brevity_penalty():
    # all precisions 1, hyp 5 tokens vs ref 6 -> BP = exp(1 - 6/5)
    out = Bleu().compute(["the cat sat on the"], [["the cat sat on the mat"]])
    assert out["bleu_bp"] == pytest.approx(math.exp(-0.2))
    assert out["bleu"] == pytest.approx(100 * math.exp(-0.2))
    assert (out["bleu_sys_len"], out["bleu_ref_len"]) == (5, 6)


def test_bleu_matches_sacrebleu_and_signatures():
    hyps = ["The cat sat on the mat .", "A dog barked at a postman ."]
    refs = [["the cat sat on the mat ."], ["a dog barked at the mailman ."]]
    out = Bleu().compute(hyps, refs)
    cased = BLEU()
    assert out["bleu"] == pytest.approx(cased.corpus_score(hyps, [[r[0] for r in refs]]).score)
    assert out["bleu_signature"] == str(cased.get_signature())
    assert "case:mixed" in out["bleu_signature"] and "tok:13a" in out["bleu_signature"]
    assert "case:lc" in out["bleu_tok_lc_signature"]
    assert out["bleu_tok_lc"] > out["bleu"]


def test_bleu_lowercase_variant_ignores_case():
    out = Bleu().compute(["The Cat Sat On The Mat"], [["the cat sat on the mat"]])
    assert out["bleu_tok_lc"] == pytest.approx(100.0)
    assert out["bleu"] < 50


def test_variable_reference_counts_use_every_reference():
    hyps = ["a b c d e", "f g h i j"]
    refs = [["a b c d e"], ["x y z w v", "f g h i j"]]
    assert ref_streams(refs) == [["a b c d e", "x y z w v"], [None, "f g h i j"]]
    out = Bleu().compute(hyps, refs)
    assert out["bleu"] == pytest.approx(100.0)
    assert "nrefs:var" in out["bleu_signature"]


# ---------------------------------------------------------------------------------- chrF, TER


def test_chrf_sanity():
    refs = [[r] for r in CORPUS]
    assert Chrf().compute(CORPUS, refs)["chrf"] == pytest.approx(100.0)
    partial = Chrf().compute(["the cat sat", "a dog"], refs)
    assert 0 < partial["chrf"] < 100
    assert partial["chrf"] == pytest.approx(
        CHRF().corpus_score(["the cat sat", "a dog"], [CORPUS]).score
    )
    assert Chrf().compute(["qqqq", "zzzz"], refs)["chrf"] < 5
    assert partial["chrf_signature"].startswith("nrefs:1|")


def test_ter_sanity():
    refs = [["the cat sat on the mat"]]
    assert Ter().compute(["the cat sat on the mat"], refs)["ter"] == pytest.approx(0.0)
    out = Ter().compute(["the dog sat on the mat"], refs)  # 1 edit / 6 reference words
    assert out["ter"] == pytest.approx(100 / 6)
    assert out["ter"] == pytest.approx(
        TER().corpus_score(["the dog sat on the mat"], [["the cat sat on the mat"]]).score
    )
    assert "tok:tercom" in out["ter_signature"]


# -------------------------------------------------------------------------------------- SQuAD


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The  Cat!", "cat"),
        ("Hello, the World!", "hello world"),
        ("an apple a day", "apple day"),
        ("the-cat", "thecat"),  # punctuation goes first, so no article is left to remove
        ("theatre", "theatre"),
        ("  A  ", ""),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_squad_exact_match_after_normalization():
    assert Squad().compute(["The  Cat!"], [["cat"]]) == {"em": 100.0, "f1": 100.0}


def test_squad_partial_f1():
    # [big, red, cat] vs [red, cat, sat]: 2 shared, P = R = 2/3
    assert squad_f1("the big red cat", "a red cat sat") == pytest.approx(2 / 3)
    out = Squad().compute(["the big red cat"], [["a red cat sat"]])
    assert out["em"] == 0.0
    assert out["f1"] == pytest.approx(200 / 3)


def test_squad_f1_counts_repeated_tokens_once_per_match():
    # Counter intersection: min(2, 1) = 1 shared token; P = 1/2, R = 1
    assert squad_f1("paris paris", "paris") == pytest.approx(2 / 3)


def test_squad_max_over_gold_answers_and_mean():
    out = Squad().compute(["Paris", "blue whale"], [["London", "paris"], ["whale shark"]])
    assert out["em"] == pytest.approx(50.0)
    assert out["f1"] == pytest.approx((100 + 50) / 2)


def test_squad_empty_after_normalization_follows_official_script():
    # both normalize to "" -> equal for EM, but no shared token so F1 = 0
    assert Squad().compute(["the"], [["a"]]) == {"em": 100.0, "f1": 0.0}


# --------------------------------------------------------------------------------------- bAbI


def test_babi_answers_compare_as_sets():
    assert answer_set("football, apple") == answer_set("apple,football")
    hyps = ["apple , football", "kitchen", "apple", "Kitchen"]
    refs = [["football,apple"], ["kitchen"], ["apple,football"], ["kitchen"]]
    out = Babi().compute(hyps, refs)
    assert out["accuracy"] == pytest.approx(50.0)
    assert out["error"] == pytest.approx(50.0)


def test_babi_paths_compare_in_order():
    """Task 19's answers are routes: the same directions in another order are wrong."""
    hyps, refs = ["s,e", "e,s", "n, n", "w"], [["s,e"], ["s,e"], ["n,n"], ["w,w"]]
    assert BabiOrdered().compute(hyps, refs) == {"accuracy": 50.0, "error": 50.0}
    assert Babi().compute(hyps, refs)["accuracy"] == 100.0  # as sets, e,s == s,e and w == w,w


def test_babi_task_19_is_scored_in_order():
    from lab.tasks.babi import BAbI

    assert BAbI("data", "cache", task_id=19).default_metrics == ("squad", "babi_ordered")
    assert BAbI("data", "cache", task_id=8).default_metrics == ("squad", "babi")


def test_babi_any_reference_counts():
    assert Babi().compute(["no"], [["yes", "no"]]) == {"accuracy": 100.0, "error": 0.0}


# ------------------------------------------------------------------------------------- length


def test_length_stats_with_empty_hyp_and_closest_reference():
    hyps = ["a b c", "", "d e"]
    refs = [["a b c d"], ["x"], ["d e f g h", "d e"]]
    out = LengthStats().compute(hyps, refs)
    assert out["len_ratio"] == pytest.approx(5 / 7)  # refs chosen: 4, 1, 2 tokens
    assert out["empty_rate"] == pytest.approx(1 / 3)
    assert out["mean_hyp_len"] == pytest.approx(5 / 3)
    assert out["mean_ref_len"] == pytest.approx(7 / 3)


def test_length_ties_go_to_the_shorter_reference():
    out = LengthStats().compute(["a b c"], [["a b c d", "a b"]])
    assert out["mean_ref_len"] == 2
    assert out["len_ratio"] == pytest.approx(1.5)


def test_length_all_empty_references_give_no_ratio_not_nan():
    out = LengthStats().compute(["", " "], [[""], [""]])
    assert out["len_ratio"] is None  # undefined: null in results.json, never NaN
    assert out["empty_rate"] == 1.0


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("metric", ["bleu", "chrf", "ter", "squad", "babi", "length"])
def test_count_mismatch_raises_value_error(metric):
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference lists"):
        METRICS.build(metric).compute(["a", "b"], [["a"]])


def test_bad_inputs_are_rejected_clearly():
    with pytest.raises(ValueError, match="empty"):
        Bleu().compute([], [])
    with pytest.raises(ValueError, match="example 1 has no reference"):
        Squad().compute(["a", "b"], [["a"], []])
    with pytest.raises(TypeError, match=r"wrap a single reference as \[ref\]"):
        Bleu().compute(["a b"], ["a b"])  # type: ignore[list-item]


# ---------------------------------------------------------------------------- compute_metrics


def test_compute_metrics_merges_outputs():
    refs = [[r] for r in CORPUS]
    out = compute_metrics(["bleu", "chrf", "length", "bleu"], CORPUS, refs)
    assert out["bleu"] == pytest.approx(100.0)
    assert out["chrf"] == pytest.approx(100.0)
    assert out["len_ratio"] == pytest.approx(1.0)
    assert {"bleu_signature", "chrf_signature", "empty_rate"} <= set(out)


def test_compute_metrics_unknown_name_lists_choices():
    with pytest.raises(LabError, match="Did you mean 'bleu'.*Valid choices: .*chrf"):
        compute_metrics(["bleuu"], ["a"], [["a"]])


def test_compute_metrics_rejects_key_collisions(monkeypatch):
    monkeypatch.setitem(METRICS._entries, "bleu_again", Entry("bleu_again", Bleu, "copy"))
    with pytest.raises(ValueError, match="both produce 'bleu'"):
        compute_metrics(["bleu", "bleu_again"], ["a b c d"], [["a b c d"]])
