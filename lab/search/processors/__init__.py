"""Logits processors (the ``Processor`` contract of ``lab.search.contracts``): constraints,
sampling warpers and UID regularizers, and the chain a search applies."""

from lab.search.processors import (  # noqa: F401  (registration)
    constraints,
    regularizers,
    trie,
    warpers,
)
