"""Per-sentence random streams, so a stochastic search's draws for a sentence depend only on
the run's seed and that sentence's key, never on the batch it was decoded in.

Searches that sample declare ``inputs = ("keys",)``; the evaluator then passes ``keys``, one
int per sentence, derived from each example's id (``example_key``). Each sentence gets its own
``torch.Generator``; a search draws each sentence's noise from its generator only, in the
same amounts whatever the batch, so sentence ``i`` alone and sentence ``i`` in any batch see
the same numbers, on any device.

Both stochastic searches keep the generators on the CPU, and CPU generators give the same
numbers whatever the decode device (CUDA's Philox streams differ from the CPU's Mersenne
Twister), so a run sampled on a GPU draws the CPU run's numbers and differs from it only where
the device's log-probs move a boundary across one. Neither draws noise over the vocabulary:

- ``sample`` draws one uniform per row and step (all of a sentence's up front: ``limit x N``);
- ``stochastic_beam`` draws ``2k + 1`` uniforms per row and step (the k+1 best children of a
  row, in order, and k Gumbels for their scores; ``lab.search.sampling.children``).

The price is one host-to-device copy of those few numbers a step. ``python -m
lab.bench.rng_cost`` measures the noise against the model step for both searches, with the
generators on the CPU and on the decode device; ``lab bench --device cuda`` records it
(``rng_cost``); no GPU figure has been measured yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor


def example_key(example_id: object) -> int:
    """A stable 63-bit key for an example id (the same across processes and Python runs)."""
    digest = hashlib.blake2b(str(example_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def generators(
    seed: int, keys: Sequence[int] | None, n: int, device: torch.device | str = "cpu"
) -> list[torch.Generator]:
    """One generator per sentence, seeded from ``(seed, key)``; without keys, the sentence's
    position in the batch is its key (then draws do depend on the batching)."""
    keys = list(range(n)) if keys is None else list(keys)
    if len(keys) != n:
        raise ValueError(f"{len(keys)} keys for {n} sentences")
    gens = []
    for key in keys:
        digest = hashlib.blake2b(f"{int(seed)}:{int(key)}".encode(), digest_size=8).digest()
        gens.append(torch.Generator(device=device).manual_seed(int.from_bytes(digest, "big") >> 1))
    return gens


def uniform(gens: Sequence[torch.Generator], rows: int, width: int, device: torch.device) -> Tensor:
    """``(len(gens) * rows, width)`` uniforms in (0, 1): ``rows`` rows from each sentence's
    generator, sentence by sentence."""
    parts = [
        torch.rand(rows, width, generator=g, device=g.device, dtype=torch.float64) for g in gens
    ]
    u = torch.cat(parts, 0).to(device) if parts else torch.empty(0, width, dtype=torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    return u.clamp(tiny, 1.0 - 2**-53)  # (len(gens) * rows, width)


def gumbel(gens: Sequence[torch.Generator], rows: int, width: int, device: torch.device) -> Tensor:
    """Standard Gumbel noise ``-log(-log U)``, ``(len(gens) * rows, width)``, float64."""
    return -torch.log(-torch.log(uniform(gens, rows, width, device)))


def pseudo_ref_keys(keys: Sequence[int]) -> list[int]:
    """The keys of the pseudo-reference search: a stable hash of each sentence key, tagged, so
    its random stream differs from the candidate search's for the same sentence and seed."""
    return [example_key(f"mbr.pseudo_refs:{int(k)}") for k in keys]
