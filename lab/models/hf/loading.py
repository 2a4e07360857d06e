"""Loading a Hugging Face model by hub name or local path, and the ids the lab derives from it.

Also registers ``lab_beams_sdpa``, the attention function that lets the K beams of a sentence
attend to cross-attention keys/values stored once per sentence. Transformers is imported only
inside functions, so ``import lab`` works without it; ``import_transformers`` names the extra.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError

ATTN_NAME = "lab_beams_sdpa"


def import_transformers() -> Any:
    """The ``transformers`` module, or a ``LabError`` that says how to install it."""
    try:
        import transformers
    except ImportError as e:
        raise LabError(
            "model=hf needs the transformers package; install it with pip install -e '.[hf]'."
        ) from e
    return transformers


def beam_grouped_sdpa(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    **kwargs: Any,
) -> tuple[Tensor, Tensor | None]:
    """Transformers attention function: SDPA that lets ``B*K`` one-token queries attend to keys and
    values stored once per sentence (``B`` rows).

    ``query`` ``(B*K, H, 1, Dh)`` against ``key``/``value`` ``(B, H, S, Dh)``: the K beams of a
    sentence become K query positions of that sentence. Equal batch sizes go to plain SDPA.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    n, b = query.size(0), key.size(0)
    if n == b or query.size(2) != 1 or n % b:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    k, h, dh = n // b, query.size(1), query.size(3)
    q = query.view(b, k, h, dh).transpose(1, 2)  # (B, H, K, Dh)
    kwargs["is_causal"] = False
    out, weights = sdpa_attention_forward(module, q, key, value, attention_mask, **kwargs)
    return out.reshape(n, 1, h, out.size(-1)), weights  # (B, K, H, Dh) -> (B*K, 1, H, Dh)


@functools.cache
def register_attention() -> None:
    """Register ``lab_beams_sdpa`` (attention and mask functions) with Transformers, once."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTN_NAME, beam_grouped_sdpa)
    AttentionMaskInterface.register(ATTN_NAME, sdpa_mask)


def load_config(transformers: Any, name_or_path: str) -> Any:
    """The model's config; a ``LabError`` naming the setting when it cannot be read."""
    try:
        return transformers.AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise LabError(
            f"cannot load Hugging Face model {name_or_path!r}: {e}; give a hub name or a "
            "local directory written by save_pretrained (model.name_or_path=...)."
        ) from e


def parse_dtype(dtype: str) -> torch.dtype:
    """``"float32"`` -> ``torch.float32``; a ``LabError`` for anything that is not a dtype."""
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise LabError(f"model.dtype={dtype!r} is not a torch dtype; use float32 or bfloat16.")
    return torch_dtype


def load_model(
    transformers: Any, name_or_path: str, seq2seq: bool, dtype: torch.dtype, kw: dict[str, Any]
) -> Any:
    """The model in eval mode. Seq2seq models get the ``lab_beams_sdpa`` attention when they
    accept an attention function, and their default attention otherwise."""
    auto = transformers.AutoModelForSeq2SeqLM if seq2seq else transformers.AutoModelForCausalLM
    hf = None
    if seq2seq:
        register_attention()
        try:
            hf = auto.from_pretrained(
                name_or_path, dtype=dtype, attn_implementation=ATTN_NAME, **kw
            )
        except (ValueError, ImportError):
            hf = None  # the model does not accept an SDPA attention function
    if hf is None:
        hf = auto.from_pretrained(name_or_path, dtype=dtype, **kw)
    return hf.eval()


def first_id(value: Any) -> int | None:
    """A token id from a config field that holds one id, a list of ids (the first) or None."""
    if isinstance(value, list | tuple):
        return int(value[0]) if value else None
    return None if value is None else int(value)


@dataclass(frozen=True)
class ModelIds:
    """The model's own ids: vocabulary size, EOS, pad (None if absent) and, for seq2seq models,
    the decoder start token (None for causal LMs)."""

    vocab: int
    eos: int
    pad: int | None
    start: int | None


def model_ids(hf: Any, config: Any, name_or_path: str, seq2seq: bool) -> ModelIds:
    """Read the ids from the config, falling back to the generation config (and, for the decoder
    start, to the pad id); a ``LabError`` when EOS or a needed decoder start is missing."""
    vocab = int(hf.get_output_embeddings().weight.size(0))
    eos = first_id(config.eos_token_id)
    if eos is None:
        eos = first_id(getattr(hf.generation_config, "eos_token_id", None))
    if eos is None:
        raise LabError(f"model {name_or_path!r} defines no eos_token_id; set it in its config.")
    pad = first_id(getattr(config, "pad_token_id", None))
    start = None
    if seq2seq:
        start = first_id(getattr(config, "decoder_start_token_id", None))
        if start is None:
            start = first_id(getattr(hf.generation_config, "decoder_start_token_id", None))
        if start is None:
            start = pad
        if start is None:
            raise LabError(f"model {name_or_path!r} defines no decoder_start_token_id.")
    return ModelIds(vocab=vocab, eos=eos, pad=pad, start=start)
