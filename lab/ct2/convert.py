"""The lab's Transformer as a CTranslate2 model: the same weights, the same computation.

CTranslate2's own converters read other toolkits' checkpoints; the lab's Transformer is
written straight into a ``ctranslate2.specs.TransformerSpec`` instead, weight by weight, so
nothing is approximated by a look-alike architecture:

* embeddings scaled by sqrt(d_model) plus the lab's own position table (sinusoidal or learned),
  given to CTranslate2 explicitly rather than recomputed with its convention;
* pre-norm (with final norms) or post-norm residual blocks, LayerNorm epsilon 1e-5 (torch's);
* self-attention q/k/v fused into one projection, cross-attention k/v fused, as CTranslate2
  stores them; ReLU feed-forward; the output projection (tied or not) without bias.

Token ids become vocabulary entries named by the id (``"17"``), with the lab's reserved ids
named as CTranslate2 expects them (``<pad>``, ``<s>``, ``</s>``, ``<unk>``), so a batch of id
sequences maps to CTranslate2 tokens and back without a tokenizer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lab.errors import LabError
from lab.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

SPECIAL_NAMES = {PAD_ID: "<pad>", BOS_ID: "<s>", EOS_ID: "</s>", UNK_ID: "<unk>"}
INSTALL = "pip install ctranslate2"


def ctranslate2() -> Any:
    """The ``ctranslate2`` module, or one line naming how to install it."""
    if importlib.util.find_spec("ctranslate2") is None:
        raise LabError(f"CTranslate2 is not installed; install it with {INSTALL}.")
    import ctranslate2 as ct2

    return ct2


def vocabulary(size: int) -> list[str]:
    """CTranslate2 token names for ids ``0..size-1``."""
    return [SPECIAL_NAMES.get(i, str(i)) for i in range(size)]


def to_tokens(ids: list[int] | tuple[int, ...]) -> list[str]:
    return [SPECIAL_NAMES.get(i, str(i)) for i in ids]


_IDS = {name: i for i, name in SPECIAL_NAMES.items()}


def to_ids(tokens: list[str]) -> tuple[int, ...]:
    return tuple(_IDS[t] if t in _IDS else int(t) for t in tokens)


def check_convertible(model: nn.Module) -> None:
    """One line when ``model`` is not a plain lab Transformer (CTranslate2 has no RNN, copy, fact
    encoder or decoder-only counterpart of it here)."""
    from lab.models.transformer import Transformer

    if not isinstance(model, Transformer):
        raise LabError(
            f"only model=transformer converts to CTranslate2, not {type(model).__name__}; "
            "decode this model with the lab's searches (search=beam_ct2 mimics CTranslate2)."
        )
    if model.copy is not None:
        raise LabError(
            "a copy decoder (model.copy=true) has no CTranslate2 counterpart; "
            "convert a model trained without copy."
        )
    if model.word_mask is not None:
        raise LabError(
            "an encoder over facts (model.facts=true) has no CTranslate2 counterpart; "
            "convert a model trained without facts."
        )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


def _linear(spec: Any, layer: nn.Linear) -> None:
    spec.weight = _np(layer.weight)
    if layer.bias is not None:
        spec.bias = _np(layer.bias)


def _fused(spec: Any, layers: list[nn.Linear]) -> None:
    spec.weight = np.concatenate([_np(x.weight) for x in layers])
    spec.bias = np.concatenate([_np(x.bias) for x in layers])


def _norm(spec: Any, norm: nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _np(norm.weight), _np(norm.bias)


def _attention(spec: Any, attn: nn.Module, residual: nn.Module, self_attention: bool) -> None:
    if self_attention:
        _fused(spec.linear[0], [attn.q, attn.k, attn.v])
    else:
        _linear(spec.linear[0], attn.q)
        _fused(spec.linear[1], [attn.k, attn.v])
    _linear(spec.linear[-1], attn.out)
    _norm(spec.layer_norm, residual.norm)


def _ffn(spec: Any, ff: nn.Module, residual: nn.Module) -> None:
    _linear(spec.linear_0, ff.net[0])
    _linear(spec.linear_1, ff.net[3])
    _norm(spec.layer_norm, residual.norm)


def build_spec(model: nn.Module) -> Any:
    """A ``TransformerSpec`` holding ``model``'s weights (a lab ``Transformer``)."""
    check_convertible(model)
    ct2 = ctranslate2()
    spec_mod = ct2.specs.transformer_spec
    pre_norm = isinstance(model.enc_norm, nn.LayerNorm)
    spec = spec_mod.TransformerSpec.from_config(
        (len(model.encoder), len(model.decoder)), model.n_heads, pre_norm=pre_norm
    )
    spec.config.layer_norm_epsilon = model.enc_norm.eps if pre_norm else 1e-5
    positions = model.positions
    table = positions.table.weight if positions.table is not None else positions.fixed  # (P, D)
    for side, embed in ((spec.encoder, model.src_embed), (spec.decoder, model.tgt_embed)):
        emb = side.embeddings[0] if side is spec.encoder else side.embeddings
        emb.weight = _np(embed.weight)
        side.scale_embeddings = True
        side.position_encodings.encodings = _np(table)
    if pre_norm:
        _norm(spec.encoder.layer_norm, model.enc_norm)
        _norm(spec.decoder.layer_norm, model.dec_norm)
    for ls, layer in zip(spec.encoder.layer, model.encoder, strict=True):
        _attention(ls.self_attention, layer.attn, layer.r1, self_attention=True)
        _ffn(ls.ffn, layer.ff, layer.r2)
    for ls, layer in zip(spec.decoder.layer, model.decoder, strict=True):
        _attention(ls.self_attention, layer.self_attn, layer.r1, self_attention=True)
        _attention(ls.attention, layer.cross_attn, layer.r2, self_attention=False)
        _ffn(ls.ffn, layer.ff, layer.r3)
    spec.decoder.projection.weight = _np(model.out.weight)
    spec.register_source_vocabulary(vocabulary(model.src_embed.num_embeddings))
    spec.register_target_vocabulary(vocabulary(model.out.out_features))
    return spec


def convert(model: nn.Module, out_dir: Path, quantization: str | None = None) -> Path:
    """Write ``model`` as a CTranslate2 model directory ``out_dir`` (replaced if present);
    ``quantization``: CTranslate2's weight type (None: float32, or ``int8`` ...)."""
    spec = build_spec(model)
    spec.validate()
    if quantization:
        spec.optimize(quantization=quantization)
    else:
        spec.optimize()
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
    return out_dir
