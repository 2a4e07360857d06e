"""What the searches that choose among other searches' outputs share (``mbr``, ``rerank``): an
inner search built from its config, run through ``call_search`` with the optional inputs it
asks for, its n-best lists without duplicate outputs, and the cost of the whole.

A selection search runs its inner searches through one ``Generation`` per batch, chooses per
sentence, and returns ``Generation.output``: the inner searches' counters summed (each output
once), ``sentences`` set to the batch's, and wall time split into ``generation_seconds`` (the
inner searches) and ``selection_seconds`` (everything after them: scoring and ranking).

``Tunable`` is the contract of a selection search with settings fitted on held-out data before
it decodes (rerank's weights); ``lab.tune`` runs it for the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.contracts import Detokenize, Search, call_search
from lab.search.types import Cost, Hypothesis, SearchOutput

Text = Callable[[Hypothesis], str]  # a hypothesis -> its detokenized text


def build_inner(key: str, cfg: Any) -> Search:
    """The search that ``search.<key>`` describes (a config with a ``name``), built now, so that
    a bad inner key fails before anything is trained or decoded."""
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
        raise LabError(
            f"search.{key} must be a search config with a name, e.g. "
            f"{{name: beam, beam_size: 5, nbest: 5}}; got {cfg!r}."
        )
    opts = dict(cfg)
    name = opts.pop("name")
    try:
        return SEARCHES.build(name, **opts)
    except LabError as e:
        raise LabError(f"search.{key}: {e}") from None


def distinct(hyps: Sequence[Hypothesis]) -> list[Hypothesis]:
    """``hyps`` without repeated outputs (same tokens): the first occurrence kept, in order."""
    first: dict[tuple[int, ...], Hypothesis] = {}
    for h in hyps:
        first.setdefault(h.tokens, h)
    return list(first.values())


def texts(detokenize: Detokenize, eos: int) -> Text:
    """Detokenized text of a hypothesis (EOS dropped), computed once per token sequence."""
    cache: dict[tuple[int, ...], str] = {}

    def text(hyp: Hypothesis) -> str:
        toks = hyp.tokens
        if toks not in cache:
            ids = toks[:-1] if hyp.finished and toks and toks[-1] == eos else toks
            cache[toks] = detokenize(list(ids))
        return cache[toks]

    return text


class Generation:
    """One batch's inner-search outputs and the time they took, for the cost of the whole."""

    def __init__(self) -> None:
        self.outputs: list[SearchOutput] = []
        self.started = self.generated = time.perf_counter()

    def run(
        self,
        search: Search,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None,
        detokenize: Detokenize | None,
    ) -> SearchOutput:
        """``search`` on the batch (``call_search``: the inputs it asks for, and only those)."""
        out = call_search(search, model, src, src_lengths, keys, detokenize)
        self.outputs.append(out)
        self.generated = time.perf_counter()
        return out

    def output(self, nbest: list[list[Hypothesis]], sentences: int) -> SearchOutput:
        """The selected ``nbest`` lists with the cost of generating and selecting them."""
        cost = Cost()
        for inner in self.outputs:
            cost.add(inner.cost)
        cost.sentences = sentences
        cost.generation_seconds = self.generated - self.started
        cost.selection_seconds = time.perf_counter() - self.generated
        return SearchOutput(nbest, cost)


Decode = Callable[[Search], list[list[Hypothesis]]]  # a search -> n-best lists, one per sentence
Quality = Callable[[list[Hypothesis]], float]  # one output per sentence -> corpus metric


@runtime_checkable
class Tunable(Protocol):
    """A search whose settings are fitted on the validation split before it decodes.

    When ``tunes`` is true, ``lab.tune.tune_search`` calls ``tune(decode, quality)`` once: on
    the first ``tune_limit`` validation examples (None: all), ``decode(search)`` returns a
    search's n-best lists, one per example, and ``quality(outputs)`` the task's metric
    ``tune_metric`` of one output per example (negated where lower is better: higher is always
    better). ``tune`` sets the settings and returns what to record beside the run's results
    (``settings``)."""

    tunes: bool
    tune_metric: str
    tune_limit: int | None

    def tune(self, decode: Decode, quality: Quality) -> dict[str, Any]: ...
