"""The decoding interface every architecture implements, and the state it passes around.

A search algorithm touches a model only through these methods:

- ``encode(src_tokens, src_lengths) -> memory``: once per sentence, never once per beam;
- ``init_state(memory, beam_size) -> State``;
- ``step(prev_tokens, state) -> (log_probs, state)``: ``log_probs`` is ``(B*K, V)``;
- ``reorder(state, index) -> State``: ``index`` selects hypothesis rows (``(B*K,)``);
- ``cross_attention``: whether ``step`` can report where it looked in the source. A search
  that needs it (coverage penalties, alignments) starts from ``state.asking_attention()``; the
  state ``step`` returns then carries ``attention`` ``(B*K, S)`` (rows sum to 1 over the
  source positions, 0 at padding). Models without cross-attention leave it None;
- ``step_block(tokens, state) -> (log_probs, states)``: ``step`` over a block ``(N, L)`` of
  tokens (default: L calls of ``step``), for speculative decoding;
- ``score(src_tokens, src_lengths, tgt_tokens, tgt_lengths) -> (B,)`` log-probabilities.

Token conventions: the ids of ``lab.vocab`` (``pad_id=0, bos_id=1, eos_id=2``); batches are
right-padded.
Targets (``tgt_tokens``) hold the generated tokens without BOS, with EOS where a sentence ended.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from lab.vocab import BOS_ID, EOS_ID, PAD_ID

Leaf = Tensor | list[Tensor] | tuple[Tensor, ...]
"""A state or memory value: one tensor, or one tensor per layer (a list or tuple)."""


def map_tensors(fn: Callable[[Tensor], Tensor], leaves: dict[str, Leaf]) -> dict[str, Leaf]:
    """Apply ``fn`` to every tensor of ``leaves``, inside per-layer lists/tuples too (their type
    is kept), so row selection works the same whatever layout a model chose."""
    return {
        name: fn(v) if isinstance(v, Tensor) else type(v)(fn(t) for t in v)
        for name, v in leaves.items()
    }


@dataclass(frozen=True)
class State:
    """Decoder state between steps. Nothing is kept on the module.

    ``hyp``: tensors with one row per hypothesis in dim 0 (``B*K``); reordered every step.
    ``shared``: tensors with one row per *sentence* in dim 0 (``B``), identical for all beams of
    a sentence (encoder memory, cross-attention keys/values); never copied per beam and only
    touched when sentences leave the batch. ``beam_size`` = K; ``step`` counts decoded tokens.
    ``want_attention``: a search asks ``step`` for its cross-attention (off by default, so a
    model computes no weights it is not asked for); ``attention`` ``(B*K, S)``: that of the
    step that made this state, or None; it has one row per hypothesis, as ``hyp``.

    A value of ``hyp`` or ``shared`` is a tensor or a list (or tuple) of tensors, typically one
    per layer (``hyp={"k": [k_0, k_1, ...], "v": [...]}``); every tensor of a list follows the
    row rule of its dict, and ``reorder``/``select_sentences`` apply to each of them.
    """

    hyp: dict[str, Leaf]
    shared: dict[str, Leaf]
    beam_size: int
    step: int = 0
    want_attention: bool = False
    attention: Tensor | None = None

    def reorder(self, index: Tensor) -> State:
        """Select hypothesis rows: ``index`` is ``(N',)`` into the current ``B*K`` rows."""
        attn = None if self.attention is None else self.attention.index_select(0, index)
        return replace(
            self, hyp=map_tensors(lambda v: v.index_select(0, index), self.hyp), attention=attn
        )

    def asking_attention(self) -> State:
        """This state with ``want_attention`` set: the next ``step`` reports its attention."""
        return replace(self, want_attention=True)

    def successor(self, hyp: dict[str, Leaf], attention: Tensor | None = None) -> State:
        """The state one step on with hypothesis tensors ``hyp``; ``attention`` ``(B*K, S)`` is
        kept only when asked for (``want_attention``), which passes on."""
        return replace(
            self, hyp=hyp, step=self.step + 1,
            attention=attention if self.want_attention else None,
        )  # fmt: skip

    def select_sentences(self, keep: Tensor) -> State:
        """Keep only sentences ``keep`` (``(B',)`` indices into the current B sentences)."""
        k = self.beam_size
        rows = (keep[:, None] * k + torch.arange(k, device=keep.device)).reshape(-1)  # (B'*K,)
        attn = None if self.attention is None else self.attention.index_select(0, rows)
        return replace(
            self,
            hyp=map_tensors(lambda v: v.index_select(0, rows), self.hyp),
            shared=map_tensors(lambda v: v.index_select(0, keep), self.shared),
            attention=attn,
        )


class DecoderModel(nn.Module, ABC):
    """Base class of every architecture: the decoding interface plus teacher forcing."""

    pad_id: int = PAD_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size

    @property
    def max_positions(self) -> int | None:
        """Longest target (in tokens) the model can decode, or None for unbounded."""
        return None

    @property
    def cross_attention(self) -> bool:
        """Whether ``step`` reports its attention over the source tokens when the state asks
        (``State.want_attention``); False unless an architecture says otherwise."""
        return False

    # --- decoding interface -------------------------------------------------------------
    @abstractmethod
    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Leaf]:
        """Encode a batch of sources ``(B, S)`` once; returns per-sentence tensors (dim 0 = B),
        single or per layer in a list, as in ``State.shared``."""

    @abstractmethod
    def init_state(self, memory: dict[str, Leaf], beam_size: int) -> State:
        """Start decoding ``beam_size`` hypotheses per sentence."""

    @abstractmethod
    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Feed ``prev_tokens`` ``(B*K,)``; return log-probabilities ``(B*K, V)`` and new state."""

    def reorder(self, state: State, index: Tensor) -> State:
        """Reorder hypotheses; generic because every per-hypothesis leaf has rows in dim 0."""
        return state.reorder(index)

    def step_block(self, tokens: Tensor, state: State) -> tuple[Tensor, list[State]]:
        """Feed ``tokens`` ``(N, L)`` in order: the log-probs after each ``(N, L, V)`` and the
        state after each (``states[j]``: ``j + 1`` of them fed), so that a caller may keep any
        prefix of the block (speculative decoding verifies a drafted block in one call). This
        default runs ``step`` L times, right for every architecture; a model may override it
        with one pass over the block."""
        out, states = [], []
        for j in range(tokens.size(1)):
            log_probs, state = self.step(tokens[:, j], state)  # (N, V)
            out.append(log_probs)
            states.append(state)
        return torch.stack(out, dim=1), states  # (N, L, V)

    # --- teacher forcing ------------------------------------------------------------------
    @abstractmethod
    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)`` for decoder inputs ``prev_tokens`` ``(B, T)``."""

    def token_log_probs(
        self, src_tokens: Tensor, src_lengths: Tensor, tgt_tokens: Tensor
    ) -> Tensor:
        """Log-probability of every target token ``(B, T)`` (0 at padding)."""
        prev = shift_right(tgt_tokens, self.bos_id, self.pad_id)  # (B, T)
        logits = self.forward(src_tokens, src_lengths, prev)  # (B, T, V)
        lp = torch.log_softmax(logits.float(), dim=-1)
        out = lp.gather(-1, tgt_tokens.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (B, T)
        return out.masked_fill(tgt_tokens.eq(self.pad_id), 0.0)

    def score(
        self,
        src_tokens: Tensor,
        src_lengths: Tensor,
        tgt_tokens: Tensor,
        tgt_lengths: Tensor | None = None,
    ) -> Tensor:
        """Total log-probability of each target ``(B,)``: natural log, EOS included if present.

        ``tgt_tokens`` ``(B, T)`` is right-padded with ``pad_id``; ``tgt_lengths`` is implied by
        the padding when omitted.
        """
        if tgt_lengths is not None:
            pos = torch.arange(tgt_tokens.size(1), device=tgt_tokens.device)
            tgt_tokens = tgt_tokens.masked_fill(pos[None, :] >= tgt_lengths[:, None], self.pad_id)
        return self.token_log_probs(src_tokens, src_lengths, tgt_tokens).sum(-1)


def shift_right(tgt_tokens: Tensor, bos_id: int, pad_id: int) -> Tensor:
    """Decoder inputs for teacher forcing: ``[BOS, y_1, ..., y_{T-1}]`` ``(B, T)``."""
    bos = torch.full_like(tgt_tokens[:, :1], bos_id)
    return torch.cat([bos, tgt_tokens[:, :-1]], dim=1).masked_fill(
        torch.cat([torch.zeros_like(bos, dtype=torch.bool), tgt_tokens[:, :-1].eq(pad_id)], 1),
        pad_id,
    )


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """``True`` at real tokens: ``(B, max_len)``."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
