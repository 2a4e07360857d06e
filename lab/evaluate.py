"""Decode a split with a search algorithm, detokenize, and measure quality, length and speed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lab.data import Pair, pad, sentence_batches
from lab.metrics import compute_metrics
from lab.models.base import DecoderModel
from lab.search.base import Cost, Hypothesis
from lab.tasks.base import Example


@dataclass
class Evaluation:
    predictions: list[dict[str, Any]]
    metrics: dict[str, Any]


def _text(tokenizer, hyp: Hypothesis, eos: int) -> str:
    toks = hyp.tokens[:-1] if hyp.finished and hyp.tokens and hyp.tokens[-1] == eos else hyp.tokens
    return tokenizer.decode(list(toks))


def decode_pairs(
    model: DecoderModel, search, pairs: Sequence[Pair], batch_size: int, device: torch.device
) -> tuple[dict[int, list[Hypothesis]], Cost, float]:
    """n-best lists by pair index, the summed cost counters and the wall time of decoding."""
    out: dict[int, list[Hypothesis]] = {}
    cost = Cost()
    started = time.perf_counter()
    for batch in sentence_batches(pairs, batch_size):
        src, lengths = pad([p.src for p in batch])
        res = search(model, src.to(device), lengths.to(device))
        cost.add(res.cost)
        for p, nbest in zip(batch, res.nbest, strict=True):
            out[p.index] = nbest
    return out, cost, time.perf_counter() - started


def evaluate(
    model: DecoderModel,
    search,
    examples: Sequence[Example],
    pairs: Sequence[Pair],
    tokenizer,
    metric_names: Sequence[str],
    batch_size: int,
    device: torch.device,
    save_nbest: bool,
) -> Evaluation:
    model.eval()
    nbests, cost, seconds = decode_pairs(model, search, pairs, batch_size, device)
    preds, hyps, refs = [], [], []
    out_tokens = 0
    for p in pairs:
        ex, nbest = examples[p.index], nbests[p.index]
        best = nbest[0]
        hyp = _text(tokenizer, best, model.eos_id)
        out_tokens += best.length
        row: dict[str, Any] = {
            "id": ex.id,
            "src": ex.src,
            "ref": ex.refs[0] if len(ex.refs) == 1 else list(ex.refs),
            "hyp": hyp,
            "logprob": best.logprob,
            "score": best.score,
            "length": best.length,
            "finished": best.finished,
        }
        if save_nbest:
            row["nbest"] = [
                {
                    "hyp": _text(tokenizer, h, model.eos_id),
                    "logprob": h.logprob,
                    "score": h.score,
                    "length": h.length,
                }
                for h in nbest
            ]
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
    return Evaluation(preds, metrics)
