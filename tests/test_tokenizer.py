"""The SentencePiece tokenizer: ids, round trips, the joint cached model, tiny corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.io import cache_key
from lab.tasks.toy_mt import ToyMT
from lab.tokenizer import Tokenizer, load_or_train
from lab.vocab import BOS_ID, EOS_ID, PAD_ID, SEP_ID, SEP_PIECE, UNK_ID

SMALL = {"n_train": 2000, "n_valid": 50, "n_test": 50}


@pytest.fixture(scope="module")
def task() -> ToyMT:
    return ToyMT("unused", "unused", seed=0, **SMALL)


@pytest.fixture(scope="module")
def tok(task: ToyMT, tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return load_or_train(task, tmp_path_factory.mktemp("cache"), vocab_size=300)


def test_special_ids(tok: Tokenizer):
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (PAD_ID, BOS_ID, EOS_ID, UNK_ID)
    assert [tok.id_to_piece(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert tok.vocab_size == 300


def test_round_trip_on_toy_text(tok: Tokenizer, task: ToyMT):
    for ex in task.examples("test"):
        for text in (ex.src, ex.tgt):
            ids = tok.encode(text)
            assert ids and min(ids) > UNK_ID  # no specials, nothing unknown
            assert tok.decode(ids) == text
    assert tok.encode_batch(["da", "il"]) == [tok.encode("da"), tok.encode("il")]


def test_decode_skips_specials(tok: Tokenizer, task: ToyMT):
    text = task.examples("test")[0].src
    ids = tok.encode(text)
    assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == text
    assert tok.decode([UNK_ID]) == ""


def test_joint_vocabulary_covers_both_sides(tok: Tokenizer, task: ToyMT):
    ex = task.examples("train")[0]
    assert tok.decode(tok.encode(ex.src)) == ex.src and tok.decode(tok.encode(ex.tgt)) == ex.tgt


def test_cache_reused_not_retrained(task: ToyMT, tmp_path: Path):
    first = load_or_train(task, tmp_path, vocab_size=200, model_type="bpe")
    key = cache_key([task.signature(), 200, "bpe"], length=64)
    assert first.path == tmp_path / "tokenizers" / key / "spm.model"
    mtime = first.path.stat().st_mtime_ns
    meta = json.loads((first.path.parent / "meta.json").read_text())
    assert meta["vocab_size"] == 200 and meta["model_type"] == "bpe"

    second = load_or_train(ToyMT("x", "y", seed=0, **SMALL), tmp_path, 200, "bpe")
    assert second.path == first.path and second.path.stat().st_mtime_ns == mtime
    entries = sorted(p.name for p in (tmp_path / "tokenizers").iterdir())
    assert entries == [key, f"{key}.lock"]  # no leftover temporary directories

    other = load_or_train(ToyMT("x", "y", seed=1, **SMALL), tmp_path, 200, "bpe")
    assert other.path != first.path


def test_tiny_corpus_gets_a_smaller_vocabulary(tmp_path: Path):
    for model_type in ("unigram", "bpe"):
        tok = Tokenizer.train(
            ["a b c", "hello world", "hello there"],
            1000,
            tmp_path / f"{model_type}.model",
            model_type=model_type,
        )
        assert 4 < tok.vocab_size < 1000
        assert tok.decode(tok.encode("hello world")) == "hello world"


def test_training_is_deterministic(task: ToyMT, tmp_path: Path):
    texts = [ex.tgt for ex in task.examples("train")]
    a = Tokenizer.train(texts, 250, tmp_path / "a.model")
    b = Tokenizer.train(texts, 250, tmp_path / "b.model")
    assert a.path.read_bytes() == b.path.read_bytes()


def test_errors(tmp_path: Path):
    with pytest.raises(LabError, match="valid: unigram, bpe"):
        Tokenizer.train(["a b"], 10, tmp_path / "m.model", model_type="word")
    with pytest.raises(LabError, match="empty corpus"):
        Tokenizer.train(["", "  "], 10, tmp_path / "m.model")
    with pytest.raises(LabError, match="not found"):
        Tokenizer(tmp_path / "missing.model")


def test_the_segment_separator_is_one_piece_at_its_reserved_id(tmp_path: Path):
    """A corpus that uses ``<sep>`` gets it as a single piece, id ``SEP_ID``, whatever the
    words around it; a corpus without it gets no such piece."""
    texts = [f"Mary went to the {w}. {SEP_PIECE} Where is Mary?" for w in ("garden", "office")]
    tok = Tokenizer.train(texts * 20, 60, tmp_path / "sep.model")
    ids = tok.encode(f"John moved.{SEP_PIECE}Where is John?")
    assert ids.count(SEP_ID) == 1 and tok.id_to_piece(SEP_ID) == SEP_PIECE
    plain = Tokenizer.train(["Mary went to the garden."] * 20, 30, tmp_path / "plain.model")
    assert plain.id_to_piece(SEP_ID) != SEP_PIECE
