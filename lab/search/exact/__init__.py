"""Searches that prove their answer: branch-and-bound over a frontier of prefixes, depth-first
(``exact``) or best-first (``best_first``), seeded by a beam search."""

from lab.search.exact import best_first, exact  # noqa: F401  (registration)
