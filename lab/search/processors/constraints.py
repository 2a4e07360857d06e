"""Constraints on what a step may generate: banned tokens, a minimum length, no repeated
n-gram, EOS forced at the last allowed step. Each sets the scores of what it forbids to -inf
(``NEG_INF``); the search never reports a processed score as the model's log-prob.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lab.errors import LabError
from lab.registry import PROCESSORS
from lab.search.types import NEG_INF
from lab.vocab import EOS_ID


@PROCESSORS.register("ban_tokens")
class BanTokens:
    """Never generate the given token ids (the search always bans PAD and BOS)."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)

    def banned(self, step: int) -> list[int]:
        """The ids banned at ``step`` (every step): what the chain folds into one fill."""
        return self.ids

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        return log_probs.index_fill(1, torch.tensor(self.ids, device=log_probs.device), NEG_INF)


@PROCESSORS.register("min_length")
class MinLength:
    """Forbid EOS until the output has at least ``min_len`` tokens (EOS included)."""

    def __init__(self, min_len: int, eos_id: int = EOS_ID) -> None:
        self.min_len, self.eos_id = int(min_len), eos_id

    def banned(self, step: int) -> list[int]:
        """EOS before ``min_len``, nothing after: what the chain folds into one fill."""
        return [self.eos_id] if step < self.min_len else []

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        if step >= self.min_len:
            return log_probs
        return log_probs.index_fill(
            1, torch.tensor([self.eos_id], device=log_probs.device), NEG_INF
        )


@PROCESSORS.register("no_repeat_ngram")
class NoRepeatNgram:
    """Forbid any n-gram from occurring twice in a hypothesis (Paulus et al., 2018)."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise LabError(f"processor no_repeat_ngram needs n >= 1, got {n}; set n=1 or more.")
        self.n = int(n)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        n, t = self.n, tokens.size(1)
        if t < n or t == 0:
            return log_probs
        if n == 1:
            banned = torch.zeros_like(log_probs, dtype=torch.int32).scatter_add_(
                1, tokens, torch.ones_like(tokens, dtype=torch.int32)
            )
            return log_probs.masked_fill(banned > 0, NEG_INF)
        grams = tokens.unfold(1, n, 1)  # (N, G, n) every n-gram seen so far
        if grams.size(1) == 0:
            return log_probs
        prefix = tokens[:, t - n + 1 :]  # (N, n-1) the n-1 tokens just generated
        match = (grams[:, :, : n - 1] == prefix[:, None, :]).all(-1)  # (N, G)
        hits = torch.zeros_like(log_probs, dtype=torch.int32).scatter_add_(
            1, grams[:, :, n - 1], match.to(torch.int32)
        )  # (N, V)
        return log_probs.masked_fill(hits > 0, NEG_INF)


FORCED_EOS_SCORES = ("zero", "logprob")


@PROCESSORS.register("forced_eos")
class ForcedEOS:
    """At the last allowed step leave only EOS (HF forced_eos_token_id; fairseq's last step).

    ``max_len``: the step that must be EOS; 0 means each sentence's own length limit, which only
    the beam searches pass (``limit``). ``score``: what the forced EOS adds to the running score:
    ``zero``, as Hugging Face's ``ForcedEOSTokenLogitsProcessor`` (every score -inf, EOS's 0), or
    ``logprob``, its log-probability, as fairseq's ``SequenceGenerator._generate`` (``step >=
    max_len``: every token but EOS -inf). The reported model log-prob is EOS's either way.
    """

    takes_limit = True

    def __init__(self, max_len: int = 0, score: str = "zero", eos_id: int = EOS_ID) -> None:
        if score not in FORCED_EOS_SCORES:
            raise LabError(
                f"processor forced_eos: score={score!r} is not one of"
                f" {', '.join(FORCED_EOS_SCORES)} (zero: Hugging Face's, logprob: fairseq's)."
            )
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
            raise LabError(
                f"processor forced_eos: max_len must be a whole number >= 0, got {max_len!r};"
                " 0 forces EOS at each sentence's own length limit (beam searches only)."
            )
        self.max_len, self.score, self.eos_id = max_len, score, eos_id

    def __call__(
        self, log_probs: Tensor, tokens: Tensor, step: int, limit: Tensor | None = None
    ) -> Tensor:
        n = log_probs.size(0)
        if self.max_len:
            limit = torch.full((n,), self.max_len, device=log_probs.device)
        assert limit is not None, "Processors refuses forced_eos without max_len or limits"
        last = limit.le(step)  # (N,) rows choosing their last allowed token
        if not last.any():
            return log_probs
        eos = log_probs[:, self.eos_id]  # (N,)
        forced = torch.full_like(log_probs, NEG_INF)  # (N, V)
        forced[:, self.eos_id] = eos if self.score == "logprob" else 0.0
        return torch.where(last[:, None], forced, log_probs)
