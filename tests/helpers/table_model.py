"""A hand-built model whose next-token distribution is a fixed table keyed by the prefix.

Lets search tests state exact expected beams and scores (the fixture idea of AllenNLP's beam
search tests). Vocabulary: pad=0, bos=1, eos=2, then words 3...
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lab.models.base import DecoderModel, State

PAD, BOS, EOS, A, B, C, D = 0, 1, 2, 3, 4, 5, 6


class TableModel(DecoderModel):
    """``table[prefix] = {token: prob}``; a prefix missing from the table continues uniformly
    over every non-special token and EOS (a low-probability wilderness)."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], vocab: int = 24) -> None:
        super().__init__(vocab, vocab)
        self.table = table

    def dist(self, prefix: tuple[int, ...]) -> Tensor:
        out = torch.full((self.tgt_vocab_size,), float("-inf"))
        if prefix not in self.table:
            return out.index_fill(
                0, torch.arange(EOS, self.tgt_vocab_size), -math.log(self.tgt_vocab_size - EOS)
            )
        for tok, p in self.table[prefix].items():
            out[tok] = math.log(p)
        return out

    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        return {"lengths": src_lengths}

    def init_state(self, memory: dict[str, Tensor], beam_size: int) -> State:
        n = memory["lengths"].size(0) * beam_size
        return State(
            hyp={"prefix": torch.zeros(n, 0, dtype=torch.long)}, shared=memory, beam_size=beam_size
        )

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        prefix = state.hyp["prefix"]
        if state.step > 0:
            prefix = torch.cat([prefix, prev_tokens[:, None]], dim=1)
        out = torch.stack([self.dist(tuple(p)) for p in prefix.tolist()])
        return out, State({"prefix": prefix}, state.shared, state.beam_size, state.step + 1)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        rows = []
        for seq in prev_tokens.tolist():
            rows.append(torch.stack([self.dist(tuple(seq[1 : i + 1])) for i in range(len(seq))]))
        return torch.stack(rows)  # log-probs are valid logits


class AttentionTableModel(TableModel):
    """A ``TableModel`` that also reports a cross-attention: ``attention[prefix]``, the weights
    over the source positions of the step that follows ``prefix`` (uniform over the sentence's
    real tokens where the prefix is missing), 0 at padding."""

    def __init__(
        self,
        table: dict[tuple[int, ...], dict[int, float]],
        attention: dict[tuple[int, ...], list[float]],
        vocab: int = 24,
    ) -> None:
        super().__init__(table, vocab)
        self.attention = attention

    @property
    def cross_attention(self) -> bool:
        return True

    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        return {
            "lengths": src_lengths,
            "width": torch.zeros(src_lengths.size(0), src_tokens.size(1)),
        }

    def weights(self, prefix: tuple[int, ...], n_real: int, width: int) -> Tensor:
        row = torch.zeros(width)
        given = self.attention.get(prefix)
        row[:n_real] = torch.tensor(given) if given is not None else 1.0 / max(n_real, 1)
        return row

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        out, nxt = super().step(prev_tokens, state)
        lengths = state.shared["lengths"].repeat_interleave(state.beam_size).tolist()
        width = state.shared["width"].size(1)
        prefixes = nxt.hyp["prefix"].tolist()
        attn = torch.stack(
            [self.weights(tuple(p), n, width) for p, n in zip(prefixes, lengths, strict=True)]
        )  # (N, S)
        return out, state.successor(nxt.hyp, attn)
