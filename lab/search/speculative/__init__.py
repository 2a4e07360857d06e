"""Speculative decoding: a draft model proposes, the target verifies (``speculative.py``) by the
greedy or the acceptance-rejection rule (``verify.py``)."""

from lab.search.speculative import speculative  # noqa: F401  (registration)
