"""One tokenizer for a language pair: Multi30k read de->en, en->de or as a target-side LM
(``task.lm=true``) tokenizes with the same SentencePiece model, so a channel model (en->de) and
an LM can score a de->en model's outputs id for id. On a small Multi30k-shaped data directory."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.tasks.multi30k import Multi30k
from lab.tokenizer import load_or_train

DE = ["ein hund läuft", "zwei kinder spielen", "eine frau liest ein buch", "ein mann kocht"]
EN = ["a dog runs", "two children play", "a woman reads a book", "a man cooks"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "multi30k"
    root.mkdir(parents=True)
    for split in ("train", "val", "test_2016_flickr"):
        for lang, lines in (("de", DE), ("en", EN)):
            with gzip.open(root / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(lines * 5) + "\n")
    return tmp_path / "data"


def task(data: Path, **options) -> Multi30k:
    return Multi30k(data, data.parent / "cache", **options)


def tokenizer_files(data: Path) -> list[Path]:
    return sorted((data.parent / "cache" / "tokenizers").glob("*/spm.model"))


def test_both_directions_and_the_lm_share_one_tokenizer(data):
    de_en = load_or_train(task(data, src="de", tgt="en"), data.parent / "cache", 40)
    en_de = load_or_train(task(data, src="en", tgt="de"), data.parent / "cache", 40)
    lm = load_or_train(task(data, src="de", tgt="en", lm=True), data.parent / "cache", 40)
    assert [de_en.path, en_de.path] == [lm.path, lm.path]
    assert len(tokenizer_files(data)) == 1  # trained once, on the pair in alphabetical order


def test_an_en_de_tokenizer_trained_first_is_the_de_en_one(data, tmp_path):
    """The texts are the pair's in one order whichever direction trains it first."""
    first = load_or_train(task(data, src="en", tgt="de"), data.parent / "cache", 40)
    other = Multi30k(data, tmp_path / "other_cache", src="de", tgt="en")
    second = load_or_train(other, tmp_path / "other_cache", 40)
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()


def test_the_lm_task_has_empty_sources_and_the_pairs_targets(data):
    pair, lm = task(data), task(data, lm=True)
    for split in ("train", "test_2016_flickr"):
        got, want = lm.examples(split), pair.examples(split)
        assert [e.src for e in got] == [""] * len(want)
        assert [(e.id, e.tgt, e.refs) for e in got] == [(e.id, e.tgt, e.refs) for e in want]


def test_the_lm_task_trains_its_own_models_and_leaves_the_pairs_key_alone(data):
    """The model cache keys on ``signature``: an LM is another model; the pair's signature is
    the one it always had, so its cached models stay valid."""
    assert task(data).signature() == {"name": "Multi30k", "src": "de", "tgt": "en"}
    assert task(data, lm=True).signature() == {**task(data).signature(), "lm": True}


def test_a_bad_lm_option_names_the_valid_values(data):
    with pytest.raises(LabError, match="lm='yes'; valid: true, false"):
        task(data, lm="yes")
