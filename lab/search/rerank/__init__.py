"""Reranking an inner search's n-best lists by a weighted sum of scorers (``rerank.py``): the
scorers (``scorers.py``: direct, channel, lm, length) and their weights (``weights.py``), set
or tuned on held-out lists by a grid or by Optuna (``tuning.py``)."""

from lab.search.rerank import rerank, scorers  # noqa: F401
