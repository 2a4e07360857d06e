"""The two plug-in contracts of decoding, written down: ``Search`` and ``Processor``.

A **search** is built from its config by the ``search`` registry and called per batch:
``search(model, src, src_lengths, **inputs) -> SearchOutput``. Beyond the batch it may ask for
*optional inputs*, named in its ``inputs`` attribute (no attribute: none). They are the only
ones there are, and ``call_search`` is the one place that passes them:

* ``keys``: one int per sentence (``lab.search.rng.example_key`` of the example id), which
  seeds the sentence's own random stream; a sampling search's draws then do not depend on the
  batch. Searches that sample ask for it.
* ``detokenize``: output token ids (no EOS) -> text; what MBR's utilities compare.
* ``constraints``: one ``Constraints`` (or None) per sentence: a forced prefix, phrases to
  include, allowed outputs. A search that does not ask for it refuses a batch that carries any;
  one that asks names the kinds it handles in ``constraint_kinds`` and refuses the others.

A model that ranks by something other than its log-probability (``model=fusion``) is a
``ReportingModel``: ``call_search`` passes every output through its ``report``, so no search
needs to know.

A search may also carry ``nbest`` (outputs per sentence it returns; default 1: the evaluator
saves n-best lists when it is above 1) and ``settings`` (the values it was built from, e.g. a
toolkit preset's resolved knobs, recorded beside the run's results); ``nbest_of`` and
``settings_of`` read them.

A **processor** transforms one step's log-probabilities, ``proc(log_probs, tokens, step)`` with
``log_probs`` ``(N, V)``, ``tokens`` ``(N, step-1)`` and the 1-based ``step``; it returns the
processed ``(N, V)``. One that also needs each row's length limit ``(N,)`` says so with
``takes_limit = True`` and is called with ``limit`` as a fourth argument (``forced_eos``). One
that reads the examples' constraints (``trie``) says so with ``takes_sentence = True`` and
names the kinds it enforces in ``constraint_kinds``: a search binds it to each call's
constraints (``bind(constraints) -> Processor``) and calls it with ``sentence`` ``(N,)``, each
row's sentence (its position in the call's batch), as a keyword.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.search.types import NEG_INF, Constraints, SearchOutput

INPUTS = ("keys", "detokenize", "constraints")
Detokenize = Callable[[Sequence[int]], str]


@runtime_checkable
class Search(Protocol):
    """``search(model, src (B, S), src_lengths (B,)) -> SearchOutput``; the optional inputs it
    names in ``inputs`` are keyword parameters of its ``__call__`` (``keys=None``)."""

    def __call__(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput: ...


@runtime_checkable
class Processor(Protocol):
    """``proc(log_probs (N, V), tokens (N, step-1), step) -> (N, V)``."""

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor: ...


class LimitProcessor(Protocol):
    """A processor that also reads each row's length limit ``(N,)``."""

    takes_limit: ClassVar[bool]

    def __call__(
        self, log_probs: Tensor, tokens: Tensor, step: int, limit: Tensor | None = None
    ) -> Tensor: ...


class SentenceProcessor(Protocol):
    """A processor that reads the examples' constraints (``trie``): ``bind`` gives the one for a
    call's batch; it is then called with each row's sentence ``(N,)``."""

    takes_sentence: ClassVar[bool]
    constraint_kinds: ClassVar[tuple[str, ...]]

    def bind(self, constraints: Sequence[Constraints | None] | None) -> SentenceProcessor: ...

    def __call__(
        self,
        log_probs: Tensor,
        tokens: Tensor,
        step: int,
        limit: Tensor | None = None,
        sentence: Tensor | None = None,
    ) -> Tensor: ...


@runtime_checkable
class ReportingModel(Protocol):
    """A model whose search objective is not its log-probability (LM fusion: ``step`` gives
    fused scores). ``call_search`` hands it every search's output: ``report`` returns the
    output with each hypothesis's ``logprob`` the model's own and its parts in ``info``."""

    def report(self, output: SearchOutput, src: Tensor, src_lengths: Tensor) -> SearchOutput: ...


def wanted_inputs(search: Search) -> tuple[str, ...]:
    """The optional inputs ``search`` asks for; an unknown name is a plug-in's bug."""
    wants = tuple(getattr(search, "inputs", ()))
    unknown = [w for w in wants if w not in INPUTS]
    if unknown:
        raise TypeError(f"search asks for unknown inputs {unknown}; known: {', '.join(INPUTS)}")
    return wants


def call_search(
    search: Search,
    model: DecoderModel,
    src: Tensor,
    src_lengths: Tensor,
    keys: Sequence[int] | None = None,
    detokenize: Detokenize | None = None,
    constraints: Sequence[Constraints | None] | None = None,
) -> SearchOutput:
    """Run ``search`` on one batch, passing the optional inputs it asks for (and only those)."""
    wants = wanted_inputs(search)
    extra: dict[str, Any] = {}
    check_constraints(search, constraints)
    if "constraints" in wants:
        extra["constraints"] = None if constraints is None else list(constraints)
    if "keys" in wants:
        extra["keys"] = None if keys is None else list(keys)
    if "detokenize" in wants:
        extra["detokenize"] = detokenize
    output = search(model, src, src_lengths, **extra)  # type: ignore[call-arg]
    if isinstance(model, ReportingModel):
        return model.report(output, src, src_lengths)
    return output


def check_constraints(search: Search, constraints: Sequence[Constraints | None] | None) -> None:
    """Refuse, in one line, constraints of a kind ``search`` does not handle."""
    kinds = {k for c in constraints or () if c is not None for k in c.kinds()}
    if not kinds:
        return
    takes = (
        set(getattr(search, "constraint_kinds", ()))
        if "constraints" in wanted_inputs(search)
        else set()
    )
    refused = sorted(kinds - takes)
    if refused:
        name = getattr(search, "name", type(search).__name__)
        fix = (
            "add {name: trie} to search.processors (greedy, beam, sample, diverse_beam,"
            " constrained_beam), "
            if refused == ["allowed"]
            else ""
        )
        raise LabError(
            f"search {name} does not handle the examples' {', '.join(refused)} constraints;"
            f" {fix}pick a search that does (README, search table) or drop task.constraints_path"
            f"{' and task.allowed' if 'allowed' in refused else ''}."
        )


def nbest_of(search: Search) -> int:
    """Outputs per sentence the search returns (1 unless it says otherwise)."""
    return int(getattr(search, "nbest", 1))


def settings_of(search: Search) -> dict[str, Any] | None:
    """The values the search was built from, where it keeps them (toolkit presets)."""
    settings = getattr(search, "settings", None)
    return dict(settings) if settings else None


def apply(
    procs: Sequence[Processor],
    log_probs: Tensor,
    tokens: Tensor,
    step: int,
    limit: Tensor | None = None,
    sentence: Tensor | None = None,
) -> Tensor:
    """``procs`` applied in order; ``limit`` ``(N,)``, each row's length limit, and ``sentence``
    ``(N,)``, each row's sentence, go to the processors that take them. Consecutive processors
    that only ban fixed tokens (a ``banned(step)`` method: PAD and BOS, EOS before the minimum
    length, ``ban_tokens``) are applied as one ``index_fill``: one copy of the ``(N, V)``
    scores per step instead of one each, with the same result."""
    banned: list[int] = []
    for p in procs:
        ban = getattr(p, "banned", None)
        if ban is not None:
            banned += ban(step)
            continue
        log_probs, banned = _ban(log_probs, banned), []
        if getattr(p, "takes_sentence", False):
            log_probs = p(log_probs, tokens, step, limit, sentence=sentence)  # type: ignore[call-arg]
        elif getattr(p, "takes_limit", False):
            log_probs = p(log_probs, tokens, step, limit)  # type: ignore[call-arg]
        else:
            log_probs = p(log_probs, tokens, step)
    return _ban(log_probs, banned)


def _ban(log_probs: Tensor, ids: list[int]) -> Tensor:
    """``log_probs`` ``(N, V)`` with the columns ``ids`` at -inf (a new tensor), or itself."""
    if not ids:
        return log_probs
    index = torch.tensor(ids, device=log_probs.device)
    return log_probs.index_fill(1, index, NEG_INF)
