"""Subword tokenizer: a SentencePiece model with the ids the models expect.

Ids 0-3 are reserved for ``<pad>``, ``<s>``, ``</s>`` and ``<unk>`` (``PAD_ID``, ``BOS_ID``,
``EOS_ID``, ``UNK_ID`` of ``lab.vocab``). ``encode`` returns the pieces of a sentence
without BOS/EOS (the batching code adds them); ``decode`` drops every special id.

``load_or_train`` builds one JOINT model over the source and target sides of a task's training
split, so that source and target share one vocabulary, and caches it under
``<cache_dir>/tokenizers/<hash>/spm.model`` keyed by the signature of the task's
``tokenizer_task`` (the task itself, or one task for both directions of a pair), the vocabulary
size and the model type. Training is deterministic (fixed seed, one thread, no input sampling).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm
from filelock import FileLock

from lab.errors import LabError
from lab.io import atomic_write_bytes, cache_key, with_umask
from lab.vocab import BOS_ID, EOS_ID, PAD_ID, SEP_ID, SEP_PIECE, SPECIAL_IDS, UNK_ID

MODEL_TYPES = ("unigram", "bpe")
MODEL_FILE = "spm.model"
MAX_SENTENCES = 2_000_000  # training sentences used at most
MAX_LINE_BYTES = 1 << 16  # longest training line (UTF-8 bytes); SentencePiece skips longer ones
_TOO_HIGH = re.compile(r"Vocabulary size too high")


class Tokenizer:
    """A trained SentencePiece model (see the module docstring for the id conventions)."""

    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    unk_id = UNK_ID

    def __init__(self, model_path: str | Path) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise LabError(f"tokenizer model {self.path} not found; train one with Tokenizer.train")
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))

    # --- training -----------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        path: str | Path,
        model_type: str = "unigram",
        seed: int = 0,
        where: Callable[[int], str] | None = None,
    ) -> Tokenizer:
        """Train on ``texts`` (one sentence each) and write the model to ``path``.

        If the corpus is too small for ``vocab_size`` pieces, the model gets as many as the
        corpus allows (SentencePiece's ``hard_vocab_limit=False``) instead of failing. Lines
        over ``MAX_LINE_BYTES`` are left out with one warning (an error if nothing else is
        left) naming the first, by ``where(i)`` for text ``i`` (default: its line number).
        """
        if model_type not in MODEL_TYPES:
            raise LabError(
                f"unknown tokenizer model_type '{model_type}'; valid: {', '.join(MODEL_TYPES)}"
            )
        sentences, too_long = _usable_lines(texts)
        if too_long:
            _report_too_long(too_long, where or (lambda i: f"line {i + 1}"), bool(sentences))
        if not sentences:
            raise LabError("cannot train a tokenizer on an empty corpus; check the task's data")
        if len(sentences) > MAX_SENTENCES:  # a fixed-seed sample keeps big corpora tractable
            sentences = random.Random(seed).sample(sentences, MAX_SENTENCES)
        proto = _train_proto(sentences, vocab_size, model_type, seed)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, proto)
        tok = cls(path)
        if any(SEP_PIECE in s for s in sentences):
            assert tok.sp.piece_to_id(SEP_PIECE) == SEP_ID, "the separator must be id SEP_ID"
        return tok

    # --- use ----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Piece ids of ``text`` (no BOS/EOS)."""
        return self.sp.encode(text, out_type=int)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``encode`` for many texts at once (faster than a Python loop)."""
        return self.sp.encode(list(texts), out_type=int)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, with pad/bos/eos/unk ids dropped."""
        return self.sp.decode([int(i) for i in ids if int(i) not in SPECIAL_IDS])

    def id_to_piece(self, i: int) -> str:
        return self.sp.id_to_piece(int(i))

    def __repr__(self) -> str:
        return f"Tokenizer({str(self.path)!r}, vocab_size={self.vocab_size})"


def _usable_lines(texts: Iterable[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """The non-blank lines of ``texts`` SentencePiece trains on, and (index, bytes) of those
    over ``MAX_LINE_BYTES``, which it would skip."""
    sentences, too_long = [], []
    for i, text in enumerate(texts):
        if not text or text.isspace():
            continue
        if len(text) > MAX_LINE_BYTES // 4 and len(text.encode("utf-8")) > MAX_LINE_BYTES:
            too_long.append((i, len(text.encode("utf-8"))))
        else:
            sentences.append(text)
    return sentences, too_long


def _report_too_long(too_long: list[tuple[int, int]], where: Callable[[int], str], rest: bool):
    i, size = too_long[0]
    how = "(split documents into sentences, one per line)"
    if not rest:
        raise LabError(
            f"tokenizer training text: {where(i)} is {size} bytes, over the limit of"
            f" {MAX_LINE_BYTES} bytes per line, and no shorter line is left; shorten or remove"
            f" it {how}"
        )
    warnings.warn(
        f"tokenizer training skipped {len(too_long)} line(s) over {MAX_LINE_BYTES} bytes, the"
        f" first {where(i)} ({size} bytes); shorten or remove them {how}",
        stacklevel=3,
    )


def _train_proto(sentences: list[str], vocab_size: int, model_type: str, seed: int) -> bytes:
    """Serialized model trained on ``sentences``; retries with a soft limit for tiny corpora."""
    spm.set_random_generator_seed(seed)
    args: dict[str, Any] = dict(
        vocab_size=vocab_size,
        model_type=model_type,
        pad_id=PAD_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        unk_id=UNK_ID,
        pad_piece="<pad>",
        bos_piece="<s>",
        eos_piece="</s>",
        unk_piece="<unk>",
        character_coverage=1.0,
        normalization_rule_name="identity",  # decoded text must match references byte for byte
        num_threads=1,
        input_sentence_size=0,  # use every sentence: no random sampling
        shuffle_input_sentence=False,
        max_sentence_length=MAX_LINE_BYTES,
        minloglevel=2,
    )
    if any(SEP_PIECE in s for s in sentences):  # the segment separator is one piece, id SEP_ID
        args["user_defined_symbols"] = [SEP_PIECE]
    try:
        return _run_trainer(sentences, args)
    except RuntimeError as e:
        if _TOO_HIGH.search(str(e)):
            return _run_trainer(sentences, {**args, "hard_vocab_limit": False})
        reason = _first_line(e)
        raise LabError(f"tokenizer training failed ({reason}); try another vocab_size") from None


def _run_trainer(sentences: list[str], args: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf, **args)
    return buf.getvalue()


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# --- cached joint tokenizer for a task ----------------------------------------------------
def _train_texts(task: Any) -> tuple[Iterator[str], Callable[[int], str]]:
    """The source and target of each training example, in turn, and who text ``i`` is."""
    examples = task.examples(task.train_split)

    def where(i: int) -> str:
        side = "source" if i % 2 == 0 else "target"
        return f"the {side} of {task.train_split} example {examples[i // 2].id!r}"

    return (text for ex in examples for text in (ex.src, ex.tgt)), where


def load_or_train(
    task: Any, cache_dir: str | Path, vocab_size: int, model_type: str = "unigram"
) -> Tokenizer:
    """The joint tokenizer of ``task``'s training text, trained once and then loaded from cache.

    Concurrent callers are serialized by a file lock; the model is trained in a temporary
    directory which is renamed into place, so a half-written model is never visible.
    """
    task = task.tokenizer_task() if hasattr(task, "tokenizer_task") else task
    root = Path(cache_dir) / "tokenizers"
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key([task.signature(), vocab_size, model_type], length=64)
    final = root / key
    if (final / MODEL_FILE).is_file():
        return Tokenizer(final / MODEL_FILE)
    with FileLock(str(root / f"{key}.lock")):
        if (final / MODEL_FILE).is_file():
            return Tokenizer(final / MODEL_FILE)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", dir=root))
        try:
            texts, where = _train_texts(task)
            Tokenizer.train(texts, vocab_size, tmp / MODEL_FILE, model_type, seed=0, where=where)
            meta = {
                "signature": task.signature(),
                "vocab_size": vocab_size,
                "model_type": model_type,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
            os.chmod(tmp, with_umask(0o777))  # mkdtemp makes 0700; a shared cache needs more
            if final.exists():  # a stale, incomplete directory (no model file)
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Tokenizer(final / MODEL_FILE)
