"""Rerank's scorers: one number per (source, output) pair, registered in ``lab.registry.SCORERS``.

A scorer is built from its entry in ``search.scorers`` (a name, or a dict with a ``name`` and
its options) and called once per batch on every candidate: ``scorer(model, batch) -> (H,)``
numbers, one per candidate. ``per`` says what ``search.normalize=true`` divides its value by, as
Yee et al. (2019) do: the output's length in tokens (``"output"``), the source's
(``"source"``), or nothing (None).

* ``direct``: log p(y | x) under the decoding model, the candidate's ``logprob`` (exact: every
  search returns the model's log-prob of its outputs).
* ``channel``: log p(x | y) under a model trained in the other direction on the same data
  (``{name: channel, model: RUN_DIR_OR_CHECKPOINT}``), teacher forced: the output (EOS
  appended where it has none) is its source and the source, as the batch holds it, its target.
* ``lm``: log p(y) under a target-side language model (the lab's ``decoder_only`` trained on
  target text: it reads an empty source), EOS included where the output has it.
* ``length``: the output's length in tokens (EOS included), a word reward when weighted > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lab.checkpoint import load_member
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.models.fusion import empty_source, tokenizer_of
from lab.registry import SCORERS
from lab.search.types import Hypothesis


@dataclass(frozen=True)
class Batch:
    """A batch's candidates, flat: ``hyps[j]`` is an output for source row ``rows[j]``."""

    hyps: list[Hypothesis]
    rows: Tensor  # (H,) source row of each candidate
    src: Tensor  # (B, S) the sources, right-padded
    src_lengths: Tensor  # (B,)

    def outputs(self, pad_id: int, eos_id: int | None = None) -> tuple[Tensor, Tensor]:
        """The candidates' tokens right-padded ``(H, T)`` and their lengths ``(H,)``; with
        ``eos_id``, EOS appended to an output that does not end with it."""
        seqs = [
            h.tokens + ((eos_id,) if eos_id is not None and h.tokens[-1:] != (eos_id,) else ())
            for h in self.hyps
        ]
        device = self.src.device
        padded = [torch.tensor(s or (pad_id,), dtype=torch.long, device=device) for s in seqs]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long, device=device)
        return pad_sequence(padded, batch_first=True, padding_value=pad_id), lengths


@dataclass(frozen=True)
class Scored:
    """A candidate, its scorers' values and the terms it is ranked by (values, normalized)."""

    hyp: Hypothesis
    features: dict[str, float]
    terms: dict[str, float]


def as_info(features: dict[str, float]) -> dict[str, float]:
    """Features as a hypothesis's ``info`` reports them: ``rerank_<scorer>``."""
    return {f"rerank_{n}": v for n, v in features.items()}


class Scorer(Protocol):
    """``scorer(model, batch) -> (H,)``: one number per candidate of ``batch``."""

    per: ClassVar[str | None]  # what normalize=true divides by: "output", "source" or None

    def __call__(self, model: DecoderModel, batch: Batch) -> list[float]: ...


@SCORERS.register("direct")
class Direct:
    """log p(y | x) under the decoding model: the candidate's logprob."""

    per: ClassVar[str | None] = "output"

    def __call__(self, model: DecoderModel, batch: Batch) -> list[float]:
        return [h.logprob for h in batch.hyps]


@SCORERS.register("length")
class Length:
    """The output's length in tokens (EOS included): a word reward."""

    per: ClassVar[str | None] = None

    def __call__(self, model: DecoderModel, batch: Batch) -> list[float]:
        return [float(h.length) for h in batch.hyps]


def loaded(name: str, model: str | DecoderModel, what: str) -> tuple[DecoderModel, str]:
    """The scorer's model and its checkpoint fingerprint ('' for a model given in memory)."""
    if isinstance(model, DecoderModel):
        return model, ""
    if not model:
        raise LabError(
            f"scorer {name} needs its model, {what}: write it as "
            f"{{name: {name}, model: RUN_DIR_OR_CHECKPOINT}} in search.scorers."
        )
    return load_member(model)


@SCORERS.register("channel")
class Channel:
    """log p(x | y) under a reverse-direction model (noisy channel, Yee et al., 2019)."""

    per: ClassVar[str | None] = "source"

    def __init__(self, model: str | DecoderModel = "") -> None:
        what = "a model trained on the same data in the other direction"
        self.model, self.fingerprint = loaded("channel", model, what)

    def __call__(self, model: DecoderModel, batch: Batch) -> list[float]:
        reverse = self.model.to(batch.src.device)
        if (reverse.src_vocab_size, reverse.tgt_vocab_size) != (
            model.tgt_vocab_size,
            model.src_vocab_size,
        ):
            raise LabError(
                f"the channel model has vocab {reverse.src_vocab_size}/{reverse.tgt_vocab_size}"
                f", the decoding model {model.src_vocab_size}/{model.tgt_vocab_size}; name a "
                "model trained in the other direction with the same tokenizer."
            )
        out, out_len = batch.outputs(reverse.pad_id, reverse.eos_id)  # (H, T), (H,)
        src, src_len = batch.src[batch.rows], batch.src_lengths[batch.rows]  # (H, S), (H,)
        return reverse.score(out, out_len, src, src_len).tolist()  # (H,)


@SCORERS.register("lm")
class LanguageModel:
    """log p(y) under a target-side language model (decoder_only on target text)."""

    per: ClassVar[str | None] = "source"

    def __init__(self, model: str | DecoderModel = "") -> None:
        what = "a decoder_only model trained on target-side text"
        self.model, self.fingerprint = loaded("lm", model, what)

    def __call__(self, model: DecoderModel, batch: Batch) -> list[float]:
        lm = self.model.to(batch.src.device)
        if lm.tgt_vocab_size != model.tgt_vocab_size:
            raise LabError(
                f"the lm predicts {lm.tgt_vocab_size} tokens, the decoding model "
                f"{model.tgt_vocab_size}; name a language model of the same tokenizer."
            )
        out, _ = batch.outputs(lm.pad_id)  # (H, T)
        return lm.score(*empty_source(out.size(0), lm.eos_id, out.device), out).tolist()  # (H,)


def build_scorers(entries: Any) -> dict[str, Scorer]:
    """The scorers that ``search.scorers`` lists (names or ``{name: ..., <options>}``), by
    name; an unknown or repeated name fails with one line naming the valid ones."""
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise LabError(
            f"search.scorers must be a non-empty list of scorers, e.g. [direct, length]; valid "
            f"scorers: {', '.join(SCORERS.names())}."
        )
    built: dict[str, Scorer] = {}
    for entry in entries:
        opts = dict(entry) if isinstance(entry, dict) else {"name": entry}
        name = opts.pop("name", None)
        if name in built:
            raise LabError(f"search.scorers lists {name} twice; list each scorer once.")
        try:
            built[str(name)] = SCORERS.build(str(name), **opts)
        except LabError as e:
            raise LabError(f"search.scorers: {e}") from None
    check_tokenizers(built)
    return built


def check_tokenizers(scorers: dict[str, Scorer]) -> None:
    """Models loaded from checkpoints of different tokenizers are refused, naming both."""
    prints = [(n, getattr(s, "fingerprint", "")) for n, s in scorers.items()]
    known = [(n, fp) for n, fp in prints if fp and tokenizer_of(fp) != "unrecorded"]
    for b, fb in known[1:]:
        a, fa = known[0]
        if tokenizer_of(fb) != tokenizer_of(fa):
            raise LabError(
                f"the scorers' models differ: {a} has {fa}, {b} has {fb}; rerank with models "
                "trained with one tokenizer."
            )
