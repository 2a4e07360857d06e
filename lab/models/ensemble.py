"""``model=ensemble``: several trained models decoded as one, the log of the (weighted) mean
of their next-token probabilities, as fairseq's ``EnsembleModel`` and OpenNMT-py ensembles do.

``step`` returns ``log sum_m w_m p_m(y | prefix)`` (a normalized distribution: every search
works unchanged, exact search included); ``score`` is exact, the sum over the target of the
per-step ensemble log-probs (teacher forcing through every member). Members must share their
tokenizer: their checkpoint fingerprints (vocabulary sizes, tokenizer hash) must be equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lab.checkpoint import load_member
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.models.combine import Combined
from lab.registry import MODELS


class Ensemble(Combined):
    """Members' probabilities averaged with ``weights`` (normalized; default uniform)."""

    def __init__(
        self, members: Sequence[DecoderModel], weights: Sequence[float] | None = None
    ) -> None:
        super().__init__(members)
        w = [1.0] * len(members) if weights is None else [float(x) for x in weights]
        if len(w) != len(members) or any(not x > 0 for x in w):
            raise LabError(
                f"model.weights={list(w)} must hold one positive number per member "
                f"({len(members)}); drop it for uniform weights."
            )
        total = sum(w)
        self.register_buffer(
            "log_weights", torch.tensor([math.log(x / total) for x in w]), persistent=False
        )

    def combine(self, log_probs: list[Tensor]) -> Tensor:
        stacked = torch.stack([lp.float() for lp in log_probs])  # (M, ..., V)
        w = self.log_weights.view(-1, *([1] * (stacked.dim() - 1)))  # (M, 1.., 1)
        return torch.logsumexp(stacked + w, dim=0)  # (..., V)


def check_fingerprints(specs: Sequence[str], prints: Sequence[str]) -> None:
    """Refuse members of different tokenizers, in one line naming both fingerprints."""
    for spec, fp in zip(specs[1:], prints[1:], strict=True):
        if fp != prints[0]:
            raise LabError(
                f"ensemble members differ: {specs[0]} has {prints[0]}, {spec} has {fp}; "
                "combine models trained with one tokenizer."
            )


def check_vocab(src_vocab: int, tgt_vocab: int, model: DecoderModel, spec: str) -> None:
    """A member must fit the run's tokenizer (sizes 0: not known, not checked)."""
    if src_vocab and (model.src_vocab_size, model.tgt_vocab_size) != (src_vocab, tgt_vocab):
        raise LabError(
            f"member {spec} has vocab {model.src_vocab_size}/{model.tgt_vocab_size}, the run's "
            f"tokenizer {src_vocab}/{tgt_vocab}; set task.tokenizer as the member was trained."
        )


@MODELS.register("ensemble")
def ensemble(
    src_vocab_size: int,
    tgt_vocab_size: int,
    members: Sequence[str] = (),
    weights: Sequence[float] | None = None,
) -> Ensemble:
    """Ensemble of trained models: log of the mean of their probabilities (model.members)."""
    specs = [str(s) for s in members or ()]
    if not specs:
        raise LabError(
            "model.members is empty; list the checkpoints or run directories to ensemble, "
            "e.g. model.members=[outputs/run1,outputs/run2]."
        )
    loaded = [load_member(s) for s in specs]
    check_fingerprints(specs, [fp for _, fp in loaded])
    for (model, _), spec in zip(loaded, specs, strict=True):
        check_vocab(src_vocab_size, tgt_vocab_size, model, spec)
    return Ensemble([m for m, _ in loaded], weights)


ensemble.loads_members = True  # type: ignore[attr-defined]  # weights from model.members
