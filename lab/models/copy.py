"""Copy decoding: a pointer-generator output layer (See et al., 2017) behind ``step``.

The output distribution mixes generating from the vocabulary with copying a source token:

    p(w) = p_gen * p_vocab(w) + (1 - p_gen) * sum_{i: src_i maps to w} a_i

where ``a`` is an attention distribution over the source positions and
``p_gen = sigmoid(w^T [decoder state; context; input embedding] + b)``. The mixture is a
distribution over the *target vocabulary*, so a copy model returns log-probabilities ``(N, V)``
like any other and every search runs on it unchanged.

Source ids map to target ids through ``source_to_target``: the lab's tokenizer is one joint
SentencePiece model (``lab.tokenizer``), so a source id *is* the target id of the same piece.
A source id outside the target vocabulary (only when ``src_vocab > tgt_vocab``) copies as
``<unk>``. There is no per-sentence extended vocabulary (OOV copy): ``step`` returns a fixed
``V`` columns and the tokenizer decodes target ids only. With the joint vocabulary every source
piece has a target id anyway; what copying adds is reaching ids the output layer cannot (or did
not learn to) generate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lab.errors import LabError
from lab.vocab import UNK_ID

SUPPORT = "transformer, gru, or lstm with model.attention=additive|dot|general"
"""The architectures that take ``model.copy=true``, as error messages name them."""


def copy_unsupported(name: str, reason: str = "has no copy attention") -> LabError:
    """The one-line error for ``model.copy=true`` on an architecture that cannot copy."""
    return LabError(f"model.copy=true: model={name} {reason}; copy is supported by {SUPPORT}.")


def check_copy_option(name: str, options: Mapping[str, Any]) -> None:
    """Refuse ``model.copy=true`` for ``model=name`` before anything is built or trained.

    The copy models refuse it themselves when built (``lstm``/``gru`` without attention); this
    lets a config check name the supported architectures for the others too (``decoder_only``,
    ``hf``), whose constructors only know that ``copy`` is not one of their keys.
    """
    if not options.get("copy"):
        return
    if name not in ("transformer", "gru", "lstm"):
        raise copy_unsupported(name)
    if name != "transformer" and options.get("attention", "additive") == "none":
        raise copy_unsupported(name, "has model.attention=none")


def source_to_target(src_vocab: int, tgt_vocab: int) -> Tensor:
    """Target id of every source id ``(src_vocab,)``: the same id (joint vocabulary), or
    ``<unk>`` for the ids the target vocabulary lacks."""
    ids = torch.arange(src_vocab)
    return ids.masked_fill(ids >= tgt_vocab, UNK_ID if UNK_ID < tgt_vocab else 0)


def masked_attention(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax of ``scores`` ``(B, N, S)`` over the real source positions (``mask`` ``(B, S)``,
    True at real tokens); padding gets weight 0, so a sentence attends the same alone and in a
    padded batch. A sentence with no real token gets all-zero weights (finite, no NaN in the
    gradient either)."""
    hidden = ~mask[:, None, :]  # (B, 1, S)
    s = scores.masked_fill(hidden, float("-inf"))
    s = s.masked_fill(hidden.all(-1, keepdim=True), 0.0)
    return torch.softmax(s, dim=-1).masked_fill(hidden, 0.0)  # (B, N, S)


class CopyAttention(nn.Module):
    """A dedicated single-head scaled dot-product attention for copying (Transformer).

    Keys are computed once per sentence (``prepare``); each of the N queries of a sentence (the
    K beams while decoding, the T positions under teacher forcing) attends over them. The key
    projection has no bias: a bias would add the same score to every position, a no-op.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim, bias=False)
        self.scale = 1.0 / math.sqrt(dim)

    def prepare(self, memory: Tensor) -> Tensor:
        """Keys ``(B, S, D)`` of the encoder output ``memory`` ``(B, S, D)``."""
        return self.k(memory)

    def forward(
        self, q: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Copy weights ``(B, N, S)`` and context ``(B, N, D)`` of queries ``q`` ``(B, N, D)``."""
        scores = torch.bmm(self.q(q), keys.transpose(1, 2)) * self.scale  # (B, N, S)
        weights = masked_attention(scores, mask)  # (B, N, S)
        return weights, torch.bmm(weights, memory)


class CopyHead(nn.Module):
    """The generate-or-copy gate and the mixture, in log space.

    ``forward`` takes the generator's logits and the copy attention of N queries per sentence
    and returns the mixture's log-probabilities over the target vocabulary.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, gate_dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(gate_dim, 1)
        # not persistent: a fixed function of the sizes, rebuilt by the constructor
        self.register_buffer("src_to_tgt", source_to_target(src_vocab, tgt_vocab), False)

    def target_ids(self, src_tokens: Tensor) -> Tensor:
        """The target id each source position copies as ``(B, S)``."""
        return self.src_to_tgt[src_tokens]

    def forward(
        self, logits: Tensor, weights: Tensor, copy_ids: Tensor, gate_in: Tensor, mask: Tensor
    ) -> Tensor:
        """Log-probabilities ``(B, N, V)`` of the mixture.

        ``logits`` ``(B, N, V)``: the generator; ``weights`` ``(B, N, S)``: the copy attention
        (zero at padding); ``copy_ids`` ``(B, S)``: target id of each source position;
        ``gate_in`` ``(B, N, F)``: [decoder state; context; input embedding]; ``mask`` ``(B, S)``
        real source positions. A token both generated and copied gets the *sum* of the two
        terms (logaddexp), never the max, so ``score`` stays exact. A sentence without a source
        token has nothing to copy: its gate is forced to generate (p_gen = 1).
        """
        b, n, v = logits.shape
        g = self.gate(gate_in).float().squeeze(-1)  # (B, N)
        g = g.masked_fill(~mask.any(-1)[:, None], float("inf"))  # empty source: generate
        log_gen = nn.functional.logsigmoid(g)[..., None]  # (B, N, 1) log p_gen
        log_cp = nn.functional.logsigmoid(-g)[..., None]  # (B, N, 1) log (1 - p_gen)
        log_vocab = torch.log_softmax(logits.float(), dim=-1)  # (B, N, V)
        ids = copy_ids[:, None, :].expand(b, n, -1)  # (B, N, S)
        copy = weights.float().new_zeros(b, n, v).scatter_add(-1, ids, weights.float())
        tiny = torch.finfo(copy.dtype).tiny
        log_copy = copy.clamp_min(tiny).log().masked_fill(copy <= 0, float("-inf"))  # (B, N, V)
        return torch.logaddexp(log_gen + log_vocab, log_cp + log_copy)  # (B, N, V)
