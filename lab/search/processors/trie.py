"""``trie``: trie-constrained decoding, a processor any step-by-step search can apply.

Every step, a row may choose only a token that continues one of its example's allowed outputs
(``Constraints.allowed`` and ``Constraints.spans``), and EOS only where one ends; the rest get
-inf. So every finished output is an allowed one, and its ``logprob`` is still the model's: the
tokens kept keep their scores. This is GENRE's constrained beam search (De Cao et al., 2021) and
Hugging Face's ``prefix_allowed_tokens_fn``, with the tree built per example from the task's
allowed outputs (``task.allowed=source_spans`` for QA, ``story_words`` for bAbI, or ``allowed``
lists in ``task.constraints_path``).

A token is also refused when no allowed output through it fits the sentence's length limit, so
a search never runs into its limit inside the tree; when none of an example's outputs fits,
nothing is legal and the search returns its empty, unfinished output. Sentences without an
allowed constraint are left free. Put ``trie`` first among ``search.processors``: a filter
before it (``top_k``, ``top_p``) could remove every allowed token, one after it then keeps the
sampling distribution on the allowed ones.

Per step the cost is one dict lookup per row: the node of each row's prefix comes from its
parent's, kept by prefix (as ``uid_max`` keeps its state: processors are not told how a search
reorders its rows), and the mask is one scatter of the allowed ``(row, token)`` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lab.errors import LabError
from lab.registry import PROCESSORS
from lab.search.processors.prefix_tree import Node, build
from lab.search.types import NEG_INF, Constraints
from lab.vocab import EOS_ID

Key = tuple[int, tuple[int, ...]]  # (sentence, prefix)
NO_ALLOWED = (
    "processor trie needs each example's allowed outputs, and no example has any; set"
    " task.allowed (squad: source_spans, babi: story_words) or give 'allowed' lists in"
    " task.constraints_path."
)


@PROCESSORS.register("trie")
class Trie:
    """Only continuations of the example's allowed outputs (see the module docstring).

    Built from the config as ``{name: trie}``; the search binds it to each call's constraints
    (``bind``), one tree per sentence, and the driver calls it with each row's sentence.
    """

    constraint_kinds = ("allowed",)
    takes_limit = True
    takes_sentence = True

    def __init__(self, eos_id: int = EOS_ID) -> None:
        self.eos_id = eos_id
        self.trees: list[Node | None] | None = None  # one per sentence of the bound call
        self._nodes: dict[Key, Node | None] = {}  # last step's rows: (sentence, prefix) -> node

    def bind(self, constraints: Sequence[Constraints | None] | None) -> Trie:
        """This processor for one call: a tree per sentence of ``constraints`` (None where a
        sentence has no allowed constraint)."""
        if constraints is None:
            raise LabError(NO_ALLOWED)
        bound, built = Trie(self.eos_id), {}
        for c in constraints:  # questions on one paragraph share its spans: one tree
            key = (id(c.allowed), id(c.spans)) if c and "allowed" in c.kinds() else None
            if key is not None and key not in built:
                built[key] = build(c)  # type: ignore[arg-type]
        bound.trees = [built.get((id(c.allowed), id(c.spans))) if c else None for c in constraints]
        return bound

    def __call__(
        self,
        log_probs: Tensor,
        tokens: Tensor,
        step: int,
        limit: Tensor | None = None,
        sentence: Tensor | None = None,
    ) -> Tensor:
        if self.trees is None or sentence is None:
            raise LabError(
                "processor trie was applied without the examples' allowed outputs; use it with a"
                " search that takes them: greedy, beam, sample, diverse_beam, constrained_beam."
            )
        rows, toks, free = self._allowed(tokens, step, limit, sentence)
        dev = log_probs.device
        allowed = torch.zeros(log_probs.shape, dtype=torch.bool, device=dev)  # (N, V)
        ids = torch.tensor([rows, toks], dtype=torch.long).to(dev)  # (2, pairs)
        allowed[ids[0], ids[1]] = True
        allowed[torch.tensor(free, dtype=torch.long).to(dev)] = True
        return log_probs.masked_fill(~allowed, NEG_INF)  # (N, V)

    def _allowed(
        self, tokens: Tensor, step: int, limit: Tensor | None, sentence: Tensor
    ) -> tuple[list[int], list[int], list[int]]:
        """The allowed ``(row, token)`` pairs of this step, and the rows left free."""
        rows: list[int] = []
        toks: list[int] = []
        free: list[int] = []
        nodes: dict[Key, Node | None] = {}
        room = [float("inf")] * tokens.size(0) if limit is None else (limit - step).tolist()
        for r, (s, prefix) in enumerate(zip(sentence.tolist(), tokens.tolist(), strict=True)):
            if self.trees[s] is None:  # type: ignore[index]
                free.append(r)
                continue
            key = (s, tuple(prefix))
            node = nodes[key] = self._node(key)
            if node is None:  # the row left the tree (a forced prefix): nothing continues it
                continue
            for tok, child in node.children.items():
                if child.rest <= room[r]:  # an allowed output through it fits the limit
                    rows.append(r)
                    toks.append(tok)
            if node.end:
                rows.append(r)
                toks.append(self.eos_id)
        self._nodes = nodes
        return rows, toks, free

    def _node(self, key: Key) -> Node | None:
        """The node of a row's prefix: its parent's child (the parent was last step's row)."""
        s, prefix = key
        if not prefix:
            return self.trees[s]  # type: ignore[index]
        parent_key = (s, prefix[:-1])
        if parent_key not in self._nodes:  # not seen last step: walk down from the root
            return self.trees[s].walk(prefix)  # type: ignore[index, union-attr]
        parent = self._nodes[parent_key]
        return None if parent is None else parent.children.get(prefix[-1])
