"""Logits processors: small transforms of a step's log-probabilities, applied in order.

A processor is called as ``proc(log_probs, tokens, step)`` with ``log_probs`` ``(N, V)``,
``tokens`` ``(N, step-1)`` (generated so far, no BOS) and ``step`` the 1-based position of the
token being chosen; it returns the processed ``(N, V)``. Processors change what the search
ranks by, never the model log-probability a hypothesis reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import PROCESSORS
from lab.vocab import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")


@PROCESSORS.register("ban_tokens")
class BanTokens:
    """Never generate the given token ids (the search always bans PAD and BOS)."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        return log_probs.index_fill(1, torch.tensor(self.ids, device=log_probs.device), NEG_INF)


@PROCESSORS.register("min_length")
class MinLength:
    """Forbid EOS until the output has at least ``min_len`` tokens (EOS included)."""

    def __init__(self, min_len: int, eos_id: int = EOS_ID) -> None:
        self.min_len, self.eos_id = int(min_len), eos_id

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


class Processors:
    """The processors a search applies, built (and so validated) with the search.

    Always first: PAD and BOS banned; then EOS banned before ``min_len``; then each
    ``{"name": ..., **kwargs}`` spec of the config, in order. A misspelled name or key fails
    when the search is built, before any training. ``for_model`` binds them to a model's ids.
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]] | None = None, min_len: int = 0) -> None:
        self.specs = [dict(s) for s in specs or ()]
        self.min_len = int(min_len)
        for spec in self.specs:
            if "name" not in spec:
                raise LabError(
                    f"search.processors entry {spec} has no name; write {{name: <processor>, ...}}"
                    f" with one of: {', '.join(PROCESSORS.names())}."
                )
        self.for_ids(PAD_ID, BOS_ID, EOS_ID)

    def for_model(self, model: DecoderModel) -> list:
        return self.for_ids(model.pad_id, model.bos_id, model.eos_id)

    def for_ids(self, pad_id: int, bos_id: int, eos_id: int) -> list:
        procs: list = [BanTokens([pad_id, bos_id])]
        if self.min_len > 1:
            procs.append(MinLength(self.min_len, eos_id))
        for spec in self.specs:
            spec = dict(spec)
            name = spec.pop("name")
            if name == "min_length":
                spec.setdefault("eos_id", eos_id)
            procs.append(PROCESSORS.build(name, **spec))
        return procs


def apply(procs: Sequence, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
    for p in procs:
        log_probs = p(log_probs, tokens, step)
    return log_probs
