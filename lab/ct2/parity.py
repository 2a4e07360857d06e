"""``lab ct2 RUN_DIR``: the run's model and beam search, in the lab and in CTranslate2.

The run's checkpoint (a lab Transformer) is converted to CTranslate2 (``lab.ct2.convert``,
cached beside the checkpoint), the run's split is decoded again by the lab's search and by
``Translator.translate_batch`` with the same settings (``lab.ct2.options``), on the same token
ids, batch size and thread count, and the outputs are compared token by token. Written into
``--out`` (default ``RUN_DIR/ct2``):

* ``ct2.json``: the share of identical outputs, the largest score difference among them, both
  corpus BLEUs (sacreBLEU defaults), both decode times, the options CTranslate2 ran with;
* ``ct2_diff.jsonl``: every sentence whose outputs differ, with both outputs and scores, and
  ``ct2_special`` when CTranslate2's holds ``<pad>`` or ``<s>``, which the lab never generates
  (a model that gives them mass, say an undertrained one, differs there by construction).

Two semantic differences remain by design, both measured on the model at hand: CTranslate2
bans (EOS before ``min_decoding_length``) in the logits, so its log-probs are renormalized over
the allowed tokens while the lab reports the model's own; and it may generate ``<pad>``/``<s>``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sacrebleu
import torch
from omegaconf import OmegaConf

from lab.ct2.convert import check_convertible, convert, ctranslate2, to_ids, to_tokens
from lab.ct2.options import translate_options
from lab.data import Pair, encode_examples
from lab.errors import LabError
from lab.evaluate import decode_pairs
from lab.io import atomic_write_text
from lab.models.quantize import quantize
from lab.results import RESULTS, load_results
from lab.search.contracts import settings_of
from lab.vocab import BOS_ID, PAD_ID

CPU = torch.device("cpu")
# ids the lab's searches never generate; CTranslate2 can, when the model gives them mass
BANNED = {PAD_ID, BOS_ID}


def ct2_model(model: torch.nn.Module, checkpoint: Path, quantization: str | None) -> Path:
    """The CTranslate2 conversion of ``model`` (loaded from ``checkpoint``), made once and
    kept beside it; written into a temporary directory and renamed, so a half-written
    conversion is never used."""
    name = f"ct2-{quantization or 'float32'}"
    final = checkpoint.parent / name
    stamp = f"{checkpoint.stat().st_mtime_ns}:{checkpoint.stat().st_size}"
    if (final / "model.bin").is_file() and (final / "source.txt").read_text() == stamp:
        return final
    tmp = checkpoint.parent / f".{name}.tmp"
    convert(model, tmp, quantization)
    (tmp / "source.txt").write_text(stamp)
    if final.exists():
        for f in final.iterdir():
            f.unlink()
        final.rmdir()
    tmp.rename(final)
    return final


def translate(
    translator: Any, pairs: Sequence[Pair], options: dict[str, Any], batch_size: int
) -> tuple[dict[int, list[tuple[tuple[int, ...], float]]], float]:
    """CTranslate2's n-best ``(tokens without EOS, score)`` by pair index, and its wall time."""
    started = time.perf_counter()
    res = translator.translate_batch(
        [to_tokens(p.src) for p in pairs], max_batch_size=batch_size, **options
    )
    seconds = time.perf_counter() - started
    out = {
        p.index: [(to_ids(h), float(s)) for h, s in zip(r.hypotheses, r.scores, strict=True)]
        for p, r in zip(pairs, res, strict=True)
    }
    return out, seconds


def run_inputs(run_dir: Path) -> tuple[Any, Any, list[Pair], Path, Any, list[str]]:
    """The model (eval mode, CPU), the search, the encoded pairs, the checkpoint, the tokenizer
    and the references of a completed run."""
    import lab  # noqa: F401  (registers the plugins)
    from lab.checkpoint import load_model
    from lab.model_cache import locate_model
    from lab.pipeline import build_search, build_task, eval_examples, resolve_dirs

    try:
        results = load_results(run_dir)
    except (OSError, ValueError) as e:
        what = (
            "no such run directory"
            if not Path(run_dir).is_dir()
            else f"cannot read its {RESULTS} ({e})"
        )
        raise LabError(f"{what}: {run_dir}; pass a completed run directory of `lab run`.") from None
    cfg = OmegaConf.create(results["config"])
    checkpoint = Path(results["checkpoint"])
    if not checkpoint.is_file():
        raise LabError(
            f"{run_dir}'s checkpoint {checkpoint} is gone; rerun the run's command to retrain it."
        )
    data_dir, cache_dir = resolve_dirs(cfg)
    task = build_task(cfg, data_dir, cache_dir)
    _, examples = eval_examples(cfg, task)
    source = locate_model(cfg, task, cache_dir, torch.device("cpu"))
    model, _ = load_model(checkpoint)
    check_convertible(model)
    pairs = encode_examples(examples, source.tokenizer)
    refs = [examples[p.index].tgt for p in pairs]
    return model, build_search(cfg), pairs, checkpoint, source.tokenizer, refs


def compare(
    run_dir: Path,
    out: Path,
    threads: int = 1,
    batch_size: int = 32,
    quantization: str | None = None,
) -> dict[str, Any]:
    """Decode the run's split with the lab and with CTranslate2; write and return the figures."""
    ct2 = ctranslate2()
    torch.set_num_threads(threads)
    model, search, pairs, checkpoint, tokenizer, refs = run_inputs(run_dir)
    settings = settings_of(search)
    if not settings:
        raise LabError(
            f"{run_dir} decoded with a search that is not a beam search; "
            "compare a run of search=beam_ct2 (or beam/beam_lp with CTranslate2's rules)."
        )
    options = translate_options(settings)
    path = ct2_model(model, checkpoint, quantization)
    translator = ct2.Translator(
        str(path),
        device="cpu",
        compute_type=quantization or "float32",
        intra_threads=threads,
        inter_threads=1,
    )
    decoder = quantize(model, quantization)  # the lab's int8 beside CTranslate2's
    with torch.inference_mode():
        nbest, _, lab_seconds = decode_pairs(decoder, search, pairs, batch_size, CPU)
    theirs, ct2_seconds = translate(translator, pairs, options, batch_size)
    same, diffs, score_gap, texts = _side_by_side(pairs, nbest, theirs, model.eos_id, tokenizer)
    figures = {
        "run": str(run_dir),
        "n": len(pairs),
        "identical": same / len(pairs),
        "max_score_diff_identical": score_gap,
        "differ_with_ct2_special": sum(d["ct2_special"] for d in diffs),
        "lab_bleu": sacrebleu.corpus_bleu(texts["lab"], [refs]).score,
        "ct2_bleu": sacrebleu.corpus_bleu(texts["ct2"], [refs]).score,
        "lab_seconds": lab_seconds,
        "ct2_seconds": ct2_seconds,
        "lab_vs_ct2_time_ratio": lab_seconds / ct2_seconds,
        "threads": threads,
        "batch_size": batch_size,
        "quantization": quantization or "float32",
        "ct2_version": ct2.__version__,
        "ct2_options": options,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ct2_diff.jsonl", "".join(json.dumps(d) + "\n" for d in diffs))
    atomic_write_text(out / "ct2.json", json.dumps(figures, indent=2) + "\n")
    return figures


def _side_by_side(
    pairs: Sequence[Pair],
    nbest: Any,
    theirs: dict[int, list[tuple[tuple[int, ...], float]]],
    eos_id: int,
    tokenizer: Any,
) -> tuple[int, list[dict[str, Any]], float, dict[str, list[str]]]:
    """The lab's best output of each pair beside CTranslate2's: (how many are identical, the
    sentences that differ, the largest score difference among the identical ones, both sides'
    detokenized outputs for BLEU)."""
    same, diffs, score_gap = 0, [], 0.0
    texts: dict[str, list[str]] = {"lab": [], "ct2": []}
    for p in pairs:
        hyp = nbest[p.index][0]
        mine = tuple(t for t in hyp.tokens if t != eos_id)
        other, other_score = theirs[p.index][0]
        texts["lab"].append(tokenizer.decode(list(mine)))
        texts["ct2"].append(tokenizer.decode(list(other)))
        if mine == other:
            same += 1
            score_gap = max(score_gap, abs(hyp.score - other_score))
        else:
            diffs.append(
                {"index": p.index, "lab": list(mine), "lab_score": hyp.score,
                 "ct2": list(other), "ct2_score": other_score,
                 "ct2_special": bool(BANNED & set(other))}
            )  # fmt: skip
    return same, diffs, score_gap, texts


def cmd_ct2(argv: list[str]) -> None:
    p = argparse.ArgumentParser(
        prog="lab ct2",
        description="Decode a run's split again with the lab and with CTranslate2; compare.",
    )
    p.add_argument("run_dir", help="a completed run of model=transformer with a beam search")
    p.add_argument("--out", default=None, help="output directory (default: RUN_DIR/ct2)")
    p.add_argument("--threads", type=int, default=1, help="threads of both (default 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--quantization",
        default=None,
        choices=["int8"],
        help="int8 on both sides: CTranslate2's int8 and the lab's model.quantize=int8",
    )
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir)
    out = Path(a.out) if a.out else run_dir / "ct2"
    f = compare(run_dir, out, a.threads, a.batch_size, a.quantization)
    print(
        f"identical {f['identical']:.2%} of {f['n']}; BLEU lab {f['lab_bleu']:.2f}, CTranslate2 "
        f"{f['ct2_bleu']:.2f}; lab {f['lab_seconds']:.1f} s, "
        f"CTranslate2 {f['ct2_seconds']:.1f} s (x{f['lab_vs_ct2_time_ratio']:.2f}) -> {out}"
    )
