"""Brute-force n-best lists for the search tests: every output of a tiny model, scored.

An output is a string of generated ids (never PAD or BOS) ending in EOS, at most ``max_len``
tokens long (EOS included), at least ``min_len``; ``model.score`` gives its log-prob and the
ranking is log-prob + ``alpha`` * length (``alpha=0``: plain MAP).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lab.vocab import BOS_ID, EOS_ID, PAD_ID


def all_outputs(vocab: int, max_len: int, min_len: int = 0) -> list[tuple[int, ...]]:
    words = [t for t in range(vocab) if t not in (PAD_ID, BOS_ID, EOS_ID)]
    return [
        (*ws, EOS_ID)
        for n in range(max(min_len - 1, 0), max_len)
        for ws in itertools.product(words, repeat=n)
    ]


def ranked(
    model, src: Tensor, length: Tensor, outputs: list[tuple[int, ...]], alpha: float = 0.0
) -> list[tuple[float, float, tuple[int, ...]]]:
    """``(score, logprob, tokens)`` of every output for one source ``(1, S)``, best first."""
    tgt = pad_sequence([torch.tensor(o) for o in outputs], batch_first=True)  # (O, T)
    with torch.no_grad():
        logp = model.score(src.expand(len(outputs), -1), length.expand(len(outputs)), tgt)
    rows = [(lp + alpha * len(o), lp, o) for lp, o in zip(logp.tolist(), outputs, strict=True)]
    return sorted(rows, key=lambda r: -r[0])


def enumerate_outputs(max_len: int, words=(3, 4)):
    """Every output of at most ``max_len`` tokens: word strings ended by EOS, or cut at max_len."""
    for n in range(max_len):
        for ws in itertools.product(words, repeat=n):
            yield (*ws, EOS_ID)
    yield from itertools.product(words, repeat=max_len)
