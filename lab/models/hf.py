"""Hugging Face models behind the lab's decoding interface (``model=hf``).

``HFModel`` wraps a seq2seq model (``AutoModelForSeq2SeqLM``: Marian/opus-mt, BART, T5, ...) or
a causal LM (``AutoModelForCausalLM``: GPT-2, Llama, ...) loaded by hub name or local path, so
every lab search runs on it and every hypothesis still carries its exact model log-probability.

Seq2seq: ``encode`` runs the encoder once per sentence. The first ``step`` runs the decoder on
one row per *sentence* (all beams start from the same decoder start token), which fills the
cross-attention keys/values once per sentence; they stay in ``State.shared`` (``B`` rows) and are
never copied or reordered per beam. Later steps feed one token per hypothesis (``B*K`` rows) and
attend to the shared keys/values through the attention function ``lab_beams_sdpa``: the K beams
of a sentence become K query positions of that sentence (as ``Attention.attend_beams`` does for
the lab's own Transformer). A model whose attention does not go through the Transformers
attention interface falls back to copying the cross-attention keys/values K times, once, at the
first step (memory and bandwidth K times larger, still never reordered: beams of a sentence share
them). Only the self-attention cache (``B*K`` rows) lives in ``State.hyp`` and is reordered.

Causal LMs: the source is the prompt. ``encode`` runs the prompt once per sentence and keeps its
keys/values and the next-token distribution; the first ``step`` returns that distribution without
a model call. The prompt keys/values are copied K times at ``init_state`` (a Transformers cache
layer holds one tensor per layer, so the prompt cannot stay shared) and are reordered with the
hypothesis' own keys/values every step, as in ``generate``. Positions count real tokens only
(target t of sentence b sits at ``len_b + t``), so right padding changes nothing and results
equal ``generate`` on a left-padded batch.

Token ids: ``eos_id`` is the model's EOS (the first one if the config lists several). The lab
feeds ``bos_id`` as the first decoder input and always bans ``pad_id`` and ``bos_id``; the adapter
feeds the model's real decoder start token whatever ``bos_id`` is, so ``bos_id`` is the
decoder start token when that is a safe token to ban, else ``pad_id``. When the model has no pad
token distinct from EOS (GPT-2), ``pad_id = bos_id = V`` is a virtual id one past the model's
vocabulary: log-probabilities then have ``V + 1`` columns, the last always ``-inf``.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel, State, padding_mask
from lab.registry import MODELS

ATTN_NAME = "lab_beams_sdpa"
_REGISTERED = False


def _import_transformers() -> Any:
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


def _register_attention() -> None:
    """Register ``lab_beams_sdpa`` (attention and mask functions) with Transformers once."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTN_NAME, beam_grouped_sdpa)
    AttentionMaskInterface.register(ATTN_NAME, sdpa_mask)
    _REGISTERED = True


def _cache(pairs: list[tuple[Tensor, Tensor]]) -> Any:
    """A ``DynamicCache`` around existing key/value tensors ``(N, H, T, Dh)``, without copying."""
    from transformers import DynamicCache, DynamicLayer

    cache = DynamicCache()
    for k, v in pairs:
        layer = DynamicLayer()
        layer.keys, layer.values, layer.device, layer.is_initialized = k, v, k.device, True
        cache.layers.append(layer)
    return cache


def _tensors(cache: Any) -> list[tuple[Tensor, Tensor]]:
    """The per-layer key/value tensors of a ``DynamicCache`` of plain (full attention) layers."""
    from transformers import DynamicLayer

    out = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise LabError(
                f"model=hf: cache layers of type {type(layer).__name__} are not supported; "
                "use a model whose layers all use full attention."
            )
        out.append((layer.keys, layer.values))
    return out


def _load_tokenizer(transformers: Any, name_or_path: str) -> Any:
    """The model's tokenizer, or None when its files are missing (an empty vocabulary counts as
    missing: Transformers builds one from the config alone for some model types)."""
    try:
        tok = transformers.AutoTokenizer.from_pretrained(name_or_path)
    except Exception:  # noqa: BLE001 - any failure means: no usable tokenizer
        return None
    return tok if getattr(tok, "vocab_size", 0) else None


def _first(value: Any) -> int | None:
    if isinstance(value, list | tuple):
        return int(value[0]) if value else None
    return None if value is None else int(value)


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
        transformers = _import_transformers()
        try:
            config = transformers.AutoConfig.from_pretrained(name_or_path)
        except (OSError, ValueError) as e:
            raise LabError(
                f"cannot load Hugging Face model {name_or_path!r}: {e}; give a hub name or a "
                "local directory written by save_pretrained (model.name_or_path=...)."
            ) from e
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise LabError(f"model.dtype={dtype!r} is not a torch dtype; use float32 or bfloat16.")
        self.is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        auto = (
            transformers.AutoModelForSeq2SeqLM
            if self.is_seq2seq
            else transformers.AutoModelForCausalLM
        )
        hf = None
        if self.is_seq2seq:
            _register_attention()
            try:
                hf = auto.from_pretrained(
                    name_or_path, dtype=torch_dtype, attn_implementation=ATTN_NAME, **kw
                )
            except (ValueError, ImportError):
                hf = None  # the model does not accept an SDPA attention function
        if hf is None:
            hf = auto.from_pretrained(name_or_path, dtype=torch_dtype, **kw)
        hf.eval()

        vocab = int(hf.get_output_embeddings().weight.size(0))
        eos = _first(config.eos_token_id)
        if eos is None:
            eos = _first(getattr(hf.generation_config, "eos_token_id", None))
        if eos is None:
            raise LabError(f"model {name_or_path!r} defines no eos_token_id; set it in its config.")
        pad = _first(getattr(config, "pad_token_id", None))
        self.virtual = pad is None or pad == eos or pad >= vocab
        pad_id = vocab if self.virtual else pad
        start = None
        if self.is_seq2seq:
            start = _first(getattr(config, "decoder_start_token_id", None))
            if start is None:
                start = _first(getattr(hf.generation_config, "decoder_start_token_id", None))
            if start is None:
                start = pad
            if start is None:
                raise LabError(f"model {name_or_path!r} defines no decoder_start_token_id.")
        out_vocab = vocab + 1 if self.virtual else vocab
        super().__init__(vocab, out_vocab)
        self.hf = hf
        self.name_or_path = name_or_path
        self.hf_vocab_size = vocab
        self.eos_id = eos
        self.pad_id = pad_id
        self.decoder_start_id = start
        safe_bos = start is not None and start != eos and start < vocab
        self.bos_id = start if safe_bos else pad_id
        self._safe_id = pad if (pad is not None and pad < vocab) else 0
        params = inspect.signature(hf.forward).parameters
        self._keeps_logits = "logits_to_keep" in params
        # the cache argument is ``cache`` in recent Transformers, ``past_key_values`` before
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.grouped_cross = (
            self.is_seq2seq and getattr(hf.config, "_attn_implementation", None) == ATTN_NAME
        )
        if self.grouped_cross and not self._check_grouped():
            self.grouped_cross = False
        self.tokenizer = _load_tokenizer(transformers, name_or_path)

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
        ids = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        lengths = torch.tensor([len(x) for x in ids], dtype=torch.long)  # (B,)
        src = torch.full((len(ids), max([1, *map(len, ids)])), self.pad_id)  # (B, S)
        for i, row in enumerate(ids):
            src[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return src, lengths

    def text_tokenizer(self) -> HFTextTokenizer:
        """The model's tokenizer behind the interface the lab's data code uses."""
        if self.tokenizer is None:
            raise LabError(f"model {self.name_or_path!r} has no tokenizer files to read text with.")
        return HFTextTokenizer(self)

    def decode_ids(self, ids: Any) -> str:
        """Text of generated ids: stops at EOS, drops the virtual id and special tokens."""
        if self.tokenizer is None:
            raise LabError(f"model {self.name_or_path!r} has no tokenizer files to decode with.")
        out = []
        for i in ids.tolist() if isinstance(ids, Tensor) else ids:
            if i == self.eos_id:
                break
            if i < self.hf_vocab_size:
                out.append(int(i))
        return self.tokenizer.decode(out, skip_special_tokens=True)

    # --- decoding interface -----------------------------------------------------------------
    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        mask = padding_mask(src_lengths, src_tokens.size(1))  # (B, S) True at real tokens
        ids = self._to_hf(src_tokens)
        if self.is_seq2seq:
            enc = self.hf.get_encoder()(input_ids=ids, attention_mask=mask.long())
            return {"enc": enc.last_hidden_state, "mask": mask}  # (B, S, D), (B, S)
        from transformers import DynamicCache

        b, s = ids.shape
        pos = torch.arange(s, device=ids.device)[None].expand(b, s)  # (B, S)
        last = src_lengths - 1  # (B,) position of each prompt's last real token
        kw: dict[str, Any] = {}
        keep = torch.unique(last)  # (U,) sorted positions whose logits are needed
        if self._keeps_logits:
            kw["logits_to_keep"] = keep
        cache = DynamicCache()
        out = self.hf(
            input_ids=ids,
            attention_mask=mask.long(),
            position_ids=pos,
            **{self._cache_kw: cache},
            use_cache=True,
            **kw,
        )
        col = torch.searchsorted(keep, last) if self._keeps_logits else last  # (B,)
        logits = out.logits[torch.arange(b, device=ids.device), col]  # (B, V)
        memory = {"last": self._log_probs(logits), "lengths": src_lengths, "mask": mask}
        for i, (k, v) in enumerate(_tensors(cache)):
            memory[f"pk{i}"], memory[f"pv{i}"] = k, v  # (B, H, S, Dh)
        return memory

    def init_state(self, memory: dict[str, Tensor], beam_size: int) -> State:
        if self.is_seq2seq:
            shared = {"enc": memory["enc"], "mask": memory["mask"]}
            return State(hyp={}, shared=shared, beam_size=beam_size)
        shared = {n: memory[n] for n in ("last", "lengths", "mask")}
        hyp = {}
        n_layers = sum(1 for name in memory if name.startswith("pk"))
        for i in range(n_layers):  # the prompt, copied K times: (B*K, H, S, Dh)
            hyp[f"k{i}"] = memory[f"pk{i}"].repeat_interleave(beam_size, dim=0)
            hyp[f"v{i}"] = memory[f"pv{i}"].repeat_interleave(beam_size, dim=0)
        return State(hyp=hyp, shared=shared, beam_size=beam_size)

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        if self.is_seq2seq:
            return self._step_seq2seq(prev_tokens, state)
        return self._step_causal(prev_tokens, state)

    def _step_seq2seq(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        from transformers import DynamicCache, EncoderDecoderCache
        from transformers.modeling_outputs import BaseModelOutput

        k = state.beam_size
        enc, mask = state.shared["enc"], state.shared["mask"]  # (B, S, D), (B, S)
        if state.step == 0:
            # every beam starts from the decoder start token: one row per sentence
            ids = torch.full((enc.size(0), 1), self.decoder_start_id, device=enc.device)  # (B, 1)
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            out = self.hf(
                encoder_outputs=BaseModelOutput(last_hidden_state=enc),
                attention_mask=mask.long(),
                decoder_input_ids=ids,
                **{self._cache_kw: cache},
                use_cache=True,
            )
            lp = self._log_probs(out.logits[:, -1]).repeat_interleave(k, dim=0)  # (B*K, V)
            shared = dict(state.shared)
            hyp: dict[str, Tensor] = {}
            pairs = zip(
                _tensors(cache.self_attention_cache),
                _tensors(cache.cross_attention_cache),
                strict=True,
            )
            for i, ((sk, sv), (ck, cv)) in enumerate(pairs):
                hyp[f"k{i}"] = sk.repeat_interleave(k, dim=0)  # (B*K, H, 1, Dh)
                hyp[f"v{i}"] = sv.repeat_interleave(k, dim=0)
                if self.grouped_cross:
                    shared[f"ck{i}"], shared[f"cv{i}"] = ck, cv  # (B, H, S, Dh)
                else:  # copied once per beam, kept per sentence: (B, K, H, S, Dh)
                    shared[f"ck{i}"] = ck[:, None].expand(-1, k, -1, -1, -1).contiguous()
                    shared[f"cv{i}"] = cv[:, None].expand(-1, k, -1, -1, -1).contiguous()
            if not self.grouped_cross:
                shared["enc_k"] = enc[:, None].expand(-1, k, -1, -1).contiguous()
                shared["mask_k"] = mask[:, None].expand(-1, k, -1).contiguous()
            return lp, State(hyp=hyp, shared=shared, beam_size=k, step=1)

        n_layers = len(state.hyp) // 2
        self_cache = _cache([(state.hyp[f"k{i}"], state.hyp[f"v{i}"]) for i in range(n_layers)])
        cross = []
        for i in range(n_layers):
            ck, cv = state.shared[f"ck{i}"], state.shared[f"cv{i}"]
            if not self.grouped_cross:  # (B, K, H, S, Dh) -> (B*K, H, S, Dh), a view
                ck, cv = ck.flatten(0, 1), cv.flatten(0, 1)
            cross.append((ck, cv))
        cache = EncoderDecoderCache(self_cache, _cache(cross))
        if not self.grouped_cross:
            enc = state.shared["enc_k"].flatten(0, 1)  # (B*K, S, D)
            mask = state.shared["mask_k"].flatten(0, 1)  # (B*K, S)
        out = self.hf(
            encoder_outputs=BaseModelOutput(last_hidden_state=enc),
            attention_mask=mask.long(),
            decoder_input_ids=self._to_hf(prev_tokens)[:, None],  # (B*K, 1)
            **{self._cache_kw: cache},
            use_cache=True,
        )
        hyp = {}
        for i, (sk, sv) in enumerate(_tensors(cache.self_attention_cache)):
            hyp[f"k{i}"], hyp[f"v{i}"] = sk, sv  # (B*K, H, t+1, Dh)
        new = State(hyp=hyp, shared=state.shared, beam_size=k, step=state.step + 1)
        return self._log_probs(out.logits[:, -1]), new

    def _step_causal(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
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
        limit = getattr(self.hf.config, "max_position_embeddings", None)
        if limit and int(pos.max()) >= int(limit):
            raise LabError(
                f"prompt + output exceed the model's {limit} positions; lower the output limit "
                "(search.max_len_a, search.max_len_b) or shorten the prompts."
            )
        n_layers = len(state.hyp) // 2
        cache = _cache([(state.hyp[f"k{i}"], state.hyp[f"v{i}"]) for i in range(n_layers)])
        kw = {"logits_to_keep": 1} if self._keeps_logits else {}
        out = self.hf(
            input_ids=self._to_hf(prev_tokens)[:, None],  # (B*K, 1)
            attention_mask=mask.long(),
            position_ids=pos,
            **{self._cache_kw: cache},
            use_cache=True,
            **kw,
        )
        hyp = {}
        for i, (ck, cv) in enumerate(_tensors(cache)):
            hyp[f"k{i}"], hyp[f"v{i}"] = ck, cv  # (B*K, H, S+t, Dh)
        new = State(hyp=hyp, shared=state.shared, beam_size=k, step=t + 1)
        return self._log_probs(out.logits[:, -1]), new

    # --- teacher forcing --------------------------------------------------------------------
    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)``; ``prev_tokens[:, 0]`` (the lab's BOS) stands for
        the model's decoder start token (seq2seq) or the end of the prompt (causal LM)."""
        b, s = src_tokens.shape
        mask = padding_mask(src_lengths, s)  # (B, S)
        src = self._to_hf(src_tokens)
        prev = self._to_hf(prev_tokens)
        if self.is_seq2seq:
            prev = prev.clone()
            prev[:, 0] = self.decoder_start_id
            logits = self.hf(
                input_ids=src, attention_mask=mask.long(), decoder_input_ids=prev
            ).logits  # (B, T, V)
        else:
            t = prev.size(1)
            ids = torch.cat([src, prev[:, 1:]], dim=1)  # (B, S+T-1)
            full_mask = torch.cat([mask, mask.new_ones(b, t - 1)], dim=1)  # (B, S+T-1)
            ar = torch.arange(max(s, t), device=src.device)
            pos = torch.cat(
                [ar[:s][None].expand(b, s), src_lengths[:, None] + ar[: t - 1][None]], dim=1
            )  # (B, S+T-1): targets continue right after each prompt's real tokens
            out = self.hf(input_ids=ids, attention_mask=full_mask.long(), position_ids=pos)
            first = out.logits[torch.arange(b, device=src.device), src_lengths - 1]  # (B, V)
            logits = torch.cat([first[:, None], out.logits[:, s:]], dim=1)  # (B, T, V)
        if self.virtual:
            logits = F.pad(logits.float(), (0, 1), value=float("-inf"))
        return logits

    # --- checks -----------------------------------------------------------------------------
    def _check_grouped(self) -> bool:
        """Whether per-sentence cross-attention keys/values give the same log-probabilities as
        per-beam copies on this model (a model may bypass the attention function)."""
        device = next(self.hf.parameters()).device
        src = torch.tensor([[5 % self.hf_vocab_size, self.eos_id], [self.eos_id, self.eos_id]])
        src, lengths = src.to(device), torch.tensor([2, 1], device=device)
        prev = torch.tensor([4 % self.hf_vocab_size, 6 % self.hf_vocab_size], device=device)
        results = []
        try:
            with torch.inference_mode():
                for grouped in (True, False):
                    self.grouped_cross = grouped
                    state = self.init_state(self.encode(src, lengths), 2)
                    _, state = self.step(prev.repeat_interleave(2), state)
                    lp, _ = self.step(prev.repeat(2), state)
                    results.append(lp)
        except (RuntimeError, ValueError):
            return False
        finally:
            self.grouped_cross = True
        tol = 1e-4 if self.hf.dtype == torch.float32 else 5e-2
        return bool(torch.allclose(results[0], results[1], atol=tol, rtol=tol))


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
