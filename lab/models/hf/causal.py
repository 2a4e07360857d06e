"""The causal-LM path of ``model=hf`` (GPT-2, Llama, ...): the source is the prompt.

``encode`` runs the prompt once per sentence and keeps its keys/values and the next-token
distribution; the first ``step`` returns that distribution without a model call. The prompt
keys/values are copied K times at ``init_state`` (a Transformers cache layer holds one tensor per
layer, so the prompt cannot stay shared) and are reordered with the hypothesis' own keys/values
every step, as in ``generate``. Positions count real tokens only (target t of sentence b sits at
``len_b + t``), so right padding changes nothing and results equal ``generate`` on a left-padded
batch.

State layout: ``hyp = {"k": [...], "v": [...]}`` (prompt and targets, one tensor per layer);
``shared`` holds ``last`` (the prompt's next-token log-probabilities), ``lengths`` and ``mask``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import Leaf, State
from lab.models.hf.cache import cache_tensors, dynamic_cache

if TYPE_CHECKING:
    from lab.models.hf import HFModel


def encode(model: HFModel, ids: Tensor, src_lengths: Tensor, mask: Tensor) -> dict[str, Leaf]:
    """Run the prompts ``(B, S)`` (model ids) once: their per-layer keys/values ``pk``/``pv``
    ``(B, H, S, Dh)`` and the log-probabilities of the token after each prompt ``(B, V)``."""
    from transformers import DynamicCache

    b, s = ids.shape
    pos = torch.arange(s, device=ids.device)[None].expand(b, s)  # (B, S)
    last = src_lengths - 1  # (B,) position of each prompt's last real token
    kw: dict[str, Any] = {}
    keep = torch.unique(last)  # (U,) sorted positions whose logits are needed
    if model._keeps_logits:
        kw["logits_to_keep"] = keep
    cache = DynamicCache()
    out = model.hf(
        input_ids=ids,
        attention_mask=mask.long(),
        position_ids=pos,
        **{model._cache_kw: cache},
        use_cache=True,
        **kw,
    )
    col = torch.searchsorted(keep, last) if model._keeps_logits else last  # (B,)
    logits = out.logits[torch.arange(b, device=ids.device), col]  # (B, V)
    keys, values = cache_tensors(cache)  # (B, H, S, Dh) each
    return {
        "last": model._log_probs(logits),
        "lengths": src_lengths,
        "mask": mask,
        "pk": keys,
        "pv": values,
    }


def init_state(memory: dict[str, Leaf], beam_size: int) -> State:
    """The prompt keys/values, copied K times: ``(B*K, H, S, Dh)`` per layer."""
    shared = {n: memory[n] for n in ("last", "lengths", "mask")}
    hyp: dict[str, Leaf] = {
        "k": [t.repeat_interleave(beam_size, dim=0) for t in memory["pk"]],
        "v": [t.repeat_interleave(beam_size, dim=0) for t in memory["pv"]],
    }
    return State(hyp=hyp, shared=shared, beam_size=beam_size)


def step(model: HFModel, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
    """Log-probabilities ``(B*K, V)`` of the next token and the state with ``prev_tokens``."""
    k, t = state.beam_size, state.step
    if t == 0:  # the prompt's next-token distribution, computed by encode
        lp = state.shared["last"].repeat_interleave(k, dim=0)  # (B*K, V)
        return lp, State(hyp=state.hyp, shared=state.shared, beam_size=k, step=1)
    lengths = state.shared["lengths"].repeat_interleave(k)  # (B*K,)
    prompt_mask = state.shared["mask"].repeat_interleave(k, dim=0)  # (B*K, S)
    n = prompt_mask.size(0)
    ones = prompt_mask.new_ones(n, t)  # (B*K, t): the t-1 cached targets and this one
    mask = torch.cat([prompt_mask, ones], dim=1)  # (B*K, S+t)
    pos = (lengths + t - 1)[:, None]  # (B*K, 1)
    limit = getattr(model.hf.config, "max_position_embeddings", None)
    if limit and int(pos.max()) >= int(limit):
        raise LabError(
            f"prompt + output exceed the model's {limit} positions; lower the output limit "
            "(search.max_len_a, search.max_len_b) or shorten the prompts."
        )
    cache = dynamic_cache(state.hyp["k"], state.hyp["v"])
    kw = {"logits_to_keep": 1} if model._keeps_logits else {}
    out = model.hf(
        input_ids=model._to_hf(prev_tokens)[:, None],  # (B*K, 1)
        attention_mask=mask.long(),
        position_ids=pos,
        **{model._cache_kw: cache},
        use_cache=True,
        **kw,
    )
    keys, values = cache_tensors(cache)  # (B*K, H, S+t, Dh) each
    hyp: dict[str, Leaf] = {"k": keys, "v": values}
    new = State(hyp=hyp, shared=state.shared, beam_size=k, step=t + 1)
    return model._log_probs(out.logits[:, -1]), new


def forward(model: HFModel, src: Tensor, src_lengths: Tensor, mask: Tensor, prev: Tensor) -> Tensor:
    """Teacher-forced logits ``(B, T, V)`` of model ids: prompt ``src`` ``(B, S)`` then
    ``prev[:, 1:]``; the first target's logits are those after each prompt's last real token."""
    b, s = src.shape
    t = prev.size(1)
    ids = torch.cat([src, prev[:, 1:]], dim=1)  # (B, S+T-1)
    full_mask = torch.cat([mask, mask.new_ones(b, t - 1)], dim=1)  # (B, S+T-1)
    ar = torch.arange(max(s, t), device=src.device)
    pos = torch.cat(
        [ar[:s][None].expand(b, s), src_lengths[:, None] + ar[: t - 1][None]], dim=1
    )  # (B, S+T-1): targets continue right after each prompt's real tokens
    out = model.hf(input_ids=ids, attention_mask=full_mask.long(), position_ids=pos)
    first = out.logits[torch.arange(b, device=src.device), src_lengths - 1]  # (B, V)
    return torch.cat([first[:, None], out.logits[:, s:]], dim=1)  # (B, T, V)
