"""The node store of the exact searches: open prefixes (``Node``) and the decoder states they
expand from, each ``step`` output kept until no waiting node needs it (see
``lab.search.exact.expansion`` for why states are kept, not recomputed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


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
