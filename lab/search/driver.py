"""The step-by-step decoding loop, written once for every search that grows K rows per sentence.

``decode`` owns what greedy, beam, diverse beam, sampling and stochastic beam share: encoding
the batch once and ``init_state`` with K rows per sentence, the length limits, one ``step`` per
iteration and its cost, the logits processors, the generated tokens and the decoder state
(reordered when a search moves rows), collecting the n-best lists of the sentences that end and
dropping those sentences from the batch (``drop_sentences``: a finished sentence costs nothing).

A search supplies only a ``Stepper``, made per call: its selection rule (``advance``: the next
token of every row, which row each came from, which sentences are done), what it records for an
ended sentence (``finish``) and how its own per-sentence tensors shrink (``keep``). OpenNMT-py
writes its loop the same way (``Translator._translate_batch_with_strategy`` over a
``DecodeStrategy``). Searches over a frontier of prefixes (exact, best-first) are not step by
step and keep their own loop. ``prefix`` (``lab.search.prefix``) forces each sentence's target
prefix for every stepper alike.

A search whose K rows per sentence are independent of each other (sampling) asks for
``apart``: after one encode and ``init_state`` with K rows, each row becomes its own entry of
the batch (``rows_apart``: one row per entry, the sentence's shared state copied to each), so
a row that ends leaves the batch at once instead of riding along until its sentence's last
row ends. The stepper then sees ``n`` entries of one row each; the driver regroups the
results by sentence, K per sentence in row order. The price: each row attends to its own copy
of its sentence's shared state (a Transformer's cross-attention keys and values), not to one
copy per sentence, which costs memory and some time per row while every row is alive (what
``lab bench``'s ``sample_overhead_n16`` measures: its outputs all run to the limit); ended
rows cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor

from lab.models.base import DecoderModel, State, map_tensors
from lab.search.contracts import Processor, apply
from lab.search.limits import Limits
from lab.search.prefix import ForcedPrefix
from lab.search.types import Cost, Hypothesis, SearchOutput


@dataclass(frozen=True)
class Step:
    """What a stepper sees at step ``t`` (1-based: the position of the token being chosen),
    for the ``n`` sentences still in the batch, K rows each."""

    t: int
    log_probs: Tensor  # (n*K, V) the model's own step log-probs
    processed: Tensor  # (n*K, V) after the search's logits processors
    tokens: Tensor  # (n*K, t-1) generated so far (no BOS)
    limit: Tensor  # (n,) each sentence's output limit
    attention: Tensor | None = None  # (n*K, S) the step's cross-attention, when asked for


@dataclass(frozen=True)
class Move:
    """A stepper's answer: ``token`` ``(n*K,)`` appended to each row, after moving the rows to
    ``rows`` ``(n*K,)`` (each new row's parent; None: every row keeps its place); ``feed``
    ``(n*K,)`` what the next ``step`` reads (None: ``token``); ``done`` ``(n,)`` the sentences
    whose n-best is final."""

    token: Tensor
    done: Tensor
    rows: Tensor | None = None
    feed: Tensor | None = None


class Stepper(Protocol):
    """One call's selection rule (see the module docstring)."""

    processors: Sequence[Processor]

    def advance(self, step: Step) -> Move:
        """Choose each row's next token (and parent row); say which sentences are done."""
        ...

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        """The n-best lists of ``sentences`` ``(d,)`` (batch positions), from ``tokens``
        ``(n*K, t)`` (this step's token appended) and what the stepper recorded."""
        ...

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        """Keep only ``sentences`` ``(n',)`` (their ``rows`` ``(n'*K,)``) of what it records."""
        ...


def sentence_rows(sentences: Tensor, k: int) -> Tensor:
    """The hypothesis rows ``(n'*K,)`` of ``sentences`` ``(n',)`` in a ``(n*K)``-row batch."""
    return (sentences[:, None] * k + torch.arange(k, device=sentences.device)).reshape(-1)


def drop_sentences(
    done: Tensor, k: int, state: State, per_sentence: list[Tensor], per_row: list[Tensor]
) -> tuple[State, list[Tensor], list[Tensor]]:
    """Batch pruning: remove the sentences where ``done`` ``(n,)`` is True from the decoder
    state, from the tensors with one entry per sentence (dim 0 = n) and from those with one row
    per hypothesis (dim 0 = n*K). Finished sentences then cost nothing.
    """
    keep = (~done).nonzero().squeeze(1)  # (n',)
    rows = sentence_rows(keep, k)  # (n'*K,)
    if keep.numel():
        state = state.select_sentences(keep)
    return state, [t[keep] for t in per_sentence], [t[rows] for t in per_row]


def rows_apart(state: State, n: int) -> State:
    """``state`` of ``n`` sentences with each of its ``n*K`` rows as its own sentence of one
    row: the shared (per-sentence) leaves copied to every row of their sentence. Before the
    first step only (a model may add per-beam shared leaves as it steps)."""
    index = torch.arange(n).repeat_interleave(state.beam_size)  # (n*K,)
    shared = map_tensors(lambda v: v.index_select(0, index.to(v.device)), state.shared)
    return replace(state, shared=shared, beam_size=1)


def decode(
    model: DecoderModel,
    src: Tensor,
    src_lengths: Tensor,
    limits: Limits,
    width: int,
    start: Callable[[Tensor], Stepper],
    prefix: ForcedPrefix | None = None,
    attention: bool = False,
    apart: bool = False,
) -> SearchOutput:
    """Decode ``src`` ``(B, S)`` with ``width`` rows per sentence; ``start(limit)`` makes the
    call's stepper from the sentences' output limits ``(B,)``; ``prefix``: forced prefixes
    (each sentence's limit then leaves room for its prefix and EOS); ``attention``: ask the
    model for its cross-attention, which every ``Step`` then carries; ``apart``: decode the
    rows as independent entries (module docstring)."""
    n = src.size(0)
    cost = Cost(sentences=n, model_calls=1)  # the encode call
    limit = limits.per_sentence(src_lengths, model)  # (B,)
    if prefix is not None:
        limit = prefix.limits(limit)
    state = model.init_state(model.encode(src, src_lengths), width)
    state = state.asking_attention() if attention else state
    stepper = start(limit)
    if not apart:
        owner = torch.arange(n, device=limit.device)  # (B,)
        return SearchOutput(_loop(model, state, stepper, limit, width, prefix, cost, owner), cost)
    state, limit = rows_apart(state, n), limit.repeat_interleave(width)  # (B*K,)
    prefix = None if prefix is None else prefix.per_row(width)
    owner = torch.arange(n, device=limit.device).repeat_interleave(width)  # (B*K,) each row's
    rows = _loop(model, state, stepper, limit, 1, prefix, cost, owner)
    return SearchOutput([sum(rows[i : i + width], []) for i in range(0, n * width, width)], cost)


def _loop(
    model: DecoderModel,
    state: State,
    stepper: Stepper,
    limit: Tensor,
    width: int,
    prefix: ForcedPrefix | None,
    cost: Cost,
    owner: Tensor,
) -> list[list[Hypothesis]]:
    """The step loop of ``decode`` over ``limit.numel()`` sentences of ``width`` rows;
    ``owner`` ``(n,)``: the call's sentence each one decodes (itself, or with rows decoded
    apart its row's sentence), for the processors that read a sentence's constraints."""
    n, dev = limit.numel(), limit.device
    results: list[list[Hypothesis]] = [[] for _ in range(n)]
    alive = torch.arange(n, device=dev)  # (n,) original sentence ids
    prev = torch.full((n * width,), model.bos_id, device=dev)  # (n*K,)
    tokens = prev.new_zeros(n * width, 0)  # (n*K, t) generated so far
    t = 0
    while alive.numel():
        t += 1
        log_probs, state = model.step(prev, state)  # (n*K, V)
        cost.count_step(log_probs.size(0))
        lim = limit[alive]  # (n,)
        rows_of = owner[alive].repeat_interleave(width)  # (n*K,) each row's sentence
        processed = apply(
            stepper.processors, log_probs, tokens, t, lim.repeat_interleave(width), rows_of
        )
        if prefix is not None:
            processed = prefix(processed, log_probs, t, alive, width)  # (n*K, V)
        move = stepper.advance(Step(t, log_probs, processed, tokens, lim, state.attention))
        if move.rows is not None:
            state = model.reorder(state, move.rows)
            tokens = tokens.index_select(0, move.rows)
        tokens = torch.cat([tokens, move.token[:, None]], dim=1)  # (n*K, t)
        prev = move.token if move.feed is None else move.feed  # (n*K,)
        if not move.done.any():
            continue
        ended = move.done.nonzero().squeeze(1)  # (d,)
        for i, hyps in zip(alive[ended].tolist(), stepper.finish(ended, tokens), strict=True):
            results[i] = hyps
        keep = (~move.done).nonzero().squeeze(1)  # (n',)
        stepper.keep(keep, sentence_rows(keep, width))
        state, (alive,), (prev, tokens) = drop_sentences(
            move.done, width, state, [alive], [prev, tokens]
        )
    return results
