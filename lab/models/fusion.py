"""``model=fusion``: shallow fusion of a translation model with a target-side language model,
``score = log p_TM(y | x, prefix) + lm_weight * log p_LM(y | prefix)`` per step, as fairseq's
``--lm-path/--lm-weight`` (Gulcehre et al., 2015).

How it fits the model contract: ``step`` returns the fused scores, so every search ranks, prunes
and samples by them unchanged (they are no distribution: a sampling search renormalizes them).
``score``/``token_log_probs`` stay the translation model's log-probs, what ``logprob`` means
everywhere in the lab (references are scored by it too). After a search, ``call_search`` hands
the outputs to ``report``: each hypothesis gets the translation model's ``logprob`` and, in
``info``, ``tm_logprob``, ``lm_logprob`` and ``fused_logprob`` (= tm + lm_weight * lm), all by
teacher forcing; its ``score`` stays what the search ranked by. The LM reads no source (an
empty source, ``empty_source``): the lab's ``decoder_only`` trained on target text
(``task.lm=true``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lab.checkpoint import load_member
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.models.combine import Combined
from lab.registry import MODELS

if TYPE_CHECKING:
    from lab.search.types import SearchOutput

TM, LM = 0, 1  # member indices


def empty_source(n: int, eos_id: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The source an LM reads, for ``n`` sentences: an empty sentence as training encodes one
    (``lab.data.encode_examples``: its EOS alone), ``(n, 1)`` of length 1. An LM trained on a
    task whose sources are empty (``task.lm=true``) has seen exactly this prefix."""
    return torch.full((n, 1), eos_id, device=device), torch.ones(n, dtype=torch.long, device=device)


class Fusion(Combined):
    """Translation model + ``lm_weight`` x target language model, per step."""

    def __init__(self, tm: DecoderModel, lm: DecoderModel, lm_weight: float = 0.3) -> None:
        super().__init__([tm, lm])
        self.lm_weight = float(lm_weight)

    def member_source(self, i: int, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        return (src, src_lengths) if i == TM else empty_source(src.size(0), self.eos_id, src.device)

    def combine(self, log_probs: list[Tensor]) -> Tensor:
        return log_probs[TM].float() + self.lm_weight * log_probs[LM].float()  # (..., V)

    def token_log_probs(
        self, src_tokens: Tensor, src_lengths: Tensor, tgt_tokens: Tensor
    ) -> Tensor:
        """The translation model's log-probs of the target tokens ``(B, T)``."""
        return self.members[TM].token_log_probs(src_tokens, src_lengths, tgt_tokens)

    def lm_score(self, tgt_tokens: Tensor) -> Tensor:
        """The language model's log-probability of each target ``(B,)`` (EOS included)."""
        src, lengths = empty_source(tgt_tokens.size(0), self.eos_id, tgt_tokens.device)
        return self.members[LM].score(src, lengths, tgt_tokens)

    def report(self, output: SearchOutput, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        """``output`` with every hypothesis's ``logprob`` the translation model's, and its
        TM, LM and fused log-probs in ``info`` (teacher forced; idempotent)."""
        flat = [(i, h) for i, hyps in enumerate(output.nbest) for h in hyps]
        if not flat:
            return output
        rows = torch.tensor([i for i, _ in flat], device=src.device)  # (H,)
        seqs = [torch.tensor(h.tokens or (self.pad_id,), device=src.device) for _, h in flat]
        tgt = pad_sequence(seqs, batch_first=True, padding_value=self.pad_id)  # (H, T)
        with torch.inference_mode():
            tm = self.score(src[rows], src_lengths[rows], tgt).tolist()  # (H,)
            lm = self.lm_score(tgt).tolist()  # (H,)
        done = [
            _reported(h, a, b, self.lm_weight) for (_, h), a, b in zip(flat, tm, lm, strict=True)
        ]
        nbest, at = [], 0
        for hyps in output.nbest:
            nbest.append(done[at : at + len(hyps)])
            at += len(hyps)
        return dataclasses.replace(output, nbest=nbest)


def _reported(hyp: Any, tm: float, lm: float, w: float) -> Any:
    info = {**(hyp.info or {}), "tm_logprob": tm, "lm_logprob": lm, "fused_logprob": tm + w * lm}
    return dataclasses.replace(hyp, logprob=tm, info=info)


def tokenizer_of(fp: str) -> str:
    return fp.rsplit("tokenizer ", 1)[-1]


@MODELS.register("fusion")
def fusion(
    src_vocab_size: int,
    tgt_vocab_size: int,
    translation: str = "",
    lm: str = "",
    lm_weight: float = 0.3,
) -> Fusion:
    """Shallow fusion: translation model + lm_weight x target LM (model.translation, model.lm)."""
    if not translation or not lm:
        raise LabError(
            "model=fusion needs model.translation and model.lm: a checkpoint or run directory "
            "each, e.g. model.translation=outputs/mt model.lm=outputs/lm."
        )
    (tm_model, tm_fp), (lm_model, lm_fp) = load_member(translation), load_member(lm)
    known = "unrecorded" not in (tokenizer_of(tm_fp), tokenizer_of(lm_fp))
    if lm_model.tgt_vocab_size != tm_model.tgt_vocab_size or (
        known and tokenizer_of(tm_fp) != tokenizer_of(lm_fp)
    ):
        raise LabError(
            f"fusion members differ: {translation} has {tm_fp}, {lm} has {lm_fp}; "
            "fuse models trained with one tokenizer."
        )
    if src_vocab_size and tm_model.src_vocab_size != src_vocab_size:
        raise LabError(
            f"{translation} has source vocab {tm_model.src_vocab_size}, the run's tokenizer "
            f"{src_vocab_size}; set task.tokenizer as the model was trained."
        )
    return Fusion(tm_model, lm_model, lm_weight)


fusion.loads_members = True  # type: ignore[attr-defined]  # weights from its checkpoints
