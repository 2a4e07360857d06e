"""Every registered search's exact outputs on random tiny models, written once and checked later.

Decodes one batch of sources with each search configuration below, on tiny random models of
the four architectures, each built from 3 seeds (the seed also seeds the sampling searches;
their sentence keys are fixed). Records every hypothesis's tokens, log-prob, score, length,
``finished``, ``proved_optimal`` and ``info``, and the cost counters (wall-clock seconds
left out). A change to the search code that is meant to keep behaviour keeps this record
identical, float for float:

    python tests/search_equivalence.py --write before.json   # on the code before the change
    python tests/search_equivalence.py --check before.json   # after: exit 1 on any difference

Every registered search must have at least one configuration here (``--check`` refuses a
search it does not cover), so a new search cannot slip by unrecorded.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from lab.registry import MODELS, SEARCHES
from lab.search.mbr import build_utility  # noqa: F401  (registers the utilities)

VOCAB = 11
ARCHS = {
    "transformer": dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=2, d_ff=32, dropout=0.0),
    "lstm": dict(emb_dim=16, hidden=16, num_layers=2, dropout=0.0, attention="additive"),
    "gru": dict(emb_dim=16, hidden=16, num_layers=1, dropout=0.0, attention="general"),
    "decoder_only": dict(d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0),
}
SEEDS = (0, 1, 2)
LENGTHS = (4, 2, 5)
KEYS = [101, 7, 55]
SHORT = {"max_len_a": 0.0, "max_len_b": 5}
# EOS banned until 11 tokens, each word at most once: 8 words, then no legal token (stuck)
STUCK = {"min_len": 11, "max_len_a": 0.0, "max_len_b": 12}
NO_REPEAT = [{"name": "no_repeat_ngram", "n": 1}]

# (search name, settings); ``seed`` is filled in for the searches that take one
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("greedy", {}),
    ("greedy", {"min_len": 3, "processors": [{"name": "no_repeat_ngram", "n": 1}]}),
    ("greedy", {"processors": [{"name": "uid_greedy", "lam": 0.5}]}),
    ("greedy", {**STUCK, "processors": NO_REPEAT}),
    ("beam", {"beam_size": 3, "nbest": 2}),
    ("beam", {"beam_size": 4, "nbest": 3, "stop_rule": "canonical", "min_len": 2}),
    ("beam", {"beam_size": 3, "refill": False, "finalize": "first", "forced_eos": "logprob"}),
    ("beam", {"beam_size": 4, "stop_rule": "patience", "patience": 1.5, **SHORT}),
    ("beam", {"beam_size": 2, "processors": [{"name": "ban_tokens", "ids": [3, 4, 5, 6, 7]}]}),
    ("beam", {"beam_size": 2, **STUCK, "processors": NO_REPEAT}),
    ("beam_lp", {"beam_size": 3, "nbest": 2}),
    ("beam_lp", {"beam_size": 3, "penalty": "word_reward", "alpha": 0.3, "stop_rule": "heuristic"}),
    ("beam_hf", {"beam_size": 3}),
    ("beam_fairseq", {"beam_size": 3}),
    ("beam_onmt", {"beam_size": 3}),
    ("beam_ct2", {"beam_size": 3}),
    ("diverse_beam", {"beam_size": 4, "num_groups": 2, "nbest": 3}),
    ("diverse_beam", {"beam_size": 3, "num_groups": 3, "diversity_strength": 2.0, "min_len": 2}),
    ("sample", {"num_samples": 3, "processors": [{"name": "top_k", "top_k": 4}]}),
    ("sample", {"num_samples": 2, "min_len": 2, "processors": [{"name": "top_p", "top_p": 0.8}]}),
    ("sample", {"num_samples": 2, **STUCK, "processors": NO_REPEAT}),
    ("stochastic_beam", {"beam_size": 3}),
    ("stochastic_beam", {"beam_size": 4, "temperature": 0.8, "min_len": 2, **SHORT}),
    ("exact", {"nbest": 2, **SHORT}),
    ("exact", {"penalty": "word_reward", "alpha": 0.4, "min_len": 2, **SHORT}),
    ("best_first", {"nbest": 2, **SHORT}),
    ("best_first", {"budget": 5, "frontier": 2, **SHORT}),
    ("mbr", {"candidates": {"name": "sample", "num_samples": 4}, "nbest": 2}),
    (
        "mbr",
        {
            "candidates": {"name": "beam", "beam_size": 3, "nbest": 3},
            "pseudo_refs": {"name": "sample", "num_samples": 3},
            "utility": "chrf",
        },
    ),
    (
        "rerank",
        {
            "candidates": {"name": "beam", "beam_size": 3, "nbest": 3},
            "scorers": ["direct", "length"],
            "weights": {"direct": 1.0, "length": 0.5},
            "nbest": 2,
        },
    ),
    (
        "rerank",
        {
            "candidates": {"name": "sample", "num_samples": 4},
            "scorers": ["direct", "length"],
            "weights": {"direct": 0.5, "length": -0.2},
            "normalize": True,
        },
    ),
]
SEEDED = {"sample", "stochastic_beam"}


def tiny_model(arch: str, seed: int) -> Any:
    """A random tiny model with sharpened weights (fewer near-ties between outputs)."""
    torch.manual_seed(seed)
    model = MODELS.build(arch, VOCAB, VOCAB, **ARCHS[arch]).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(2.0)
    return model


def sources(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + seed)
    seqs = [torch.randint(3, VOCAB, (n,), generator=g) for n in LENGTHS]
    return pad_sequence(seqs, batch_first=True), torch.tensor(LENGTHS)  # (B, S), (B,)


def seeded(settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """``settings`` with the sampling seed set, in inner searches too."""
    out = dict(settings)
    for key in ("candidates", "pseudo_refs"):
        if isinstance(out.get(key), dict):
            out[key] = seeded(out[key], seed)
    if out.get("name", None) in SEEDED:
        out["seed"] = seed
    return out


def build(name: str, settings: dict[str, Any], seed: int) -> Any:
    settings = seeded(settings, seed)
    if name in SEEDED:
        settings["seed"] = seed
    return SEARCHES.build(name, **settings)


def decode(name: str, search: Any, model: Any, src: torch.Tensor, lens: torch.Tensor) -> Any:
    """One call with the extra inputs the search declares (keys, detokenize)."""
    wants = set(getattr(search, "inputs", ()))
    extra: dict[str, Any] = {}
    if "keys" in wants:
        extra["keys"] = list(KEYS)
    if "detokenize" in wants:
        extra["detokenize"] = lambda ids: " ".join(f"w{i}" for i in ids)
    return search(model, src, lens, **extra)


def record(out: Any) -> dict[str, Any]:
    cost = {k: v for k, v in out.cost.as_dict().items() if not k.endswith("_seconds")}
    hyps = [
        [
            [list(h.tokens), h.logprob, h.score, h.length, h.finished, h.proved_optimal, h.info]
            for h in nbest
        ]
        for nbest in out.nbest
    ]
    return {"nbest": hyps, "cost": cost}


def runs() -> Iterator[tuple[str, dict[str, Any]]]:
    for arch in ARCHS:
        for seed in SEEDS:
            model = tiny_model(arch, seed)
            src, lens = sources(seed)
            for i, (name, settings) in enumerate(CONFIGS):
                search = build(name, settings, seed)
                yield f"{arch}/{seed}/{name}#{i}", record(decode(name, search, model, src, lens))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="write the record to this JSON file")
    mode.add_argument("--check", type=Path, help="compare with the record in this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    missing = sorted(set(SEARCHES.names()) - {name for name, _ in CONFIGS})
    if missing:
        print(f"no configuration for search(es) {', '.join(missing)}; add them to CONFIGS")
        return 1
    got = dict(runs())
    if args.write:
        args.write.write_text(json.dumps(got, indent=0, sort_keys=True))
        print(f"{len(got)} decodes written to {args.write}")
        return 0
    want = json.loads(args.check.read_text())
    got = json.loads(json.dumps(got))  # the same float and tuple round trip as the record
    bad = [key for key in sorted(set(want) | set(got)) if want.get(key) != got.get(key)]
    for key in bad[:20]:
        print(f"differs: {key}\n  before: {want.get(key)}\n  after:  {got.get(key)}")
    print(f"{len(got) - len(bad)}/{len(set(want) | set(got))} decodes identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
