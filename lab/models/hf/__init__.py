"""Hugging Face models behind the lab's decoding interface (``model=hf``).

``HFModel`` wraps a seq2seq model (``AutoModelForSeq2SeqLM``: Marian/opus-mt, BART, T5, ...) or
a causal LM (``AutoModelForCausalLM``: GPT-2, Llama, ...) loaded by hub name or local path, so
every lab search runs on it and every hypothesis still carries its exact model log-probability.
One job per module: ``loading`` (hub name/local path, id fallbacks, attention registration),
``cache`` (lab ``State`` <-> Transformers caches), ``seq2seq`` and ``causal`` (the two decoding
paths, each documenting its state), ``tokenizer`` (the model's text tokenizer).

Token ids: ``eos_id`` is the model's EOS (the first one if the config lists several). The lab
feeds ``bos_id`` as the first decoder input and always bans ``pad_id`` and ``bos_id``; the adapter
feeds the model's real decoder start token whatever ``bos_id`` is, so ``bos_id`` is the
decoder start token when that is a safe token to ban, else ``pad_id``. When the model has no pad
token distinct from EOS (GPT-2), ``pad_id = bos_id = V`` is a virtual id one past the model's
vocabulary: log-probabilities then have ``V + 1`` columns, the last always ``-inf``.

Transformers is an optional extra: it is imported only when a model is built, so this package
(and ``import lab``) imports without it.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel, Leaf, State, padding_mask
from lab.models.hf import causal, seq2seq
from lab.models.hf.loading import (
    ATTN_NAME,
    beam_grouped_sdpa,
    import_transformers,
    load_config,
    load_model,
    model_ids,
    parse_dtype,
)
from lab.models.hf.tokenizer import HFTextTokenizer, decode_ids, encode_texts, load_tokenizer
from lab.registry import MODELS

__all__ = ["ATTN_NAME", "HFModel", "HFTextTokenizer", "beam_grouped_sdpa"]


@MODELS.register("hf")
class HFModel(DecoderModel):
    """A Hugging Face seq2seq or causal LM (hub name or local path) with its KV cache."""

    pretrained = True  # the pipeline decodes with it as is: no training, its own tokenizer

    def __init__(
        self,
        src_vocab_size: int | None = None,
        tgt_vocab_size: int | None = None,
        name_or_path: str = "Helsinki-NLP/opus-mt-de-en",
        dtype: str = "float32",
        **kw: Any,
    ) -> None:
        """Load ``name_or_path``; ``src/tgt_vocab_size`` (what the lab's builder passes) are
        ignored: the vocabulary is the model's. ``kw`` goes to ``from_pretrained``."""
        transformers = import_transformers()
        config = load_config(transformers, name_or_path)
        torch_dtype = parse_dtype(dtype)
        is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        hf = load_model(transformers, name_or_path, is_seq2seq, torch_dtype, kw)
        ids = model_ids(hf, config, name_or_path, is_seq2seq)
        virtual = ids.pad is None or ids.pad == ids.eos or ids.pad >= ids.vocab
        super().__init__(ids.vocab, ids.vocab + 1 if virtual else ids.vocab)
        self.hf, self.name_or_path = hf, name_or_path
        self.is_seq2seq, self.virtual, self.hf_vocab_size = is_seq2seq, virtual, ids.vocab
        self.eos_id = ids.eos
        self.pad_id = ids.vocab if virtual else ids.pad
        self.decoder_start_id = ids.start
        safe_bos = ids.start is not None and ids.start != ids.eos and ids.start < ids.vocab
        self.bos_id = ids.start if safe_bos else self.pad_id
        self._safe_id = ids.pad if (ids.pad is not None and ids.pad < ids.vocab) else 0
        params = inspect.signature(hf.forward).parameters
        self._keeps_logits = "logits_to_keep" in params
        # the cache argument is ``cache`` in recent Transformers, ``past_key_values`` before
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        # cross-attention keys/values once per sentence: only through our attention function,
        # and only where that gives what per-beam copies give (checked once, here)
        ours = is_seq2seq and getattr(hf.config, "_attn_implementation", None) == ATTN_NAME
        self.grouped_cross = ours and seq2seq.grouped_matches_copies(self)
        self.tokenizer = load_tokenizer(transformers, name_or_path)

    @classmethod
    def from_pretrained(cls, path: str, **kw: Any) -> HFModel:
        """``HFModel(name_or_path=path)``: the usual Hugging Face spelling."""
        return cls(name_or_path=path, **kw)

    @property
    def max_positions(self) -> int | None:
        """Seq2seq: the decoder's position table; causal LMs: None (it depends on the prompt)."""
        if not self.is_seq2seq:
            return None
        n = getattr(self.hf.config, "max_position_embeddings", None)
        return int(n) if n else None

    # --- token helpers ----------------------------------------------------------------------
    def _to_hf(self, tokens: Tensor) -> Tensor:
        """Lab ids -> model ids: the virtual pad/bos id becomes a real (masked or unused) one."""
        if not self.virtual:
            return tokens
        return tokens.masked_fill(tokens >= self.hf_vocab_size, self._safe_id)

    def _log_probs(self, logits: Tensor) -> Tensor:
        """Log-softmax ``(..., V)`` in float32, plus the ``-inf`` virtual column when needed."""
        logits = logits.float()
        if self.virtual:
            logits = F.pad(logits, (0, 1), value=float("-inf"))
        return torch.log_softmax(logits, dim=-1)

    def encode_text(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Tokenize ``texts`` with the model's tokenizer: right-padded ids ``(B, S)``, lengths."""
        if self.tokenizer is None:
            raise LabError(
                f"model {self.name_or_path!r} has no tokenizer files; pass token ids instead."
            )
        return encode_texts(self.tokenizer, texts, self.pad_id)

    def text_tokenizer(self) -> HFTextTokenizer:
        """The model's tokenizer behind the interface the lab's data code uses."""
        if self.tokenizer is None:
            raise LabError(f"model {self.name_or_path!r} has no tokenizer files to read text with.")
        return HFTextTokenizer(self)

    def decode_ids(self, ids: Any) -> str:
        """Text of generated ids: stops at EOS, drops the virtual id and special tokens."""
        if self.tokenizer is None:
            raise LabError(f"model {self.name_or_path!r} has no tokenizer files to decode with.")
        return decode_ids(self.tokenizer, ids, self.eos_id, self.hf_vocab_size)

    # --- decoding interface -----------------------------------------------------------------
    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Leaf]:
        mask = padding_mask(src_lengths, src_tokens.size(1))  # (B, S) True at real tokens
        ids = self._to_hf(src_tokens)  # (B, S)
        if self.is_seq2seq:
            return seq2seq.encode(self, ids, mask)
        return causal.encode(self, ids, src_lengths, mask)

    def init_state(self, memory: dict[str, Leaf], beam_size: int) -> State:
        if self.is_seq2seq:
            return seq2seq.init_state(memory, beam_size)
        return causal.init_state(memory, beam_size)

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        if self.is_seq2seq:
            return seq2seq.step(self, prev_tokens, state, self.grouped_cross)
        return causal.step(self, prev_tokens, state)

    # --- teacher forcing --------------------------------------------------------------------
    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)``; ``prev_tokens[:, 0]`` (the lab's BOS) stands for
        the model's decoder start token (seq2seq) or the end of the prompt (causal LM)."""
        mask = padding_mask(src_lengths, src_tokens.size(1))  # (B, S)
        src, prev = self._to_hf(src_tokens), self._to_hf(prev_tokens)  # (B, S), (B, T)
        if self.is_seq2seq:
            logits = seq2seq.forward(self, src, mask, prev)  # (B, T, V)
        else:
            logits = causal.forward(self, src, src_lengths, mask, prev)  # (B, T, V)
        if self.virtual:
            logits = F.pad(logits.float(), (0, 1), value=float("-inf"))
        return logits
