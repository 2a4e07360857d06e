"""Coverage penalties: rank finished hypotheses lower when their attention left source tokens
uncovered (``wu``) or piled onto some (``summary``), ``search.coverage=wu|summary`` with
strength ``search.beta`` on ``beam`` and ``beam_lp``.

``cov_i``, the coverage of source token i, is the sum over the hypothesis' decoding steps of
the model's cross-attention to i (``lab.models.base``: ``State.attention``). As in OpenNMT-py
(``GNMTGlobalScorer`` with ``-coverage_penalty``, not ``-stepwise_penalty``), the penalty is
subtracted from the length-penalized score when a hypothesis finishes, so it changes which
finished hypotheses rank first, not which prefixes the beam keeps:

* ``wu`` (Wu et al., 2016, GNMT): ``beta * -sum_i log(min(cov_i, 1))``;
* ``summary`` (OpenNMT-py): ``beta * (sum_i max(cov_i, 1) - |x|)``.

Both are >= 0, so a penalized score never exceeds the length-penalized one and the canonical
stop rule's bound still holds. The sums run over the sentence's real tokens only: padding
counts nothing, so a sentence ranks the same alone and in a padded batch (OpenNMT-py sums
``wu`` over the padded width too, where the attention is 0 and the log is -inf). A token never
attended (``cov_i = 0``) makes ``wu`` infinite in OpenNMT-py, and every score -inf; here its
coverage is floored at the smallest normal float, ``-log`` of which is about 87 per token, so
such hypotheses rank last among themselves by the rest of their score.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lab.errors import LabError

SUPPORTING = "transformer (without model.facts), gru or lstm (with model.attention other than none)"


def wu(cov: Tensor, real: Tensor) -> Tensor:
    """``-sum_i log(min(cov_i, 1))`` over the real positions ``real`` of ``cov`` ``(..., S)``."""
    floor = torch.finfo(cov.dtype).tiny
    per_token = cov.clamp(min=floor, max=1.0).log().neg().masked_fill(~real, 0.0)  # (..., S)
    return per_token.sum(-1) + 0.0  # + 0.0: a full coverage's -0.0 reads 0.0


def summary(cov: Tensor, real: Tensor) -> Tensor:
    """``sum_i max(cov_i, 1) - |x|`` over the real positions ``real`` (the ``|x|`` of them)."""
    return (cov.clamp(min=1.0) - 1.0).masked_fill(~real, 0.0).sum(-1)


COVERAGES = {"wu": wu, "summary": summary}


class CoveragePenalty:
    """``beta`` times the coverage penalty ``name``: ``penalty(cov, real)`` ``(...,)``."""

    def __init__(self, name: str, beta: float) -> None:
        if name not in COVERAGES:
            valid = ", ".join(["none", *COVERAGES])
            raise LabError(f"search.coverage={name!r} is not one of {valid}.")
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not math.isfinite(beta):
            raise LabError(f"search.beta must be a finite number, got {beta!r}.")
        if beta < 0:
            raise LabError(f"search.beta={beta} would reward what it penalizes; use beta >= 0.")
        self.name, self.beta, self.fn = name, float(beta), COVERAGES[name]

    def __call__(self, cov: Tensor, real: Tensor) -> Tensor:
        return self.beta * self.fn(cov, real)


def coverage_penalty(name: str, beta: float) -> CoveragePenalty | None:
    """The penalty of ``search.coverage``/``search.beta``; None for ``none`` (then ``beta``
    must stay 0, so that a sweep over beta cannot silently run without a penalty)."""
    if name == "none":
        if beta:
            raise LabError(
                f"search.beta={beta} applies only with a coverage penalty; set"
                " search.coverage=wu or summary, or drop search.beta."
            )
        return None
    return CoveragePenalty(name, beta)


def refuse_model(model: object, name: str) -> None:
    """One line when ``model`` reports no cross-attention, which ``coverage=name`` needs."""
    if not getattr(model, "cross_attention", False):
        raise LabError(
            f"search.coverage={name} needs the model's cross-attention, which"
            f" {type(model).__name__} does not report; use a {SUPPORTING},"
            " or set search.coverage=none."
        )


class CoverageTracker:
    """Each live row's coverage ``(n*K, S)`` and its sentence's real source positions
    ``(n, S)``; the beam reorders the rows and drops the sentences with it."""

    def __init__(self, penalty: CoveragePenalty, src_lengths: Tensor, s: int, k: int) -> None:
        self.penalty, self.k = penalty, k
        self.real = torch.arange(s, device=src_lengths.device)[None, :] < src_lengths[:, None]
        self.cov = torch.zeros(src_lengths.size(0) * k, s, device=src_lengths.device)
        self.next = self.cov  # (n*K, S) after the current step

    @classmethod
    def of(
        cls, penalty: CoveragePenalty | None, model: object, src_lengths: Tensor, s: int, k: int
    ) -> CoverageTracker | None:
        """The tracker of a beam call over sources ``(B, S)`` of ``src_lengths`` ``(B,)``, K
        rows each; None without a penalty. A model that reports no attention is refused."""
        if penalty is None:
            return None
        refuse_model(model, penalty.name)
        return cls(penalty, src_lengths, s, k)

    def step(self, attention: Tensor | None, parents: Tensor) -> tuple[Tensor, Tensor]:
        """This step's ``attention`` ``(n*K, S)`` added to each row's coverage: the penalties of
        the rows as they are ``(n, K)`` (for those that stop before this step) and of the
        candidates extending rows ``parents`` ``(n, C)`` (indices within their sentence)."""
        if attention is None:
            raise LabError(
                "search.coverage needs the model's cross-attention and this model's step"
                f" reported none; use a {SUPPORTING}, or set search.coverage=none."
            )
        self.next = self.cov + attention.float()  # (n*K, S)
        own = torch.arange(self.k, device=parents.device).expand(parents.size(0), -1)  # (n, K)
        return self._of(self.cov, own), self._of(self.next, parents)

    def _of(self, cov: Tensor, parents: Tensor) -> Tensor:
        """The penalty ``(n, C)`` of rows ``parents`` ``(n, C)`` whose coverage is ``cov``."""
        n, s = self.real.shape
        rows = cov.view(n, self.k, s).gather(1, parents[:, :, None].expand(-1, -1, s))
        return self.penalty(rows, self.real[:, None, :])  # (n, C)

    def move(self, rows: Tensor) -> None:
        """Continue from the rows ``(n*K,)`` the beam keeps, with this step's coverage."""
        self.cov = self.next.index_select(0, rows)

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.real, self.cov = self.real[sentences], self.cov[rows]


def penalties(
    track: CoverageTracker | None, attention: Tensor | None, parents: Tensor
) -> tuple[Tensor | None, Tensor | None]:
    """``track.step(attention, parents)``, or no penalties without a tracker."""
    return (None, None) if track is None else track.step(attention, parents)
