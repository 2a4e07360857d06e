"""Shared machinery of the exact searches (``exact``, ``best_first``): nodes, the n-best pool
and its bound, the ranking's admissible bound, and batched node expansion.

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
``Siblings`` group (sorted token and log-prob tensors), and a ``Node`` is made only when the
group's next child is popped. Siblings are sorted, so once one cannot beat the bound the rest
of its group is dropped at once; a flat distribution (thousands of children above a loose
bound) costs one ``topk``, not thousands of Python objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lab.models.base import DecoderModel, State
from lab.search.base import Hypothesis

NEG_INF = float("-inf")


def leafwise(fn: Callable[..., Tensor], *leaves: Any) -> Any:
    """``fn`` over state values that are tensors or per-layer lists/tuples of tensors (the
    layouts ``State`` allows), applied layer by layer; the container type is kept."""
    if isinstance(leaves[0], Tensor):
        return fn(*leaves)
    return type(leaves[0])(fn(*layer) for layer in zip(*leaves, strict=True))


def select_rows(values: dict[str, Any], rows: Tensor) -> dict[str, Any]:
    """Rows ``rows`` (dim 0) of every tensor of a ``State.hyp``/``shared`` dict."""
    return {
        n: leafwise(lambda t: t.index_select(0, rows.to(t.device)), v) for n, v in values.items()
    }


def concat_rows(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack the rows of several ``State.hyp`` dicts of the same layout."""
    return {n: leafwise(lambda *ts: torch.cat(ts, dim=0), *(p[n] for p in parts)) for n in parts[0]}


@dataclass(frozen=True, slots=True)
class Node:
    """An open prefix: ``tokens`` (no BOS, no EOS), its model log-prob, the optimistic final
    score ``bound``, and where its decoder state lives: row ``row`` of store entry ``sid``."""

    bound: float
    logp: float
    tokens: tuple[int, ...]
    sent: int
    sid: int
    row: int

    @property
    def depth(self) -> int:
        return len(self.tokens)


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


class Pool:
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


class StateStore:
    """Outputs of ``step`` calls (``State.hyp``), each kept until no waiting child needs it."""

    def __init__(self) -> None:
        self.hyp: dict[int, dict[str, Any]] = {}
        self.refs: dict[int, int] = {}
        self._next = 0

    def add(self, hyp: dict[str, Any]) -> int:
        sid, self._next = self._next, self._next + 1
        self.hyp[sid], self.refs[sid] = hyp, 0
        return sid

    def hold(self, sid: int, count: int) -> None:
        self.refs[sid] += count
        self.release(sid, 0)

    def release(self, sid: int, count: int = 1) -> None:
        self.refs[sid] -= count
        if self.refs[sid] <= 0:
            del self.hyp[sid], self.refs[sid]

    def gather(self, nodes: list[Node]) -> tuple[list[Node], dict[str, Any]]:
        """The parent rows of ``nodes`` as one ``hyp`` dict, and the nodes in its row order."""
        by_sid: dict[int, list[Node]] = defaultdict(list)
        for node in nodes:
            by_sid[node.sid].append(node)
        order = [node for group in by_sid.values() for node in group]
        parts = [
            select_rows(self.hyp[sid], torch.tensor([node.row for node in group]))
            for sid, group in by_sid.items()
        ]
        return order, concat_rows(parts) if len(parts) > 1 else parts[0]


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
        self.tokens, self.logps = tokens, logps  # (k,), (k,) sorted by log-prob, descending
        self.offset = offset  # bound - log-prob, the same for all siblings
        self.next, self.size = 0, int(tokens.numel())

    @property
    def bound(self) -> float:
        """Bound of the best child not yet taken (the later ones are no better)."""
        return float(self.logps[self.next]) + self.offset

    def take(self, store: StateStore) -> Node:
        i, self.next = self.next, self.next + 1
        logp = float(self.logps[i])
        store.hold(self.sid, 1)
        if self.next == self.size:
            store.release(self.sid)
        tokens = (*self.parent.tokens, int(self.tokens[i]))
        return Node(logp + self.offset, logp, tokens, self.parent.sent, self.sid, self.row)

    def drop(self, store: StateStore) -> None:
        store.release(self.sid)


def children(
    order: list[Node],
    log_probs: Tensor,
    sid: int,
    pools: list[Pool],
    limits: list[int],
    ranking: Ranking,
    model: DecoderModel,
) -> list[Siblings | None]:
    """Offer each node's EOS extension to its sentence's pool, then return, per node, its open
    children that can still beat the (updated) pool bound, best first."""
    depth = order[0].depth
    lp = log_probs.clone()  # (N, V)
    lp[:, [model.pad_id, model.bos_id]] = NEG_INF  # never generated, as in beam search
    logp = torch.tensor([node.logp for node in order], device=lp.device)[:, None] + lp  # (N, V)
    if depth + 1 >= ranking.min_len:
        for node, value in zip(order, logp[:, model.eos_id].tolist(), strict=True):
            toks = (*node.tokens, model.eos_id)
            pools[node.sent].offer(toks, value, ranking.score(value, len(toks)))
    offsets = [
        ranking.offset(depth + 1, limits[nd.sent]) if depth + 1 < limits[nd.sent] else NEG_INF
        for nd in order
    ]
    thr = torch.tensor([pools[nd.sent].threshold for nd in order], device=lp.device)  # (N,)
    bound = logp + torch.tensor(offsets, device=lp.device)[:, None]  # (N, V)
    bound[:, model.eos_id] = NEG_INF
    keep = bound > thr[:, None]  # (N, V)
    counts = keep.sum(1).tolist()  # (N,)
    key = logp.masked_fill(~keep, NEG_INF)  # (N, V)
    width = max(counts)
    out: list[Siblings | None] = [None] * len(order)
    if width == 0:
        return out
    top, tok = key.topk(width, dim=1)  # (N, width) best first
    for r, (node, count) in enumerate(zip(order, counts, strict=True)):
        if count:
            out[r] = Siblings(node, sid, r, tok[r, :count], top[r, :count], offsets[r])
    return out
