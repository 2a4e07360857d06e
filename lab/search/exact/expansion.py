"""Node expansion for the exact searches (``exact``, ``best_first``): one ``step`` call for the
open prefixes of one depth, and the children of each that can still beat the bound.

Exact MAP decoding by branch-and-bound follows Stahlberg & Byrne (2019), "On NMT search
errors and model errors: cat got your tongue?": a prefix is dropped as soon as its optimistic
final score cannot beat the n-th best finished output found so far. Token log-probabilities
are <= 0, so a prefix's log-prob never rises as it grows: with plain log-prob ranking the
prefix's own log-prob is an admissible bound.

**Decoder states are kept, not recomputed.** A node is a prefix ``y_1..y_d``; expanding it is
one ``model.step`` feeding ``y_d`` from the state that has read ``BOS y_1..y_{d-1}``. That
state is one row of the output of the call that expanded the node's parent; the output of
every call is held in a ``StateStore`` until all the children that refer to it have been
popped. Nodes of the same depth (from any parents and any sentences of the batch) share one
``step`` call: their parent rows are gathered and concatenated into one ``State`` whose
``shared`` tensors are the per-sentence rows of each node (``beam_size=1``). Nodes of different
depths cannot share a call (a KV cache has one length per call), so one expansion round makes
one call per distinct depth. Recomputing each prefix by teacher forcing (``model.forward``)
would handle mixed depths in one call, but it re-encodes the source, runs the decoder over the
whole prefix and computes the output layer at every position: about ``d`` times the work of
one ``step`` for a prefix of ``d`` tokens (and ``forward`` has no way to reuse the memory of
``encode``). Kept states cost memory only while their children wait: depth-first search keeps
about one call output per level; best-first keeps more (see ``best_first``).

Children are kept lazily: an expanded node's children above the bound become one
``Siblings`` group (sorted token and log-prob lists), and a ``Node`` is made only when the
group's next child is popped. Siblings are sorted, so once one cannot beat the bound the rest
of its group is dropped at once; a flat distribution (thousands of children above a loose
bound) costs one ``topk`` and a list, not thousands of ``Node``s.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lab.models.base import DecoderModel, State
from lab.search.exact.nbest import NBestPool, Ranking
from lab.search.exact.states import Node, StateStore, select_rows
from lab.search.types import NEG_INF


def expand(
    model: DecoderModel,
    nodes: list[Node],
    store: StateStore,
    shared: dict[str, Any],
) -> tuple[list[Node], Tensor, int, dict[str, Any]]:
    """One ``step`` call for nodes of one depth (any sentences): returns the nodes in row
    order, their next-token log-probs ``(N, V)``, the store id of the new states and the new
    state's ``shared`` rows (one per node).

    Each node releases its hold on its parent's state; the caller holds the new entry for
    the children it keeps.
    """
    depth = nodes[0].depth
    order, hyp = store.gather(nodes)
    for node in order:
        store.release(node.sid)
    sents = torch.tensor([node.sent for node in order])  # (N,)
    rows = select_rows(shared, sents)
    device = log_device(model)
    prev = torch.tensor(
        [node.tokens[-1] if node.tokens else model.bos_id for node in order], device=device
    )  # (N,)
    log_probs, state = model.step(prev, State(hyp=hyp, shared=rows, beam_size=1, step=depth))
    return order, log_probs.float(), store.add(state.hyp), state.shared


def log_device(model: DecoderModel) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class Siblings:
    """The open children of one expanded node that could beat the bound when it was
    expanded, best first, made into ``Node``s only when popped (a flat distribution can put
    thousands of children above the bound; most are pruned before their turn comes). Holds
    one reference on the parent's state in the store while any child is left."""

    __slots__ = ("parent", "sid", "row", "tokens", "logps", "offset", "next", "size")

    def __init__(
        self, parent: Node, sid: int, row: int, tokens: Tensor, logps: Tensor, offset: float
    ) -> None:
        self.parent, self.sid, self.row = parent, sid, row
        # (k,) each, best first, as Python lists: a node is taken one at a time, and reading
        # a list costs a fraction of indexing a tensor
        self.tokens: list[int] = tokens.tolist()
        self.logps: list[float] = logps.tolist()
        self.offset = offset  # bound - log-prob, the same for all siblings
        self.next, self.size = 0, len(self.tokens)

    @property
    def bound(self) -> float:
        """Bound of the best child not yet taken (the later ones are no better)."""
        return self.logps[self.next] + self.offset

    def take(self, store: StateStore) -> Node:
        i, self.next = self.next, self.next + 1
        logp = self.logps[i]
        store.hold(self.sid, 1)
        if self.next == self.size:
            store.release(self.sid)
        tokens = (*self.parent.tokens, self.tokens[i])
        return Node(logp + self.offset, logp, tokens, self.parent.sent, self.sid, self.row)

    def drop(self, store: StateStore) -> None:
        store.release(self.sid)


def children(
    order: list[Node],
    log_probs: Tensor,
    sid: int,
    pools: list[NBestPool],
    limits: list[int],
    ranking: Ranking,
    model: DecoderModel,
) -> list[Siblings | None]:
    """Offer each node's EOS extension to its sentence's pool, then return, per node, its open
    children that can still beat the (updated) pool bound, best first.

    A row's bound is its children's log-probs plus one offset, so the children that can win
    are the row's ``count`` best and ``topk`` over the log-probs finds them: no masked copy of
    the ``(N, V)`` scores is made, and with plain log-prob ranking (every offset 0) the bound is
    the log-prob itself."""
    depth = order[0].depth
    logp = log_probs + torch.tensor([node.logp for node in order], device=log_probs.device)[:, None]
    if depth + 1 >= ranking.min_len:  # (N, V) above: each child's log-prob
        for node, value in zip(order, logp[:, model.eos_id].tolist(), strict=True):
            toks = (*node.tokens, model.eos_id)
            pools[node.sent].offer(toks, value, ranking.score(value, len(toks)))
    # never generated, as in beam search; EOS children are finished, offered above
    logp[:, [model.pad_id, model.bos_id, model.eos_id]] = NEG_INF
    offsets = [
        ranking.offset(depth + 1, limits[nd.sent]) if depth + 1 < limits[nd.sent] else NEG_INF
        for nd in order
    ]
    thr = torch.tensor([pools[nd.sent].threshold for nd in order], device=logp.device)  # (N,)
    bound = logp  # adding an offset of 0 changes no float
    if any(offsets):
        bound = logp + torch.tensor(offsets, device=logp.device)[:, None]  # (N, V)
    counts = (bound > thr[:, None]).sum(1).tolist()  # (N,) each row's children that can win
    width = max(counts)
    out: list[Siblings | None] = [None] * len(order)
    if width == 0:
        return out
    top, tok = logp.topk(width, dim=1)  # (N, width) best first: a row's first count can win
    for r, (node, count) in enumerate(zip(order, counts, strict=True)):
        if count:
            out[r] = Siblings(node, sid, r, tok[r, :count], top[r, :count], offsets[r])
    return out
