"""Search algorithms and their plug-ins (penalties, stop rules, logits processors)."""

from lab.search import beam, greedy, penalties, processors, stop  # noqa: F401  (registration)
from lab.search.base import Cost, Hypothesis, SearchOutput

__all__ = ["Cost", "Hypothesis", "SearchOutput"]
