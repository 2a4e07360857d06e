"""The seq2seq path of ``model=hf`` (Marian/opus-mt, BART, T5, ...): encode once, then step.

``encode`` runs the encoder once per sentence. The first ``step`` runs the decoder on one row per
*sentence* (all beams start from the same decoder start token), which fills the cross-attention
keys/values once per sentence; they stay in ``State.shared`` (``B`` rows) and are never copied
or reordered per beam. Later steps feed one token per hypothesis (``B*K`` rows) and attend to the
shared keys/values through the attention function ``lab_beams_sdpa``: the K beams of a sentence
become K query positions of that sentence (as ``Attention.attend_beams`` does for the lab's own
Transformer). A model whose attention does not go through the Transformers attention interface
falls back to copying the cross-attention keys/values K times, once, at the first step (memory
and bandwidth K times larger, still never reordered: beams of a sentence share them). Only the
self-attention cache (``B*K`` rows) lives in ``State.hyp`` and is reordered.

State layout: ``hyp = {"k": [...], "v": [...]}`` (self-attention, one tensor per layer);
``shared`` holds ``enc``/``mask`` and, from the first step on, ``ck``/``cv`` per layer (plus
``enc_k``/``mask_k`` when the keys/values are copied per beam).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lab.models.base import Leaf, State
from lab.models.hf.cache import cache_tensors, dynamic_cache

if TYPE_CHECKING:
    from lab.models.hf import HFModel


def encode(model: HFModel, ids: Tensor, mask: Tensor) -> dict[str, Leaf]:
    """Encoder states ``(B, S, D)`` of model ids ``(B, S)`` and the padding mask ``(B, S)``."""
    enc = model.hf.get_encoder()(input_ids=ids, attention_mask=mask.long())
    return {"enc": enc.last_hidden_state, "mask": mask}  # (B, S, D), (B, S)


def init_state(memory: dict[str, Leaf], beam_size: int) -> State:
    """Nothing per hypothesis yet: the first step fills the caches."""
    shared = {"enc": memory["enc"], "mask": memory["mask"]}
    return State(hyp={}, shared=shared, beam_size=beam_size)


def step(model: HFModel, prev_tokens: Tensor, state: State, grouped: bool) -> tuple[Tensor, State]:
    """Log-probabilities ``(B*K, V)`` and the new state; ``grouped``: cross-attention keys/values
    once per sentence (through ``lab_beams_sdpa``) rather than copied per beam."""
    if state.step == 0:
        return _first_step(model, state, grouped)
    return _next_step(model, prev_tokens, state, grouped)


def _per_beam(t: Tensor, k: int) -> Tensor:
    """``t`` ``(B, ...)`` copied once per beam, still one row per sentence: ``(B, K, ...)``."""
    return t[:, None].expand(-1, k, *t.shape[1:]).contiguous()


def _first_step(model: HFModel, state: State, grouped: bool) -> tuple[Tensor, State]:
    """Every beam starts from the decoder start token: one decoder row per sentence."""
    from transformers import DynamicCache, EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput

    k = state.beam_size
    enc, mask = state.shared["enc"], state.shared["mask"]  # (B, S, D), (B, S)
    ids = torch.full((enc.size(0), 1), model.decoder_start_id, device=enc.device)  # (B, 1)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    out = model.hf(
        encoder_outputs=BaseModelOutput(last_hidden_state=enc),
        attention_mask=mask.long(),
        decoder_input_ids=ids,
        **{model._cache_kw: cache},
        use_cache=True,
    )
    lp = model._log_probs(out.logits[:, -1]).repeat_interleave(k, dim=0)  # (B*K, V)
    self_k, self_v = cache_tensors(cache.self_attention_cache)
    cross_k, cross_v = cache_tensors(cache.cross_attention_cache)
    hyp: dict[str, Leaf] = {
        "k": [t.repeat_interleave(k, dim=0) for t in self_k],  # (B*K, H, 1, Dh)
        "v": [t.repeat_interleave(k, dim=0) for t in self_v],
    }
    shared = dict(state.shared)
    if grouped:
        shared["ck"], shared["cv"] = cross_k, cross_v  # (B, H, S, Dh)
    else:  # copied once per beam, kept per sentence
        shared["ck"] = [_per_beam(t, k) for t in cross_k]  # (B, K, H, S, Dh)
        shared["cv"] = [_per_beam(t, k) for t in cross_v]
        shared["enc_k"] = _per_beam(enc, k)  # (B, K, S, D)
        shared["mask_k"] = _per_beam(mask, k)  # (B, K, S)
    return lp, State(hyp=hyp, shared=shared, beam_size=k, step=1)


def _next_step(
    model: HFModel, prev_tokens: Tensor, state: State, grouped: bool
) -> tuple[Tensor, State]:
    """One token per hypothesis against its self-attention cache and the shared cross one."""
    from transformers import EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput

    sh = state.shared
    enc, mask = sh["enc"], sh["mask"]  # (B, S, D), (B, S)
    cross_k, cross_v = sh["ck"], sh["cv"]
    if not grouped:  # (B, K, ...) -> (B*K, ...), views
        cross_k = [t.flatten(0, 1) for t in cross_k]  # (B*K, H, S, Dh)
        cross_v = [t.flatten(0, 1) for t in cross_v]
        enc = sh["enc_k"].flatten(0, 1)  # (B*K, S, D)
        mask = sh["mask_k"].flatten(0, 1)  # (B*K, S)
    cache = EncoderDecoderCache(
        dynamic_cache(state.hyp["k"], state.hyp["v"]), dynamic_cache(cross_k, cross_v)
    )
    out = model.hf(
        encoder_outputs=BaseModelOutput(last_hidden_state=enc),
        attention_mask=mask.long(),
        decoder_input_ids=model._to_hf(prev_tokens)[:, None],  # (B*K, 1)
        **{model._cache_kw: cache},
        use_cache=True,
    )
    keys, values = cache_tensors(cache.self_attention_cache)  # (B*K, H, t+1, Dh) each
    hyp: dict[str, Leaf] = {"k": keys, "v": values}
    new = State(hyp=hyp, shared=sh, beam_size=state.beam_size, step=state.step + 1)
    return model._log_probs(out.logits[:, -1]), new


def forward(model: HFModel, src: Tensor, mask: Tensor, prev: Tensor) -> Tensor:
    """Teacher-forced logits ``(B, T, V)`` of model ids; ``prev[:, 0]`` becomes the decoder
    start token."""
    prev = prev.clone()
    prev[:, 0] = model.decoder_start_id
    return model.hf(input_ids=src, attention_mask=mask.long(), decoder_input_ids=prev).logits


def grouped_matches_copies(model: HFModel) -> bool:
    """Whether per-sentence cross-attention keys/values give the same log-probabilities as
    per-beam copies on this model (a model may bypass the attention function).

    Decodes two steps of a two-sentence batch both ways, choosing the layout by argument, so
    the model is left untouched; a failure of the grouped path counts as a mismatch.
    """
    device = next(model.hf.parameters()).device
    v, eos = model.hf_vocab_size, model.eos_id
    src = torch.tensor([[5 % v, eos], [eos, eos]], device=device)  # (2, 2)
    lengths = torch.tensor([2, 1], device=device)  # (2,)
    prev = torch.tensor([4 % v, 6 % v], device=device)  # (2,)
    try:
        with torch.inference_mode():
            memory = model.encode(src, lengths)
            results = [_two_steps(model, memory, prev, grouped) for grouped in (True, False)]
    except (RuntimeError, ValueError):
        return False
    tol = 1e-4 if model.hf.dtype == torch.float32 else 5e-2
    return bool(torch.allclose(results[0], results[1], atol=tol, rtol=tol))


def _two_steps(model: HFModel, memory: dict[str, Leaf], prev: Tensor, grouped: bool) -> Tensor:
    """Log-probabilities ``(4, V)`` after the start token and ``prev``, two beams a sentence."""
    state = init_state(memory, 2)
    _, state = step(model, prev.repeat_interleave(2), state, grouped)  # (4,)
    lp, _ = step(model, prev.repeat(2), state, grouped)  # (4,) tokens in
    return lp
