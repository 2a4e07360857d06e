"""Token-id datasets and batches: tokenized pairs, length-bucketed batches, padding."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lab.tasks.base import Example
from lab.vocab import EOS_ID, PAD_ID


@dataclass(frozen=True)
class Pair:
    """One example as ids: source ends with EOS, target ends with EOS (no BOS)."""

    index: int
    src: tuple[int, ...]
    tgt: tuple[int, ...]


def encode_examples(
    examples: Sequence[Example], tokenizer, max_len: int | None = None
) -> list[Pair]:
    """Tokenize examples; with ``max_len``, drop training pairs longer than that (in tokens)."""
    eos = getattr(tokenizer, "eos_id", EOS_ID)
    pairs = []
    for i, ex in enumerate(examples):
        src = (*tokenizer.encode(ex.src), eos)
        tgt = (*tokenizer.encode(ex.tgt), eos)
        if max_len is None or (len(src) <= max_len and len(tgt) <= max_len):
            pairs.append(Pair(i, src, tgt))
    return pairs


def pad(seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Right-padded ``(B, T)`` ids and their lengths ``(B,)``."""
    tensors = [torch.tensor(s, dtype=torch.long) for s in seqs]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return pad_sequence(tensors, batch_first=True, padding_value=PAD_ID), lengths


def token_batches(pairs: Sequence[Pair], max_tokens: int, seed: int | None) -> list[list[Pair]]:
    """Batches of similar-length pairs holding at most ``max_tokens`` padded tokens per side.

    Sorting by length keeps padding small; ``seed`` shuffles the order of the batches (and
    breaks length ties randomly) so each epoch differs yet is reproducible.
    """
    rng = random.Random(seed)
    keyed = sorted(pairs, key=lambda p: (len(p.src), len(p.tgt), rng.random() if seed else 0))
    batches: list[list[Pair]] = []
    cur: list[Pair] = []
    longest = 0
    for p in keyed:
        longest_new = max(longest, len(p.src), len(p.tgt))
        if cur and longest_new * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, longest_new = [], max(len(p.src), len(p.tgt))
        cur.append(p)
        longest = longest_new
    if cur:
        batches.append(cur)
    if seed is not None:
        rng.shuffle(batches)
    return batches


def sentence_batches(pairs: Sequence[Pair], batch_size: int) -> list[list[Pair]]:
    """Evaluation batches of ``batch_size`` sentences sorted by source length (less padding)."""
    order = sorted(pairs, key=lambda p: len(p.src))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
