"""Recurrent encoder-decoder (Luong et al., 2015) with additive, dot, general or no attention.

The encoder is a bidirectional LSTM/GRU over the source; the decoder is a unidirectional
LSTM/GRU started from the encoder's final states. There is no input feeding: the decoder RNN
sees only the previous target token, so teacher forcing runs it over the whole target in one
call and the attention is applied afterwards to every position at once. With ``copy=True``
that attention is also the copy distribution of a pointer-generator (``lab.models.copy``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lab.errors import LabError
from lab.models.base import DecoderModel, State, padding_mask
from lab.models.copy import CopyHead, copy_unsupported
from lab.models.linear import linear
from lab.models.rnn_attention import ATTENTIONS
from lab.registry import MODELS

CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}


class Bridge(nn.Module):
    """Decoder initial state from the encoder's final states: concat fwd/bwd -> Linear -> tanh.

    One projection per layer; the input ``(2*L, B, H)`` is nn.LSTM/GRU's final-state layout.
    """

    def __init__(self, hidden: int, num_layers: int) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(num_layers))

    def forward(self, final: Tensor) -> Tensor:
        n_layers, b, h = len(self.proj), final.size(1), final.size(2)
        both = final.view(n_layers, 2, b, h)  # (L, 2, B, H)
        both = torch.cat([both[:, 0], both[:, 1]], dim=-1)  # (L, B, 2H)
        out = [torch.tanh(p(x)) for p, x in zip(self.proj, both, strict=True)]  # L x (B, H)
        return torch.stack(out, dim=1)  # (B, L, H)


class RNNSeq2Seq(DecoderModel):
    """Recurrent encoder-decoder; subclasses pick the cell (``lstm`` or ``gru``).

    State: ``hyp`` holds the decoder states ``h`` (and ``c`` for LSTM) as ``(B*K, L, H)``
    (rows first, so the generic reorder applies; transposed when calling the RNN);
    ``shared`` holds the attention keys/values and source mask, one row per sentence (and,
    with ``copy``, the target id of every source position).
    """

    cell: str = "lstm"

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        emb_dim: int = 256,
        hidden: int = 512,
        num_layers: int = 2,
        dropout: float = 0.3,
        attention: str = "additive",
        tie_embeddings: bool = False,
        copy: bool = False,
    ) -> None:
        super().__init__(src_vocab_size, tgt_vocab_size)
        if attention not in ATTENTIONS:
            raise LabError(f"model.attention={attention!r}; valid: {', '.join(ATTENTIONS)}.")
        if copy and attention == "none":
            raise copy_unsupported(self.cell, "has model.attention=none")
        if tie_embeddings and emb_dim != hidden:
            raise LabError(
                "model.tie_embeddings needs emb_dim == hidden "
                f"(got emb_dim={emb_dim}, hidden={hidden})"
            )
        rnn = CELLS[self.cell]
        kw = {"batch_first": True, "dropout": dropout if num_layers > 1 else 0.0}
        self.hidden, self.num_layers, self.attention = hidden, num_layers, attention
        self.src_embed = nn.Embedding(src_vocab_size, emb_dim, padding_idx=self.pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, emb_dim, padding_idx=self.pad_id)
        self.drop = nn.Dropout(dropout)
        self.encoder = rnn(emb_dim, hidden, num_layers, bidirectional=True, **kw)
        self.bridge_h = Bridge(hidden, num_layers)
        self.bridge_c = Bridge(hidden, num_layers) if self.cell == "lstm" else None
        self.decoder = rnn(emb_dim, hidden, num_layers, **kw)
        attn_cls = ATTENTIONS[attention]
        self.attn = attn_cls(hidden, 2 * hidden) if attn_cls is not None else None
        ctx_dim = self.attn.ctx_dim if self.attn is not None else 0
        self.combine = nn.Linear(hidden + ctx_dim, hidden, bias=False) if ctx_dim else None
        self.out = nn.Linear(hidden, tgt_vocab_size, bias=False)
        gate_dim = hidden + ctx_dim + emb_dim  # [decoder state; context; input embedding]
        self.copy = CopyHead(src_vocab_size, tgt_vocab_size, gate_dim) if copy else None
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)
        if tie_embeddings:
            self.out.weight = self.tgt_embed.weight

    @property
    def cross_attention(self) -> bool:
        """The decoder's attention over the source, unless ``model.attention=none``."""
        return self.attn is not None

    # --- encoder --------------------------------------------------------------------------
    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        """Bidirectional RNN over the packed source: padding never enters the recurrence.

        An empty source (length 0) reads nothing: its outputs and final states are zeros, the
        states of an RNN that never stepped (the decoder starts from the bridge of them).
        """
        s = src_tokens.size(1)
        enc, final = self._encoder_run(src_tokens, src_lengths)
        memory = {"enc": enc, "src_mask": padding_mask(src_lengths, s)}  # (B, S)
        if self.copy is not None:
            memory["copy_ids"] = self.copy.target_ids(src_tokens)  # (B, S)
        if self.cell == "lstm":
            h, c = final  # (2L, B, H) each
            memory["h0"], memory["c0"] = self.bridge_h(h), self.bridge_c(c)  # (B, L, H)
        else:
            memory["h0"] = self.bridge_h(final)  # (B, L, H)
        return memory

    def _encoder_run(
        self, src_tokens: Tensor, src_lengths: Tensor
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        """Encoder outputs ``(B, S, 2H)`` and final states ``(2L, B, H)`` (a pair for LSTM)."""
        (b, s), two_l = src_tokens.shape, 2 * self.num_layers
        empty = src_lengths.eq(0)  # (B,)
        if s == 0 or bool(empty.all()):  # nothing to read anywhere: the untouched RNN
            zeros = src_tokens.new_zeros(two_l, b, self.hidden, dtype=self.src_embed.weight.dtype)
            enc = zeros.new_zeros(b, s, 2 * self.hidden)
            return enc, ((zeros, zeros.clone()) if self.cell == "lstm" else zeros)
        x = self.drop(self.src_embed(src_tokens))  # (B, S, E)
        lengths = src_lengths.clamp_min(1).cpu()  # packing needs >= 1; empty rows zeroed below
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.encoder(packed)
        enc, _ = pad_packed_sequence(out, batch_first=True, total_length=s)  # (B, S, 2H)
        if bool(empty.any()):
            enc = enc.masked_fill(empty[:, None, None], 0.0)
            rows = empty[None, :, None]  # (1, B, 1)
            if self.cell == "lstm":
                final = tuple(f.masked_fill(rows, 0.0) for f in final)
            else:
                final = final.masked_fill(rows, 0.0)
        return enc, final

    # --- decoder --------------------------------------------------------------------------
    def _run_decoder(self, x: Tensor, hyp: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Decoder RNN over embedded tokens ``x`` ``(N, T, E)`` from states ``(N, L, H)``; all
        T in one call."""
        h0 = hyp["h"].transpose(0, 1).contiguous()  # (L, N, H)
        if self.cell == "lstm":
            out, (h, c) = self.decoder(x, (h0, hyp["c"].transpose(0, 1).contiguous()))
            return out, {"h": h.transpose(0, 1), "c": c.transpose(0, 1)}  # (N, T, H)
        out, h = self.decoder(x, h0)
        return out, {"h": h.transpose(0, 1)}  # (N, T, H)

    def _readout(
        self, h: Tensor, shared: dict[str, Tensor], emb: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Logits ``(B, N, V)`` from N decoder outputs per sentence ``h`` ``(B, N, H)`` fed the
        embedded tokens ``emb`` ``(B, N, E)`` (with ``copy``, the mixture's log-probabilities),
        and the attention weights ``(B, N, S)`` (None without attention)."""
        if self.attn is None:
            return linear(self.out, self.drop(h)), None  # (B, N, V)
        mask = shared["src_mask"]  # (B, S)
        a, ctx = self.attn(h, shared["keys"], shared["values"], mask)  # (B, N, S), (B, N, C)
        combined = torch.tanh(linear(self.combine, torch.cat([h, ctx], dim=-1)))  # (B, N, H)
        logits = linear(self.out, self.drop(combined))
        if self.copy is None:
            return logits, a  # (B, N, V)
        gate_in = torch.cat([h, ctx, emb], dim=-1)  # (B, N, H + C + E)
        return self.copy(logits, a, shared["copy_ids"], gate_in, mask), a  # (B, N, V)

    def _shared(self, memory: dict[str, Tensor]) -> dict[str, Tensor]:
        shared = {"src_mask": memory["src_mask"]}  # (B, S)
        if self.copy is not None:
            shared["copy_ids"] = memory["copy_ids"]  # (B, S)
        if self.attn is not None:
            shared["keys"], shared["values"] = self.attn.prepare(memory["enc"])  # (B, S, .)
        return shared

    def _initial_hyp(self, memory: dict[str, Tensor], beam_size: int) -> dict[str, Tensor]:
        names = ("h", "c") if self.cell == "lstm" else ("h",)
        return {n: memory[f"{n}0"].repeat_interleave(beam_size, dim=0) for n in names}

    def init_state(self, memory: dict[str, Tensor], beam_size: int) -> State:
        hyp = self._initial_hyp(memory, beam_size)  # (B*K, L, H) each
        return State(hyp=hyp, shared=self._shared(memory), beam_size=beam_size)

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        k = state.beam_size
        x = self.drop(self.tgt_embed(prev_tokens[:, None]))  # (B*K, 1, E)
        out, hyp = self._run_decoder(x, state.hyp)  # (B*K, 1, H)
        h = out.view(-1, k, self.hidden)  # (B, K, H): the K beams are K queries per sentence
        emb = x.view(-1, k, x.size(-1))  # (B, K, E)
        logits, a = self._readout(h, state.shared, emb)  # (B, K, V), (B, K, S)
        attention = None if a is None else a.reshape(x.size(0), -1)  # (B*K, S)
        new = state.successor(hyp, attention)
        return torch.log_softmax(logits.reshape(x.size(0), -1).float(), dim=-1), new  # (B*K, V)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)``; with ``copy``, log-probabilities."""
        memory = self.encode(src_tokens, src_lengths)
        x = self.drop(self.tgt_embed(prev_tokens))  # (B, T, E)
        out, _ = self._run_decoder(x, self._initial_hyp(memory, 1))  # (B, T, H)
        return self._readout(out, self._shared(memory), x)[0]  # (B, T, V)


@MODELS.register("lstm")
class LSTMSeq2Seq(RNNSeq2Seq):
    """LSTM decoder over a bidirectional LSTM encoder, attention: additive|dot|general|none."""

    cell = "lstm"


@MODELS.register("gru")
class GRUSeq2Seq(RNNSeq2Seq):
    """GRU decoder over a bidirectional GRU encoder, attention: additive|dot|general|none."""

    cell = "gru"
