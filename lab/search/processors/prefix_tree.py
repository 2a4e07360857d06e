"""The prefix tree (trie) of the token ids of the outputs one example allows, which the ``trie``
processor walks: GENRE's constrained beam search (De Cao et al., 2021) and Hugging Face's
``prefix_allowed_tokens_fn`` restrict every step by such a tree.

A ``Node`` maps each token that continues some allowed output to its child; ``end`` says an
allowed output ends there (EOS may follow); ``rest`` is the fewest tokens, EOS included, that
finish an allowed output from it, so a step can refuse a token whose outputs no longer fit the
sentence's length limit. ``build`` makes the tree of an example's ``Constraints``: its
``allowed`` list and its ``spans`` (every run of up to ``max_words`` words of a text, inserted
as one path per start word with an end after each word, so the tree holds
``O(words * max_words)`` nodes, not one path per span).
"""

from __future__ import annotations

from collections.abc import Iterable

from lab.errors import LabError
from lab.search.types import Constraints, Spans


class Node:
    """One prefix of an allowed output (see the module docstring)."""

    __slots__ = ("children", "end", "rest")

    def __init__(self) -> None:
        self.children: dict[int, Node] = {}
        self.end = False
        self.rest = 0

    def add(self, ids: Iterable[int]) -> Node:
        """The node of this prefix extended by ``ids``, made where missing."""
        node = self
        for i in ids:
            child = node.children.get(i)
            if child is None:
                child = node.children[i] = Node()
            node = child
        return node

    def walk(self, ids: Iterable[int]) -> Node | None:
        """The node of this prefix extended by ``ids``; None when that leaves the tree."""
        node: Node | None = self
        for i in ids:
            node = node.children.get(i)
            if node is None:
                return None
        return node


def build(constraints: Constraints) -> Node:
    """The tree of the outputs ``constraints`` allows, with ``rest`` set on every node; an
    example that allows no output is a ``LabError``."""
    root = Node()
    for ids in constraints.allowed or ():
        root.add(ids).end = True
    if constraints.spans is not None:
        add_spans(root, constraints.spans)
    if not (root.children or root.end):
        raise LabError(
            "an example allows no output (an empty allowed list, or no words to take spans"
            " from); give it at least one allowed output or drop its allowed constraint."
        )
    set_rest(root)
    return root


def add_spans(root: Node, spans: Spans) -> None:
    """Every run of 1..``max_words`` consecutive words of ``spans``: the first word whole or
    without its leading punctuation, the last whole or without its trailing punctuation."""
    words, m, empty_allowed = spans.words, spans.max_words, root.end
    for i, (whole, head, tail, core) in enumerate(words):
        for first, alone in {(whole, tail), (head, core)}:
            for one_word in (first, alone):
                if one_word:  # a word of punctuation only is no output on its own
                    root.add(one_word).end = True
            node = root.add(first)
            for j in range(i + 1, min(i + m, len(words))):
                middle, _, last, _ = words[j]
                node.add(last).end = True
                node = node.add(middle)
                node.end = True
    root.end = empty_allowed  # words of punctuation only make no empty span


def set_rest(root: Node) -> None:
    """Set ``rest`` on every node, children before parents (no recursion: trees may be deep)."""
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children.values())
    for node in reversed(order):
        rests = [1 + c.rest for c in node.children.values()]
        node.rest = min([1, *rests] if node.end else rests)
