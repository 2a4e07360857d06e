"""Constraint rates of a decoded split, checked on the output ids, and the text after a forced
prefix; task=multi30k reads the same side file as task=parallel without changing its training."""

import gzip

import pytest

from lab.errors import LabError
from lab.metrics.constraint_check import constraint_rates, contains, prefix_rests
from lab.search.types import Constraints
from lab.tasks.constraints import TextConstraints
from lab.tasks.multi30k import Multi30k


def test_a_phrase_is_found_only_as_a_contiguous_run():
    assert contains((1, 2, 3, 4), (2, 3)) and contains((1, 2), (1, 2)) and contains((5,), ())
    assert not contains((1, 2, 3), (1, 3)) and not contains((1,), (1, 2))


def test_rates_count_only_examples_with_a_prefix_or_phrases():
    cons = [
        Constraints((), ((2, 3), (7,))),  # one of two phrases: not met
        Constraints((1,), ((4,),)),  # prefix and phrase: met
        Constraints((9,), ()),  # prefix missing: not met
        None,  # nothing to meet: not counted
        Constraints(allowed=((1,),)),  # a trie restriction: not counted here
    ]
    outs = [(1, 2, 3), (1, 4), (8, 9), (5,), (2,)]
    assert constraint_rates(cons, outs) == {"constraints_met": 1 / 3, "phrases_met": 2 / 3}
    assert constraint_rates([None, Constraints(allowed=((1,),))], [(1,), (2,)]) == {}


def test_the_rest_is_what_follows_the_prefix_on_both_sides():
    hyps, refs = prefix_rests(
        ["A man", "", "A dog"],
        ["A man rides a bike .", "Two cats .", "The dog runs ."],
        [["A man is riding a bike ."], ["Two cats sleep ."], ["A dog runs ."]],
    )
    assert hyps == ["rides a bike .", "The dog runs ."]  # the one without the prefix stays whole
    assert refs == [["is riding a bike ."], ["runs ."]]


def multi30k(tmp_path, lines: list[str] | None, **options):
    root = tmp_path / "multi30k"
    root.mkdir(exist_ok=True)
    for lang, words in (("de", "ein Hund"), ("en", "a dog")):
        with gzip.open(root / f"test_2016_flickr.{lang}.gz", "wt") as f:
            f.write(f"{words} 0\n{words} 1\n")
    if lines is not None:
        (tmp_path / "c.jsonl").write_text("".join(f"{line}\n" for line in lines))
        options["constraints_path"] = "c.jsonl"
    return Multi30k(tmp_path, tmp_path / "cache", **options)


def test_multi30k_attaches_the_side_files_constraints_to_its_test_split(tmp_path):
    task = multi30k(tmp_path, ['{"include": ["dog"]}', '{"prefix": "a"}'])
    first, second = task.examples("test_2016_flickr")
    assert first.constraints == TextConstraints("", ("dog",)) and first.refs == ("a dog 0",)
    assert second.constraints == TextConstraints("a")


def test_multi30k_constraints_leave_the_training_signature_alone(tmp_path):
    plain = multi30k(tmp_path, None)
    constrained = multi30k(tmp_path, ["{}", "{}"])
    assert plain.signature() == constrained.signature()  # the cached model is reused
    assert plain.examples("test_2016_flickr")[0].constraints is None


def test_multi30k_names_a_missing_constraints_file_and_how_to_write_one(tmp_path):
    task = multi30k(tmp_path, None, constraints_path="nowhere.jsonl")
    with pytest.raises(LabError, match="constraints file not found.*lab.tasks.constraint_files"):
        task.examples("test_2016_flickr")
