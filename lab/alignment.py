"""The alignment of each final output with its source, for ``eval.save_attention=true``.

The model's cross-attention (``lab.models.base``: ``State.attention``) at every step of the
output the search returned, as a matrix of output tokens x source tokens, is written beside
the output in ``predictions.jsonl`` (``attention``: the source and output pieces and the
weights, rounded) and shown by the dashboard's drill-down as a heatmap.

The matrix is computed after the search, by feeding each output's tokens back through
``step`` (one row per sentence, batched as the evaluation is): the weights are those the
search saw for that output, since a sentence decodes the same alone and in a batch, and any
search's output can be aligned without the search keeping a matrix per hypothesis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.data import Pair, pad, sentence_batches
from lab.errors import LabError
from lab.models.base import DecoderModel

DIGITS = 3  # weights to three decimals: enough for a heatmap, small in predictions.jsonl


def check_save_attention(model: DecoderModel) -> None:
    """One line when ``model`` reports no cross-attention to save."""
    if not model.cross_attention:
        raise LabError(
            f"eval.save_attention needs the model's cross-attention, which"
            f" {type(model).__name__} does not report; use a transformer (without model.facts),"
            " gru or lstm (with model.attention other than none), or drop eval.save_attention."
        )


@torch.inference_mode()
def attention_of(
    model: DecoderModel, src: Tensor, src_lengths: Tensor, outputs: Sequence[Sequence[int]]
) -> list[Tensor]:
    """The cross-attention ``(T_i, S_i)`` of each output (its tokens, EOS included) over its
    sentence's source ``src`` ``(B, S)`` of ``src_lengths`` ``(B,)``: row t is the attention
    of the step that chose token t."""
    steps = max((len(o) for o in outputs), default=0)
    fed = torch.full((len(outputs), steps), model.pad_id, dtype=torch.long, device=src.device)
    for b, out in enumerate(outputs):
        fed[b, : len(out)] = torch.tensor(list(out), dtype=torch.long)  # (B, T)
    state = model.init_state(model.encode(src, src_lengths), 1).asking_attention()
    prev = torch.full((len(outputs),), model.bos_id, dtype=torch.long, device=src.device)
    rows = []
    for t in range(steps):  # past an output's end its row reads padding and is cut below
        _, state = model.step(prev, state)
        if state.attention is None:
            check_save_attention(model)
            raise LabError(f"{type(model).__name__} reported no cross-attention when asked.")
        rows.append(state.attention.float())  # (B, S)
        prev = fed[:, t]
    attn = torch.stack(rows, 1) if rows else src.new_zeros(len(outputs), 0, src.size(1)).float()
    return [attn[b, : len(o), : int(src_lengths[b])] for b, o in enumerate(outputs)]


def saved_attention(
    model: DecoderModel,
    tokenizer: Any,
    pairs: Sequence[Pair],
    outputs: Mapping[int, Sequence[int]],
    batch_size: int,
    device: torch.device,
) -> dict[int, dict[str, Any]]:
    """By pair index: ``{"src": source pieces, "tgt": output pieces, "weights": rows}`` of the
    output ``outputs[index]`` (token ids, EOS included), the weights rounded to ``DIGITS``."""
    check_save_attention(model)
    out: dict[int, dict[str, Any]] = {}
    for batch in sentence_batches(pairs, batch_size):
        src, lengths = pad([p.src for p in batch])
        tokens = [outputs[p.index] for p in batch]
        mats = attention_of(model, src.to(device), lengths.to(device), tokens)
        for p, toks, m in zip(batch, tokens, mats, strict=True):
            out[p.index] = {
                "src": [tokenizer.id_to_piece(i) for i in p.src],
                "tgt": [tokenizer.id_to_piece(i) for i in toks],
                "weights": [[round(w, DIGITS) for w in row] for row in m.tolist()],
            }
    return out
