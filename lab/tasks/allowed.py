"""Allowed outputs that an example's own text gives (``task.allowed``), for the ``trie``
processor: the answer must be in the text.

* ``source_spans`` (squad): every run of 1..``task.max_span`` whitespace-separated words of the
  paragraph, the first word with or without its leading punctuation and the last with or
  without its trailing punctuation (a SQuAD answer is selected without the full stop that ends
  its sentence: ``Denver Broncos`` from ``... the Denver Broncos.``).
* ``story_words`` (babi): each word of the story statements the model reads, without its
  punctuation (``bathroom`` from ``Mary went to the bathroom.``). bAbI answers that are not one
  story word (``yes``/``no``, counts, ``s,e`` directions, ``apple,football`` lists) cannot be
  produced: what the restriction costs on those tasks is part of what it measures.

The texts stay texts here. On the target side each word form is tokenized on its own and a
span's ids are its words' ids one after the other (``lab.search.types.Spans``): the outputs
allowed are then exactly the strings a detokenized answer would be, where the tokenizer splits
text at whitespace before it segments words, as SentencePiece does by default and the lab's
tokenizer does. Inside the paragraph a word is segmented the same way, so a span's ids are also
its ids within the source.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from lab.errors import LabError
from lab.tasks.constraints import TextConstraints

DEFAULT_MAX_SPAN = 10  # words; 97% of XQuAD's gold answers are at most 10 words long


def is_punct(char: str) -> bool:
    """Whether ``char`` is punctuation (a Unicode ``P*`` category: ``.,;:!?"'()``, dashes,
    curly quotes, ``%``); symbols such as ``$`` and ``+`` are kept."""
    return unicodedata.category(char).startswith("P")


def edge_forms(word: str) -> tuple[str, str, str, str]:
    """``(whole, head, tail, core)``: ``word``, without its leading punctuation, without its
    trailing punctuation, without either (empty for a word of punctuation only)."""
    start, end = 0, len(word)
    while start < end and is_punct(word[start]):
        start += 1
    while end > start and is_punct(word[end - 1]):
        end -= 1
    return word, word[start:], word[:end] if end > start else "", word[start:end]


def allowed_option(task: str, value: Any, kinds: tuple[str, ...]) -> str | None:
    """``task.allowed`` checked: None (no restriction) or one of ``kinds``."""
    if value is None or value in kinds:
        return value
    raise LabError(
        f"{task} allowed={value!r} is not one of {', '.join(kinds)}; set task.allowed to one of"
        " them (for search.processors=[{name: trie}]) or null."
    )


def max_span_option(task: str, value: Any) -> int:
    """``task.max_span`` checked: a whole number of words >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LabError(f"{task} max_span must be a whole number of words >= 1, got {value!r}")
    return value


def source_spans(text: str, max_span: int) -> TextConstraints:
    """The spans of ``text`` of 1..``max_span`` words as an example's allowed outputs."""
    return TextConstraints(span_text=text, max_span=max_span)


def story_words(statements: Iterable[str]) -> TextConstraints:
    """Each distinct word of ``statements`` without its punctuation, in order of appearance."""
    words = (edge_forms(w)[3] for s in statements for w in s.split())
    return TextConstraints(allowed=tuple(dict.fromkeys(w for w in words if w)))
