"""Translation metrics through sacrebleu: BLEU, chrF and TER (corpus level).

sacrebleu takes references as *streams* (stream j holds the j-th reference of every example).
``refs[i]`` may hold a different number of references per example: shorter lists are padded
with ``None``, which sacrebleu skips, so every example is scored against all of its own
references (the signature then reads ``nrefs:var``).

sacreBLEU's BLEU warns "It looks like you forgot to detokenize your test data" when 100 or
more hypotheses end in `` .``: the usual cause is tokenized system output scored against
detokenized references, which lowers BLEU. The lab never tokenizes text itself: a hypothesis
is the subword tokenizer's lossless decoding into the task's own target text, so it ends in
`` .`` when the references do. Some tasks write their text that way: toy_mt's invented target
language sets its final period apart (``... qyshkoan .``), as do corpora distributed
tokenized. Then there is nothing to detokenize (13a tokenization splits the period off either
way, so the score is the same), and BLEU is told so with its documented ``force=True``,
which changes neither the score nor the signature. Against references that attach their
period, the check stays on: hypotheses ending in `` .`` there are worth the warning.
"""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric

from lab.metrics.base import MetricValues, check_inputs
from lab.registry import METRICS


def ref_streams(refs: list[list[str]]) -> list[list[str | None]]:
    """Transpose per-example reference lists into sacrebleu streams, padding with ``None``."""
    width = max(len(r) for r in refs)
    return [[r[j] if j < len(r) else None for r in refs] for j in range(width)]


def periods_set_apart(refs: list[list[str]]) -> bool:
    """Whether the references end a sentence with a period set apart (``word .``) at least as
    often as with one attached (``word.``): their text's own convention, not a tokenizer's."""
    ends = [r.rstrip() for rs in refs for r in rs if r.rstrip().endswith(".")]
    apart = sum(r.endswith(" .") for r in ends)
    return apart > 0 and 2 * apart >= len(ends)


def corpus_score(name: str, metric: Metric, hyps: list[str], refs: list[list[str]]) -> MetricValues:
    """``{name: score, name_signature: signature}`` of sacrebleu's ``metric`` over the corpus."""
    check_inputs(hyps, refs, name)
    score = metric.corpus_score(hyps, ref_streams(refs))
    return {name: float(score.score), f"{name}_signature": str(metric.get_signature())}


@METRICS.register("bleu")
class Bleu:
    """sacrebleu corpus BLEU (detokenized, cased) and tokenized lowercased BLEU.

    Keys: ``bleu`` and ``bleu_signature`` (sacrebleu defaults: 13a tokenization, cased, exp
    smoothing); ``bleu_bp``, ``bleu_sys_len``, ``bleu_ref_len`` (brevity penalty and corpus
    lengths in 13a tokens); ``bleu_tok_lc`` and ``bleu_tok_lc_signature``: lowercased BLEU over
    13a tokens, which approximates the tokenized lowercased BLEU (spaCy/Moses tokens,
    multi-bleu.perl) that published Multi30k tables report. Hypotheses in the references'
    own convention of a period set apart raise no tokenization warning (module docstring).
    """

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        check_inputs(hyps, refs, "bleu")
        streams = ref_streams(refs)
        force = periods_set_apart(refs)  # see the module docstring
        cased = BLEU(force=force)
        score = cased.corpus_score(hyps, streams)
        lower = BLEU(lowercase=True, tokenize="13a", force=force)
        score_lc = lower.corpus_score(hyps, streams)
        return {
            "bleu": float(score.score),
            "bleu_signature": str(cased.get_signature()),
            "bleu_bp": float(score.bp),
            "bleu_sys_len": float(score.sys_len),
            "bleu_ref_len": float(score.ref_len),
            "bleu_tok_lc": float(score_lc.score),
            "bleu_tok_lc_signature": str(lower.get_signature()),
        }


@METRICS.register("chrf")
class Chrf:
    """sacrebleu corpus chrF (character 6-grams, beta 2).

    Keys: ``chrf``, ``chrf_signature``.
    """

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        return corpus_score("chrf", CHRF(), hyps, refs)


@METRICS.register("ter")
class Ter:
    """sacrebleu corpus TER (translation edit rate; lower is better).

    Keys: ``ter``, ``ter_signature``.
    """

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        return corpus_score("ter", TER(), hyps, refs)
