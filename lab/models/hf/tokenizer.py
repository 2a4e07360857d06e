"""The model's own text tokenizer: loading it, text <-> lab batches, and the wrapper the lab's
data code uses (``encode`` without EOS, ``decode`` that stops at EOS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from lab.models.hf import HFModel


def load_tokenizer(transformers: Any, name_or_path: str) -> Any:
    """The model's tokenizer, or None when its files are missing (an empty vocabulary counts as
    missing: Transformers builds one from the config alone for some model types)."""
    try:
        tok = transformers.AutoTokenizer.from_pretrained(name_or_path)
    except Exception:  # noqa: BLE001 - any failure means: no usable tokenizer
        return None
    return tok if getattr(tok, "vocab_size", 0) else None


def encode_texts(tokenizer: Any, texts: list[str], pad_id: int) -> tuple[Tensor, Tensor]:
    """Tokenize ``texts`` (special tokens added): right-padded ids ``(B, S)`` and lengths
    ``(B,)``, padded with the lab's ``pad_id``."""
    ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    lengths = torch.tensor([len(x) for x in ids], dtype=torch.long)  # (B,)
    src = torch.full((len(ids), max([1, *map(len, ids)])), pad_id)  # (B, S)
    for i, row in enumerate(ids):
        src[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return src, lengths


def decode_ids(tokenizer: Any, ids: Any, eos_id: int, vocab_size: int) -> str:
    """Text of generated ids: stops at EOS, drops ids ``>= vocab_size`` (the virtual pad/bos
    id) and special tokens."""
    out = []
    for i in ids.tolist() if isinstance(ids, Tensor) else ids:
        if i == eos_id:
            break
        if i < vocab_size:
            out.append(int(i))
    return tokenizer.decode(out, skip_special_tokens=True)


class HFTextTokenizer:
    """An HF model's tokenizer as the lab's data code uses it: encode (no EOS), decode."""

    def __init__(self, model: HFModel) -> None:
        self.model, self.eos_id = model, model.eos_id
        self.vocab_size = model.tgt_vocab_size

    def encode(self, text: str) -> list[int]:
        ids = self.model.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [int(i) for i in ids]

    def decode(self, ids: list[int]) -> str:
        return self.model.decode_ids(ids)
