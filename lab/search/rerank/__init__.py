"""Reranking an inner search's n-best lists by a weighted sum of scorers (``rerank.py``): the
scorers (``scorers.py``: direct, channel, lm, length) and their weights, set or tuned by grid
(``weights.py``)."""

from lab.search.rerank import rerank, scorers  # noqa: F401
