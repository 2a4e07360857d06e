"""Examples' texts as target ids: how references are tokenized for scoring, and each
example's constraints as the ids a search enforces (``lab.search.types.Constraints``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lab.errors import LabError
from lab.search.types import Constraints, Ids, Spans
from lab.tasks.allowed import edge_forms
from lab.tasks.base import Example


def target_constraints(examples: Sequence[Example], tokenizer) -> list[Constraints | None] | None:
    """Each example's constraints as target ids (None: no example has any), tokenized as the
    references are (``target_encoder``); span texts word form by word form (``Spans``, see
    ``lab.tasks.allowed``), each paragraph once. An example that allows no output is refused."""
    if all(ex.constraints is None for ex in examples):
        return None
    encode = target_encoder(tokenizer)
    spans: dict[tuple[str, int], Spans | None] = {}  # questions on one paragraph share it
    forms: dict[str, Ids] = {}
    out: list[Constraints | None] = []
    for ex in examples:
        c = ex.constraints
        if c is None:
            out.append(None)
            continue
        allowed = None if c.allowed is None else tuple(tuple(encode(a)) for a in c.allowed)
        phrases = tuple(tuple(encode(p)) for p in c.include)
        span = None
        if c.span_text is not None:
            key = (c.span_text, c.max_span)
            if key not in spans:
                spans[key] = _spans(c.span_text, c.max_span, encode, forms)
            span = spans[key]
        if (c.allowed is not None or c.span_text is not None) and not (allowed or span):
            raise LabError(
                f"example {getattr(ex, 'id', '?')} allows no output (its allowed list or the text"
                " its spans come from is empty); fix its data or set task.allowed=null."
            )
        prefix = tuple(encode(c.prefix)) if c.prefix else ()
        out.append(Constraints(prefix, phrases, allowed, span))
    return out


def _spans(text: str, max_span: int, encode, forms: dict[str, Ids]) -> Spans | None:
    """The word spans of ``text`` as ids: each form of each word encoded on its own (cached in
    ``forms``); None when ``text`` has no word."""
    words = []
    for word in text.split():
        for form in edge_forms(word):
            if form not in forms:
                forms[form] = tuple(encode(form)) if form else ()
        words.append(tuple(forms[f] for f in edge_forms(word)))
    return Spans(tuple(words), max_span) if words else None  # type: ignore[arg-type]


def target_encoder(tokenizer) -> Callable[[str], list[int]]:
    """How to turn a reference into target ids, as ``lab.data.encode_examples`` does for
    training targets; a Hugging Face tokenizer is asked for its target side (``text_target``),
    which has its own vocabulary in some models (Marian)."""
    hf = getattr(getattr(tokenizer, "model", None), "tokenizer", None)
    if hf is not None and callable(hf):
        return lambda text: [
            int(i) for i in hf(text_target=text, add_special_tokens=False)["input_ids"]
        ]
    return tokenizer.encode
