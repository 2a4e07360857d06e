"""What the exact searches rank finished outputs by (``Ranking``, with its admissible bound for
open prefixes) and each sentence's n best finished outputs (``NBestPool``), whose n-th score is
the bound a prefix must beat."""

from __future__ import annotations

from lab.search.types import NEG_INF, Hypothesis


class Ranking:
    """Score = log-prob + ``alpha`` * length (``alpha=0``: plain log-prob, the MAP ranking).

    Both are monotone in the log-prob and linear in the length, which keeps the bound exact
    and cheap: an open prefix of ``d`` tokens will end with a length in
    ``[max(d+1, min_len), limit]``, so its best reachable score is its log-prob plus
    ``alpha`` times the end of that range that ``alpha``'s sign favours.
    """

    def __init__(self, alpha: float, min_len: int) -> None:
        self.alpha, self.min_len = float(alpha), int(min_len)

    def score(self, logp: float, length: int) -> float:
        return logp + self.alpha * length

    def offset(self, depth: int, limit: int) -> float:
        """Admissible bound minus log-prob for an open prefix of ``depth`` tokens."""
        if self.alpha > 0:
            return self.alpha * limit
        return self.alpha * max(depth + 1, self.min_len)


class NBestPool:
    """The ``n`` best finished outputs of one sentence (no duplicates), and its bound."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[float, float, tuple[int, ...]]] = []  # (score, logp, tokens)

    @property
    def threshold(self) -> float:
        """A prefix must beat this score strictly to be worth expanding."""
        return self.items[-1][0] if len(self.items) == self.n else NEG_INF

    def offer(self, tokens: tuple[int, ...], logp: float, score: float) -> None:
        if score <= self.threshold or any(t == tokens for _, _, t in self.items):
            return
        self.items.append((score, logp, tokens))
        self.items.sort(key=lambda item: -item[0])
        del self.items[self.n :]

    def hypotheses(self, proved: bool, info: dict[str, float] | None = None) -> list[Hypothesis]:
        return [
            Hypothesis(toks, lp, s, len(toks), True, proved, info) for s, lp, toks in self.items
        ]
