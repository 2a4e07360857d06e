"""Decode a split with a search algorithm, detokenize, and measure quality, length and speed
(and, when the search returns lists of several outputs, their diversity diagnostics)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from lab.alignment import check_save_attention, saved_attention
from lab.data import Pair, pad, sentence_batches
from lab.metrics import compute_metrics
from lab.metrics.constraint_check import constraint_rates, prefix_rests
from lab.metrics.diversity import list_diagnostics
from lab.metrics.speculation import speculation_rates
from lab.models.base import DecoderModel
from lab.references import reference_rows
from lab.search.contracts import Search, call_search
from lab.search.rng import example_key
from lab.search.types import Constraints, Cost, Hypothesis, Ids
from lab.target_ids import target_constraints
from lab.tasks.base import Example

REST_METRICS = ("bleu", "chrf", "ter")  # scored again on the text after a forced prefix


@dataclass
class Evaluation:
    predictions: list[dict[str, Any]]
    metrics: dict[str, Any]


def _content(hyp: Hypothesis, eos: int) -> Ids:
    """The output's ids without its final EOS."""
    return hyp.tokens[:-1] if hyp.finished and hyp.tokens and hyp.tokens[-1] == eos else hyp.tokens


def _text(tokenizer, hyp: Hypothesis, eos: int) -> str:
    return tokenizer.decode(list(_content(hyp, eos)))


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
    references = reference_rows(model, examples, pairs, tokenizer, batch_size, device)
    preds, hyps, refs, lists = [], [], [], []
    out_tokens = 0
    for p in pairs:
        ex, nbest = examples[p.index], nbests[p.index]
        best = nbest[0]
        lists.append([_text(tokenizer, h, model.eos_id) for h in nbest])
        hyp = lists[-1][0]
        out_tokens += best.length
        row = _prediction_row(ex, best, hyp, references.get(p.index, {}))
        if save_nbest:
            row["nbest"] = [_nbest_row(tokenizer, h, model.eos_id) for h in nbest]
        if p.index in alignments:
            row["attention"] = alignments[p.index]
        preds.append(row)
        hyps.append(hyp)
        refs.append(list(ex.refs))
    metrics = _metrics(metric_names, preds, hyps, refs, out_tokens, seconds, cost)
    metrics.update(list_diagnostics(lists, refs))  # only when some n-best has 2+ entries
    metrics.update(speculation_rates(preds))  # only for speculative decoding's outputs
    if cons is not None:  # checked on the output ids, whatever the search says
        outs = [_content(nbests[p.index][0], model.eos_id) for p in pairs]
        metrics.update(constraint_rates([cons[p.index] for p in pairs], outs))
        metrics.update(_rest_metrics(metric_names, [examples[p.index] for p in pairs], hyps, refs))
    return Evaluation(preds, metrics)


def _metrics(
    names: Sequence[str],
    preds: list[dict[str, Any]],
    hyps: list[str],
    refs: list[list[str]],
    out_tokens: int,
    seconds: float,
    cost: Cost,
) -> dict[str, Any]:
    """The corpus metrics ``names``, length, log-prob, speed and cost of a decoded split."""
    metrics = compute_metrics([*names, "length"], hyps, refs)
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
    return metrics


def _rest_metrics(
    names: Sequence[str], examples: Sequence[Example], hyps: list[str], refs: list[list[str]]
) -> dict[str, Any]:
    """The corpus metrics of what follows each forced prefix (``bleu_rest``, ...), over the
    examples that have one; empty when none has."""
    prefixes = [ex.constraints.prefix if ex.constraints else "" for ex in examples]
    rest_hyps, rest_refs = prefix_rests(prefixes, hyps, refs)
    if not rest_hyps:
        return {}
    scores = compute_metrics([n for n in names if n in REST_METRICS], rest_hyps, rest_refs)
    return {f"{k}_rest": v for k, v in scores.items() if k in REST_METRICS}


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


def _nbest_row(tokenizer, hyp: Hypothesis, eos: int) -> dict[str, Any]:
    """One entry of a prediction's ``nbest`` list."""
    return {
        "hyp": _text(tokenizer, hyp, eos),
        "logprob": hyp.logprob,
        "score": hyp.score,
        "length": hyp.length,
        **_proof(hyp),
    }
