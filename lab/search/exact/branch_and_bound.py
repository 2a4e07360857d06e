"""The branch-and-bound driver shared by ``exact`` (depth-first) and ``best_first``.

Per batch: a beam search seeds each sentence's pool of the n best finished outputs (its n-th
score is the first bound); the source is encoded once; the empty prefixes of all sentences
are expanded in one call. Then, round after round, each sentence with open nodes and budget
left pops up to ``frontier // active_sentences`` nodes from its own container (a stack or a
heap, chosen by the subclass), dropping those the bound has overtaken; the popped nodes of all
sentences are expanded with one ``step`` call per distinct depth (``expansion.expand``); EOS
extensions enter the pools, and the other children that can still beat the bound are pushed.

Only finished outputs (ending in EOS within the length limit) are candidates: a prefix cut
at the limit is never returned. A sentence's forced prefix (``constraints``, as for greedy,
beam and sample: ``lab.search.prefix``) leaves each node inside it one child, the prefix's
next token, with its model log-prob: the prefix is scored, not skipped, so ``logprob`` is the
model's log-prob of the whole output, and the search is exact over the outputs that start
with the prefix (the beam seed is forced the same way). A sentence is *proved* when no open
node can beat its pool's n-th score; when its budget or the batch's time runs out first, it
returns its pool as it is (never worse than the beam seed, which is in it) with
``proved_optimal=False``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.exact.expansion import Siblings, children, expand
from lab.search.exact.nbest import NBestPool, Ranking
from lab.search.exact.states import Node, StateStore
from lab.search.limits import Limits, check_positive
from lab.search.prefix import ForcedPrefix
from lab.search.types import Constraints, Cost, Hypothesis, SearchOutput

ADMISSIBLE = ("none", "word_reward")


class Container:
    """A sentence's open nodes; subclasses decide the pop order. Nodes the bound has overtaken
    are dropped when met, releasing their hold on their parent's decoder state."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def push(self, group: Siblings) -> None:
        """Add the open children of one node."""
        raise NotImplementedError

    def pop(self, k: int, threshold: float) -> list[Node]:
        """Up to ``k`` nodes that can still beat ``threshold``."""
        raise NotImplementedError

    def open(self, threshold: float) -> bool:
        """Whether a node that can beat ``threshold`` is left."""
        raise NotImplementedError


class BranchAndBound:
    """Exact n-best search over finished outputs; ``container`` sets the exploration order."""

    name = "exact"
    container: type[Container] = Container
    default_frontier = 256  # prefixes a round expands when the config names none
    inputs, constraint_kinds = ("constraints",), ("prefix",)  # optional input: forced prefixes

    def __init__(
        self,
        nbest: int = 1,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        budget: int = 40000,
        time_limit: float | None = None,
        frontier: int | None = None,
        seed_beam: int = 4,
        penalty: str = "none",
        alpha: float = 0.0,
        processors: Any = None,
        **unknown: Any,
    ) -> None:
        name = self.name
        if unknown:
            raise LabError(
                f"search={name} has no key(s) {', '.join(sorted(unknown))}; its keys are nbest, "
                "max_len_a, max_len_b, min_len, budget, time_limit, frontier, seed_beam, "
                "penalty, alpha."
            )
        if penalty not in ADMISSIBLE:
            raise LabError(
                f"search={name} cannot rank by penalty '{penalty}' (no admissible bound); "
                "use penalty=none or penalty=word_reward, or search=beam_lp for average/gnmt."
            )
        if processors:
            raise LabError(
                f"search={name} ranks by the model's own log-probs; remove search.processors."
            )
        self.nbest = check_positive("nbest", nbest)
        self.budget = check_positive("budget", budget)
        self.frontier = check_positive(
            "frontier", self.default_frontier if frontier is None else frontier
        )
        self.seed_beam = check_positive("seed_beam", seed_beam)
        self.limits = Limits(max_len_a, max_len_b, min_len)
        if time_limit is not None and float(time_limit) <= 0:
            raise LabError(f"search.time_limit must be > 0 seconds or null, got {time_limit}.")
        self.time_limit = None if time_limit is None else float(time_limit)
        self.alpha = float(alpha) if penalty == "word_reward" else 0.0
        self.ranking = Ranking(self.alpha, self.limits.min_len)
        limits = dataclasses.asdict(self.limits)
        k = max(self.seed_beam, self.nbest)
        if self.alpha:
            kw = {"penalty": "word_reward", "alpha": self.alpha}
            self.seed = SEARCHES.build("beam_lp", beam_size=k, nbest=self.nbest, **kw, **limits)
        else:
            self.seed = SEARCHES.build("beam", beam_size=k, nbest=self.nbest, **limits)

    def __call__(
        self,
        model: DecoderModel,
        src_tokens: Tensor,
        src_lengths: Tensor,
        constraints: list[Constraints | None] | None = None,
    ) -> SearchOutput:
        with torch.inference_mode():
            return self._search(model, src_tokens, src_lengths, constraints)

    def _search(
        self, model: DecoderModel, src_tokens: Tensor, src_lengths: Tensor, constraints: Any
    ) -> SearchOutput:
        started, n = time.perf_counter(), src_tokens.size(0)
        deadline = None if self.time_limit is None else started + self.time_limit * n
        seed = self.seed(model, src_tokens, src_lengths, constraints=constraints)
        prefix = ForcedPrefix.of(constraints, src_tokens.device)
        cost = Cost()
        cost.add(seed.cost)  # the seed is part of the search: its calls are counted
        cost.sentences, cost.model_calls = n, cost.model_calls + 1  # + our own encode
        pools = [NBestPool(self.nbest) for _ in range(n)]
        for pool, hyps in zip(pools, seed.nbest, strict=True):
            for h in hyps:
                if h.finished:
                    pool.offer(h.tokens, h.logprob, self.ranking.score(h.logprob, h.length))
        limits = self.limits.per_sentence(src_lengths, model)  # (B,)
        limits = (limits if prefix is None else prefix.limits(limits)).tolist()
        state = model.init_state(model.encode(src_tokens, src_lengths), 1)
        store, spent = StateStore(), [1] * n
        root_sid = store.add(state.hyp)
        store.hold(root_sid, n)
        roots = [Node(0.0, 0.0, (), i, root_sid, i) for i in range(n)]
        # the empty prefixes of all sentences, in one call; its output's shared rows (one per
        # sentence) serve every later call (a model may add to them at its first step)
        order, log_probs, sid, shared = expand(model, roots, store, state.shared)
        cost.count_step(n)
        boxes = [self.container(store) for _ in range(n)]
        self._push(order, log_probs, sid, boxes, pools, limits, model, store, prefix)
        while deadline is None or time.perf_counter() < deadline:
            popped = self._pop_round(boxes, pools, spent)
            if not popped:
                break
            by_depth: dict[int, list[Node]] = {}
            for node in popped:
                by_depth.setdefault(node.depth, []).append(node)
            for depth in sorted(by_depth):
                order, log_probs, sid, _ = expand(model, by_depth[depth], store, shared)
                cost.count_step(len(order))
                self._push(order, log_probs, sid, boxes, pools, limits, model, store, prefix)
        return SearchOutput(
            [self._result(pools[i], boxes[i], seed.nbest[i], spent[i]) for i in range(n)], cost
        )

    def _push(self, order, log_probs, sid, boxes, pools, limits, model, store, prefix) -> None:  # noqa: ANN001
        if prefix is not None:  # inside a prefix: its next token only, with its log-prob
            sents = torch.tensor([node.sent for node in order], device=log_probs.device)
            log_probs = prefix(log_probs, log_probs, order[0].depth + 1, sents, 1)
        groups = children(order, log_probs, sid, pools, limits, self.ranking, model)
        store.hold(sid, sum(g is not None for g in groups))
        for node, group in zip(order, groups, strict=True):
            if group is not None:
                boxes[node.sent].push(group)

    def _pop_round(
        self, boxes: list[Container], pools: list[NBestPool], spent: list[int]
    ) -> list[Node]:
        """Up to ``frontier`` nodes, shared out evenly among the sentences still searching."""
        active = [
            i
            for i, box in enumerate(boxes)
            if spent[i] < self.budget and box.open(pools[i].threshold)
        ]
        if not active:
            return []
        share, popped = max(1, self.frontier // len(active)), []
        for i in active:
            nodes = boxes[i].pop(min(share, self.budget - spent[i]), pools[i].threshold)
            spent[i] += len(nodes)
            popped.extend(nodes)
        return popped

    def _result(
        self, pool: NBestPool, box: Container, seed: list[Hypothesis], spent: int
    ) -> list[Hypothesis]:
        """The sentence's n-best; ``info["expansions"]``: the nodes it expanded (its share of
        the work, the empty prefix included), what a proof cost or the budget it used up."""
        proved, info = not box.open(pool.threshold), {"expansions": float(spent)}
        if pool.items:
            return pool.hypotheses(proved, info)
        # no finished output found (e.g. min_len above the limit): the seed's, with no claim
        return [
            Hypothesis(h.tokens, h.logprob, h.score, h.length, h.finished, False, info)
            for h in seed
        ]
