"""The enumerable sampling setup shared by the sampling tests on every device: a tiny flat
Transformer, the processor settings, the exact processed distribution of every outcome (by
enumeration) and Pearson's chi-square against it."""

from __future__ import annotations

import functools
import itertools

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lab.models.base import shift_right
from lab.registry import SEARCHES
from lab.search.contracts import apply
from lab.search.processors.chain import Processors
from lab.vocab import BOS_ID, EOS_ID, PAD_ID
from tests.helpers.brute_force import all_outputs
from tests.helpers.models import sources, tiny_model

VOCAB, MAX_LEN = 8, 4  # words 3..7: 156 finished outputs and 625 cut at the limit
SAMPLES, SENTENCES = 10_000, (0, 2)  # 20k draws per processor setting
WORDS = [t for t in range(VOCAB) if t not in (PAD_ID, BOS_ID, EOS_ID)]
SETTINGS = {
    "none": ([], 0),
    "temperature": ([{"name": "temperature", "temperature": 1.5}], 0),
    "top_k": ([{"name": "top_k", "top_k": 3}], 0),
    "top_p": ([{"name": "top_p", "top_p": 0.8}], 0),
    "typical_p": ([{"name": "typical_p", "typical_p": 0.8}], 0),
    "epsilon": ([{"name": "epsilon", "epsilon": 0.1}], 0),
    "eta": ([{"name": "eta", "eta": 0.1}], 0),
    "min_p": ([{"name": "min_p", "min_p": 0.2}], 0),
    "chain_min_len": (
        [
            {"name": "repetition_penalty", "penalty": 1.5},
            {"name": "temperature", "temperature": 1.5},
            {"name": "top_k", "top_k": 3},
        ],
        3,
    ),
}


@functools.cache
def enumerable():
    """A tiny Transformer and its sources, flat enough that outputs ending in EOS and outputs
    cut at the limit are both likely, that ``typical_p`` keeps other tokens than ``top_p``, and
    that ``eta``'s entropy term matters (it cuts other tokens than ``epsilon``)."""
    model = tiny_model("transformer", VOCAB, seed=1, sharpen=0.7)
    src, lens = sources(11, VOCAB, (4, 2, 6, 3))
    return model, src, lens


def every_outcome() -> list[tuple[int, ...]]:
    """Every output sampling can return with ``max_len_b=MAX_LEN``: ended by EOS, or cut at
    the limit (MAX_LEN words, unfinished)."""
    cut = [tuple(ws) for ws in itertools.product(WORDS, repeat=MAX_LEN)]
    return all_outputs(VOCAB, MAX_LEN) + cut


@functools.cache
def processed_logprobs(setting: str, i: int) -> dict[tuple[int, ...], float]:
    """The sampling log-prob of every outcome of sentence ``i``, by enumeration: the sum over
    its tokens of the processed, renormalized log-prob of the token given its prefix."""
    specs, min_len = SETTINGS[setting]
    model, src, lens = enumerable()
    procs = Processors(specs, min_len).for_model(model)
    outcomes = every_outcome()
    tgt = pad_sequence([torch.tensor(o) for o in outcomes], batch_first=True)  # (O, T)
    n = len(outcomes)
    source, length = src[i : i + 1, : lens[i]].expand(n, -1), lens[i : i + 1].expand(n)
    with torch.no_grad():
        logits = model(source, length, shift_right(tgt, BOS_ID, PAD_ID))  # (O, T, V)
    log_probs = logits.log_softmax(-1)  # (O, T, V)
    total = torch.zeros(n, dtype=torch.float64)  # (O,)
    for j in range(tgt.size(1)):
        q = apply(procs, log_probs[:, j], tgt[:, :j], j + 1).double().log_softmax(-1)  # (O, V)
        picked = q.gather(1, tgt[:, j : j + 1]).squeeze(1)  # (O,)
        total += torch.where(tgt[:, j].ne(PAD_ID), picked, 0.0)
    return dict(zip(outcomes, total.tolist(), strict=True))


@functools.cache
def drawn(setting: str):
    specs, min_len = SETTINGS[setting]
    model, src, lens = enumerable()
    rows = list(SENTENCES)
    limits = {"max_len_a": 0, "max_len_b": MAX_LEN, "min_len": min_len}
    search = SEARCHES.build("sample", num_samples=SAMPLES, processors=specs, seed=0, **limits)
    return search(model, src[rows], lens[rows], keys=[100 + i for i in rows])


def chi_square(observed: Tensor, expected: Tensor) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom, bins of expected count < 5 pooled (with the
    next smallest bin if the pool itself stays under 5)."""
    order = expected.argsort()
    observed, expected = observed[order].double(), expected[order].double()
    small = int((expected < 5).sum())
    if 0 < small < len(expected) and expected[:small].sum() < 5:
        small += 1
    if small > 1:
        observed = torch.cat([observed[:small].sum()[None], observed[small:]])
        expected = torch.cat([expected[:small].sum()[None], expected[small:]])
    stat = float(((observed - expected) ** 2 / expected).sum())
    return stat, len(expected) - 1


INVARIANCE = {
    "num_samples": 6,
    "max_len_a": 0.5,  # a limit that depends on the source: sentences leave at different steps
    "max_len_b": 6,
    "processors": [{"name": "top_p", "top_p": 0.9}, {"name": "repetition_penalty", "penalty": 1.3}],
}
