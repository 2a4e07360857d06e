"""What every search returns: hypotheses, their n-best lists and the cost counters; and
``NEG_INF``, the score of what cannot be chosen."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

NEG_INF = float("-inf")  # the score of a hypothesis or token that cannot be chosen


@dataclass(frozen=True)
class Hypothesis:
    """One output sequence.

    ``tokens`` are the generated ids without BOS, ending with EOS when ``finished``;
    ``logprob`` is their total natural-log probability under the model (EOS included, before
    any logits processor), so it equals ``model.score`` of ``tokens``; ``length`` is
    ``len(tokens)``; ``score`` is what the search ranked by (after the length penalty).
    ``proved_optimal`` is set by searches that can prove their answer (exact, best-first):
    True when no other output of the model ranks higher, False when a budget ran out first;
    None for searches that make no such claim. ``info`` holds what a search adds per
    hypothesis (a sample's sampling log-prob, a stochastic beam's perturbed score, MBR's
    expected utility, beam's ``coverage_penalty``): numbers keyed by name, written beside it in
    ``predictions.jsonl``.
    """

    tokens: tuple[int, ...]
    logprob: float
    score: float
    length: int
    finished: bool
    proved_optimal: bool | None = None
    info: dict[str, float] | None = None


@dataclass
class Cost:
    """What a search call spent: decoder steps, model calls, hypotheses expanded.

    Searches that choose among generated outputs (MBR) also count what the choice cost:
    ``utility_calls`` (pairs scored by a utility), and split their wall time into
    ``generation_seconds`` (running the inner searches) and ``selection_seconds`` (scoring and
    ranking); every other search leaves these at 0.
    """

    steps: int = 0  # decoding iterations (one step() call each)
    model_calls: int = 0  # encode + step calls
    expanded: int = 0  # hypothesis rows scored by step() over all iterations
    sentences: int = 0
    utility_calls: int = 0  # (hypothesis, reference) pairs scored by an MBR utility
    generation_seconds: float = 0.0  # wall time generating candidates / pseudo-references
    selection_seconds: float = 0.0  # wall time scoring and ranking them

    def count_step(self, rows: int) -> None:
        """One decoding iteration: one ``step`` call over ``rows`` hypothesis rows."""
        self.steps, self.model_calls, self.expanded = (
            self.steps + 1,
            self.model_calls + 1,
            self.expanded + rows,
        )

    def add(self, other: Cost) -> None:
        """Add ``other``'s counters and seconds to these (every field is a sum)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int | float]:
        """The fields by name (the evaluator reports them as ``cost_<name>``); the selection
        fields only where a search spent something on selection, so that other runs do not
        report a generation time of 0."""
        selection = self.utility_calls or self.generation_seconds or self.selection_seconds
        core = ("steps", "model_calls", "expanded", "sentences")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in core or selection}


@dataclass
class SearchOutput:
    """``nbest[i]`` is the n-best list of sentence i (best first); ``cost`` its counters."""

    nbest: list[list[Hypothesis]]
    cost: Cost = field(default_factory=Cost)

    def best(self) -> list[Hypothesis]:
        return [hyps[0] for hyps in self.nbest]


Ids = tuple[int, ...]


@dataclass(frozen=True)
class Spans:
    """Allowed outputs given by a text instead of a list: every run of 1..``max_words``
    consecutive words of it. ``words[i]`` holds word i's ids in its four forms, each tokenized
    on its own: ``(whole, head, tail, core)``, ``head`` without its leading punctuation (what
    the first word of a span may be), ``tail`` without its trailing punctuation (the last
    word), ``core`` without either (a one-word span); the middle words of a span are whole.
    So a span may end in ``Broncos`` where the text says ``Broncos.``, as SQuAD answers do."""

    words: tuple[tuple[Ids, Ids, Ids, Ids], ...]
    max_words: int


@dataclass(frozen=True)
class Constraints:
    """What one example's outputs must satisfy, as target token ids (no EOS): ``prefix``, the
    tokens every output starts with (forced and scored, so ``logprob`` stays the model's
    log-prob of the whole output); ``include``, phrases every output must contain; ``allowed``,
    the only outputs allowed (None: any), and ``spans``, more allowed outputs given as the spans
    of a text (``Spans``; with ``allowed`` None, only they are allowed). Searches that accept
    them ask for the optional input ``constraints`` (``lab.search.contracts``)."""

    prefix: Ids = ()
    include: tuple[Ids, ...] = ()
    allowed: tuple[Ids, ...] | None = None
    spans: Spans | None = None

    def kinds(self) -> tuple[str, ...]:
        """The kinds of constraint this example carries: ``prefix``, ``include``, ``allowed``
        (an allowed list, spans or both)."""
        restricted = self.allowed is not None or self.spans is not None
        present = (bool(self.prefix), bool(self.include), restricted)
        return tuple(k for k, p in zip(("prefix", "include", "allowed"), present, strict=True) if p)
