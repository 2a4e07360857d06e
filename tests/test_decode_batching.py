"""The evaluator decodes a split in batches sorted by source length (less padding, as fairseq
and CTranslate2 do) and hands back every sentence's outputs under its own index: the same
outputs, in the split's order, as decoding each sentence alone, for greedy, beam and sampling
(whose draws follow each example's key, not its batch)."""

from __future__ import annotations

import pytest
import torch

import lab.search  # noqa: F401  (registration)
from lab.data import Pair, sentence_batches
from lab.evaluate import decode_pairs
from lab.registry import SEARCHES
from lab.search.rng import example_key
from tests.helpers.models import sources, tiny_model

LENGTHS = (6, 2, 9, 4, 3, 7, 5, 2)
SEARCH_SETTINGS = {
    "greedy": {},
    "beam": {"beam_size": 3, "nbest": 2},
    "sample": {"num_samples": 4, "seed": 5, "max_len_a": 0.5, "max_len_b": 6},
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, which only stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def split():
    src, lens = sources(6, 12, LENGTHS)
    pairs = [Pair(i, tuple(src[i, :n].tolist()), ()) for i, n in enumerate(lens.tolist())]
    keys = [example_key(f"example-{i}") for i in range(len(pairs))]
    return tiny_model("transformer", 12, seed=0, sharpen=1.5), pairs, keys


def test_the_batches_are_sorted_by_source_length_not_in_the_splits_order(split):
    _, pairs, _ = split
    batches = sentence_batches(pairs, 3)
    order = [p.index for b in batches for p in b]
    assert [len(pairs[i].src) for i in order] == sorted(LENGTHS)
    assert order != list(range(len(pairs)))


@pytest.mark.parametrize("name", sorted(SEARCH_SETTINGS))
def test_sorted_batches_give_each_sentence_what_it_gets_alone_in_the_splits_order(split, name):
    model, pairs, keys = split
    search = SEARCHES.build(name, **SEARCH_SETTINGS[name])
    cpu = torch.device("cpu")
    sorted_out = decode_pairs(model, search, pairs, 3, cpu, keys)[0]
    alone = decode_pairs(model, search, pairs, 1, cpu, keys)[0]
    assert list(sorted_out) != list(range(len(pairs)))  # decoded out of order...
    tokens = [[h.tokens for h in sorted_out[i]] for i in range(len(pairs))]
    assert tokens == [[h.tokens for h in alone[i]] for i in range(len(pairs))]  # ...same outputs
