"""Length penalties (final scorers): turn a hypothesis' log-probability and length into the
score beam search ranks finished hypotheses by.

Each is monotone non-decreasing in the log-probability and monotone in the length, which is
what lets the canonical stop rule bound the best score a live hypothesis can still reach.

The length a penalty sees is the hypothesis' token count, EOS included (as Hugging Face's
``length_penalty``, fairseq's ``--lenpen`` and CTranslate2's ``length_penalty`` count it), plus
``offset``: OpenNMT-py's penalties count one more token, the BOS it keeps at the head of every
hypothesis (``offset=1``, see ``lab.search.beam.presets``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lab.errors import LabError
from lab.registry import PENALTIES


class Penalty:
    """Base: ``score(logp, length)``; ``alpha`` is the penalty's one strength knob, ``offset``
    the tokens counted beyond the hypothesis' own (0, or 1 for OpenNMT-py's BOS)."""

    def __init__(self, alpha: float = 0.0, offset: int = 0) -> None:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise LabError(
                f"search.length_offset must be a whole number >= 0, got {offset!r}; set 0 (count"
                " the output with its EOS) or 1 (also count BOS, as OpenNMT-py)."
            )
        self.alpha, self.offset = float(alpha), offset

    def __call__(self, logp: Tensor, length: Tensor | int) -> Tensor:
        raise NotImplementedError

    def counted(self, logp: Tensor, length: Tensor | int) -> Tensor:
        """The length the penalty divides by (or rewards): ``length + offset``, as a tensor."""
        return torch.as_tensor(length, dtype=logp.dtype, device=logp.device) + self.offset

    def bound(self, logp: Tensor, cur_len: int, max_len: Tensor) -> Tensor:
        """Best final score a live hypothesis with log-prob ``logp`` after ``cur_len`` tokens can
        still reach within ``max_len`` tokens (future log-probs are <= 0)."""
        lo = self(logp, torch.full_like(max_len, cur_len + 1).clamp_max(max_len))
        return torch.maximum(lo, self(logp, max_len))


@PENALTIES.register("none")
class NoPenalty(Penalty):
    """No length penalty: rank by total log-probability."""

    def __call__(self, logp: Tensor, length: Tensor | int) -> Tensor:
        return logp


@PENALTIES.register("average")
class AveragePenalty(Penalty):
    """Length normalization: logP / len^alpha (alpha=1: average log-prob per token)."""

    def __call__(self, logp: Tensor, length: Tensor | int) -> Tensor:
        return logp / self.counted(logp, length) ** self.alpha


@PENALTIES.register("gnmt")
class GNMTPenalty(Penalty):
    """GNMT length penalty (Wu et al., 2016): logP / ((5 + len) / 6)^alpha."""

    def __call__(self, logp: Tensor, length: Tensor | int) -> Tensor:
        return logp / ((5.0 + self.counted(logp, length)) / 6.0) ** self.alpha


@PENALTIES.register("word_reward")
class WordReward(Penalty):
    """Word reward (He et al., 2016; Murray & Chiang, 2018): logP + alpha * len."""

    def __call__(self, logp: Tensor, length: Tensor | int) -> Tensor:
        return logp + self.alpha * self.counted(logp, length)
