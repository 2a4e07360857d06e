"""Tiny random models of every lab architecture and random source batches, for the search tests.

``TINY`` is the one set of tiny constructor settings per architecture; ``tiny_model`` builds
one with its weights scaled by ``sharpen`` (peakier distributions than at init, so fewer
near-ties between outputs), and ``sources`` a right-padded batch of random word ids.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lab.models.base import DecoderModel
from lab.registry import MODELS

# architecture -> tiny constructor settings (dropout 0: the models are used in eval mode anyway)
TINY: dict[str, dict[str, Any]] = {
    "transformer": dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=2, d_ff=32, dropout=0.0),
    "lstm": dict(emb_dim=16, hidden=16, num_layers=2, dropout=0.0, attention="additive"),
    "gru": dict(emb_dim=16, hidden=16, num_layers=1, dropout=0.0, attention="general"),
    "decoder_only": dict(d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0),
}
ARCHS = sorted(TINY)


def tiny_model(
    arch: str, vocab: int = 12, seed: int = 0, sharpen: float = 3.0, **changes: Any
) -> DecoderModel:
    """A random tiny model of architecture ``arch`` in eval mode, built with seed ``seed`` from
    ``TINY[arch]`` updated by ``changes``; every weight matrix is scaled by ``sharpen``."""
    torch.manual_seed(seed)
    model = MODELS.build(arch, vocab, vocab, **(TINY[arch] | changes)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(sharpen)
    return model


def sources(
    seed: int = 1, vocab: int = 12, lengths: tuple[int, ...] = (6, 2, 9, 4)
) -> tuple[Tensor, Tensor]:
    """A right-padded batch of random word ids (3 .. vocab-1) with ``lengths``, and the
    lengths: ``(B, S)``, ``(B,)``."""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(3, vocab, (n,), generator=g) for n in lengths]
    return pad_sequence(seqs, batch_first=True), torch.tensor(lengths)
