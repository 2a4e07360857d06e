"""Decode a split with a search algorithm, detokenize, and measure quality, length and speed
(and, when the search returns lists of several outputs, their diversity diagnostics)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from lab.alignment import check_save_attention, saved_attention
from lab.data import Pair, pad, sentence_batches
from lab.errors import LabError
from lab.metrics import compute_metrics
from lab.metrics.diversity import list_diagnostics
from lab.models.base import DecoderModel
from lab.search.contracts import Search, call_search
from lab.search.rng import example_key
from lab.search.types import Constraints, Cost, Hypothesis, Ids, Spans
from lab.tasks.allowed import edge_forms
from lab.tasks.base import Example


@dataclass
class Evaluation:
    predictions: list[dict[str, Any]]
    metrics: dict[str, Any]


def _text(tokenizer, hyp: Hypothesis, eos: int) -> str:
    toks = hyp.tokens[:-1] if hyp.finished and hyp.tokens and hyp.tokens[-1] == eos else hyp.tokens
    return tokenizer.decode(list(toks))


def _proof(hyp: Hypothesis) -> dict[str, Any]:
    """``proved_optimal`` for searches that prove their answer (exact, best_first), and what
    the search added in ``info`` (e.g. a sample's sampling log-prob)."""
    row: dict[str, Any] = dict(hyp.info or {})
    if hyp.proved_optimal is not None:
        row["proved_optimal"] = hyp.proved_optimal
    return row


def decode_pairs(
    model: DecoderModel,
    search: Search,
    pairs: Sequence[Pair],
    batch_size: int,
    device: torch.device,
    keys: Sequence[int] | None = None,
    detokenize: Callable[[Sequence[int]], str] | None = None,
    constraints: Sequence[Constraints | None] | None = None,
) -> tuple[dict[int, list[Hypothesis]], Cost, float]:
    """n-best lists by pair index, the summed cost counters and the wall time of decoding.

    ``call_search`` passes a search the optional inputs it asks for (``lab.search.contracts``):
    ``keys``, one int per sentence (by pair index when ``keys`` is None), ``detokenize`` and
    ``constraints`` (by pair index; refused by a search that does not handle them).
    """
    out: dict[int, list[Hypothesis]] = {}
    cost = Cost()
    started = time.perf_counter()
    # on a terminal only (disable=None): logs and captured stderr stay free of bar redraws;
    # sentences per second ("sent/s"); closed even when interrupted, so that the line that
    # says so is not written onto the bar, then wiped with it
    with tqdm(total=len(pairs), desc="decode", unit="sent", disable=None, leave=False) as bar:
        for batch in sentence_batches(pairs, batch_size):
            src, lengths = pad([p.src for p in batch])
            batch_keys = [p.index if keys is None else keys[p.index] for p in batch]
            cons = None if constraints is None else [constraints[p.index] for p in batch]
            res = call_search(
                search, model, src.to(device), lengths.to(device), batch_keys, detokenize, cons
            )
            cost.add(res.cost)
            for p, nbest in zip(batch, res.nbest, strict=True):
                out[p.index] = nbest
            bar.update(len(batch))
    return out, cost, time.perf_counter() - started


def evaluate(
    model: DecoderModel,
    search: Search,
    examples: Sequence[Example],
    pairs: Sequence[Pair],
    tokenizer,
    metric_names: Sequence[str],
    batch_size: int,
    device: torch.device,
    save_nbest: bool,
    save_attention: bool = False,
) -> Evaluation:
    """Decode ``pairs`` and measure them; ``save_attention``: each prediction row also gets the
    alignment of its output with its source (``lab.alignment``)."""
    model.eval()
    if save_attention:
        check_save_attention(model)
    keys, cons = [example_key(ex.id) for ex in examples], target_constraints(examples, tokenizer)
    nbests, cost, seconds = decode_pairs(
        model, search, pairs, batch_size, device, keys, tokenizer.decode, cons
    )
    alignments: dict[int, dict[str, Any]] = {}
    if save_attention:  # after decoding: the alignment pass is not decoding time
        best = {i: n[0].tokens for i, n in nbests.items()}
        alignments = saved_attention(model, tokenizer, pairs, best, batch_size, device)
    ref_scores = reference_scores(model, examples, pairs, tokenizer, batch_size, device)
    preds, hyps, refs, lists = [], [], [], []
    out_tokens = 0
    for p in pairs:
        ex, nbest = examples[p.index], nbests[p.index]
        best = nbest[0]
        lists.append([_text(tokenizer, h, model.eos_id) for h in nbest])
        hyp = lists[-1][0]
        out_tokens += best.length
        row = _prediction_row(ex, best, hyp, _reference(ref_scores, p.index))
        if save_nbest:
            row["nbest"] = [_nbest_row(tokenizer, h, model.eos_id) for h in nbest]
        if p.index in alignments:
            row["attention"] = alignments[p.index]
        preds.append(row)
        hyps.append(hyp)
        refs.append(list(ex.refs))
    metrics = compute_metrics([*metric_names, "length"], hyps, refs)
    n = max(len(preds), 1)
    metrics.update(
        {
            "mean_logprob": sum(r["logprob"] for r in preds) / n,
            "mean_length_tokens": out_tokens / n,
            "unfinished_rate": sum(not r["finished"] for r in preds) / n,
            "decode_seconds": seconds,
            "sent_per_s": len(preds) / seconds if seconds else float("nan"),
            "tok_per_s": out_tokens / seconds if seconds else float("nan"),
            **{f"cost_{k}": v for k, v in cost.as_dict().items()},
        }
    )
    scored = [r["ref_logprob"] for r in preds if r.get("ref_logprob") is not None]
    if scored:
        metrics["mean_ref_logprob"] = sum(scored) / len(scored)
    metrics.update(list_diagnostics(lists, refs))  # only when some n-best has 2+ entries
    return Evaluation(preds, metrics)


def _prediction_row(
    ex: Example, best: Hypothesis, hyp: str, reference: dict[str, Any]
) -> dict[str, Any]:
    """One line of ``predictions.jsonl``: the example, its best output ``best`` (text ``hyp``)
    and the reference's scores ``reference``."""
    return {
        "id": ex.id,
        "src": ex.src,
        "ref": ex.refs[0] if len(ex.refs) == 1 else list(ex.refs),
        "hyp": hyp,
        "logprob": best.logprob,
        **reference,
        "score": best.score,
        "length": best.length,
        "finished": best.finished,
        **_proof(best),
    }


def target_constraints(examples: Sequence[Example], tokenizer) -> list[Constraints | None] | None:
    """Each example's constraints as target ids (None: no example has any), tokenized as the
    references are (``_target_encoder``); span texts word form by word form (``Spans``, see
    ``lab.tasks.allowed``), each paragraph once. An example that allows no output is refused."""
    if all(ex.constraints is None for ex in examples):
        return None
    encode = _target_encoder(tokenizer)
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


def _nbest_row(tokenizer, hyp: Hypothesis, eos: int) -> dict[str, Any]:
    """One entry of a prediction's ``nbest`` list."""
    return {
        "hyp": _text(tokenizer, hyp, eos),
        "logprob": hyp.logprob,
        "score": hyp.score,
        "length": hyp.length,
        **_proof(hyp),
    }


def _reference(scores: dict[int, tuple[float, int]] | None, index: int) -> dict[str, Any]:
    """``ref_logprob`` and ``ref_length`` of a prediction row (None: no reference scored)."""
    if scores is None:
        return {}
    score, length = scores.get(index, (None, None))
    return {"ref_logprob": score, "ref_length": length}


def _target_encoder(tokenizer) -> Callable[[str], list[int]]:
    """How to turn a reference into target ids, as ``lab.data.encode_examples`` does for
    training targets; a Hugging Face tokenizer is asked for its target side (``text_target``),
    which has its own vocabulary in some models (Marian)."""
    hf = getattr(getattr(tokenizer, "model", None), "tokenizer", None)
    if hf is not None and callable(hf):
        return lambda text: [
            int(i) for i in hf(text_target=text, add_special_tokens=False)["input_ids"]
        ]
    return tokenizer.encode


def reference_scores(
    model: DecoderModel,
    examples: Sequence[Example],
    pairs: Sequence[Pair],
    tokenizer,
    batch_size: int,
    device: torch.device,
) -> dict[int, tuple[float, int]] | None:
    """The forced-decoding log-probability (natural log, EOS included, as a hypothesis'
    ``logprob``) and length in tokens (EOS included) of each example's best reference, by pair
    index; None when the references cannot be tokenized for this model.

    Comparing it with the mode's score tells a model error from a search error (Stahlberg &
    Byrne, 2019). One ``model.score`` call per ``batch_size`` references, sorted by length;
    a reference longer than the model's positions is left out (so is an example left
    without one).
    """
    eos, limit = getattr(tokenizer, "eos_id", model.eos_id), model.max_positions
    rows: list[tuple[Pair, tuple[int, ...]]] = []
    try:
        encode = _target_encoder(tokenizer)
        for p in pairs:
            for ref in examples[p.index].refs:
                tgt = (*encode(ref), eos)
                if limit is None or len(tgt) <= limit:
                    rows.append((p, tgt))
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return None
    rows.sort(key=lambda r: (len(r[0].src), len(r[1])))
    best: dict[int, tuple[float, int]] = {}
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            src, src_len = pad([p.src for p, _ in chunk])  # (B, S), (B,)
            tgt, tgt_len = pad([t for _, t in chunk])  # (B, T), (B,)
            dev = [x.to(device) for x in (src, src_len, tgt, tgt_len)]
            scores = model.score(*dev).tolist()  # (B,)
            for (p, t), s in zip(chunk, scores, strict=True):
                if math.isfinite(s) and (p.index not in best or s > best[p.index][0]):
                    best[p.index] = (s, len(t))
    return best
