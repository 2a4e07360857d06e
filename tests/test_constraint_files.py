"""Constraint side files drawn from references: every line parses, every term is a word of
its reference, prefixes are the reference's first tokens, and the draw repeats with its seed."""

from __future__ import annotations

import gzip

from lab.tasks.constraint_files import main, prefix_constraints, term_constraints
from lab.tasks.constraints import read_constraints

REFS = [
    "A man in an orange hat starring at something .",
    "Two dogs play in the snow .",
    "a b c .",
    "",
]


def test_terms_are_one_or_two_words_of_each_reference():
    rows = term_constraints(REFS, seed=0)
    assert len(rows) == len(REFS)
    for ref, row in zip(REFS[:2], rows[:2], strict=True):
        assert 1 <= len(row["include"]) <= 2
        assert all(word in ref.split() and len(word) >= 4 for word in row["include"])
    assert rows[2:] == [{}, {}]  # no word long enough: no constraint
    assert term_constraints(REFS, seed=0) == rows
    draws = {str(term_constraints(REFS * 5, seed=s)) for s in range(5)}
    assert len(draws) > 1  # the seed chooses


def test_prefixes_are_the_first_k_tokens():
    rows = prefix_constraints(REFS, k=2)
    assert rows[:3] == [{"prefix": "A man"}, {"prefix": "Two dogs"}, {"prefix": "a b"}]
    assert rows[3] == {}


def test_the_command_writes_a_file_the_task_reads(tmp_path, monkeypatch, capsys):
    refs = tmp_path / "data" / "test.en.gz"
    refs.parent.mkdir()
    refs.write_bytes(gzip.compress("\n".join(REFS[:3]).encode() + b"\n"))
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "c" / "terms.jsonl"
    assert main(["terms", "test.en.gz", str(out)]) == 0
    parsed = read_constraints(out, 3)
    assert all(c.include for c in parsed[:2])
    assert main(["prefix", "missing.en", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: reference file not found: missing.en")
