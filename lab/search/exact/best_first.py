"""Best-first (uniform-cost) search on the model score: the exact mode without a full
depth-first sweep (Stahlberg & Byrne, 2019, "On NMT search errors and model errors: cat got
your tongue?", which compares it with depth-first exact search).

Each sentence keeps a priority queue of open prefixes keyed by their optimistic final score
(the log-prob itself for ``penalty=none``: uniform-cost search; plus an admissible length
term for ``word_reward``: A* with a constant-offset heuristic). Finished outputs are not
queued: they enter the sentence's n-best pool at once, and the sentence is done when the best
queued prefix cannot beat the pool's n-th score, the same certificate as popping n finished
outputs first from a queue holding both. Each round pops the best ``frontier / active``
prefixes of every sentence still searching and expands them with one ``step`` per distinct
depth (decoder states kept, see ``lab.search.exact.expansion``). The queue can hold many
more prefixes than a depth-first stack, and each waiting prefix keeps its parent's ``step``
output alive, so it needs more memory than ``exact`` under the same budget.
"""

from __future__ import annotations

import heapq
import itertools

from lab.registry import SEARCHES
from lab.search.exact.branch_and_bound import BranchAndBound, Container
from lab.search.exact.expansion import Siblings
from lab.search.exact.states import Node, StateStore


class Heap(Container):
    """Max-priority on the bound of each sibling group's best remaining child; ties in push
    order. A group re-enters the heap with its next child's bound after each take."""

    def __init__(self, store: StateStore) -> None:
        super().__init__(store)
        self.heap: list[tuple[float, int, Siblings]] = []
        self.count = itertools.count()

    def push(self, group: Siblings) -> None:
        heapq.heappush(self.heap, (-group.bound, next(self.count), group))

    def pop(self, k: int, threshold: float) -> list[Node]:
        out: list[Node] = []
        while len(out) < k and self.open(threshold):
            _, order, group = self.heap[0]
            out.append(group.take(self.store))
            if group.next == group.size:
                heapq.heappop(self.heap)
            else:
                heapq.heapreplace(self.heap, (-group.bound, order, group))
        return out

    def open(self, threshold: float) -> bool:
        if self.heap and -self.heap[0][0] <= threshold:
            # the best queued child cannot win, so none can: drop them all
            for _, _, group in self.heap:
                group.drop(self.store)
            self.heap.clear()
        return bool(self.heap)


@SEARCHES.register("best_first")
class BestFirst(BranchAndBound):
    """Best-first (uniform-cost) exact n-best search with batched expansion."""

    name = "best_first"
    container = Heap
