"""Toolkit presets: the beam search of Hugging Face transformers, fairseq, OpenNMT-py or
CTranslate2 as a named bundle of the lab's own knobs (``search=beam_hf|beam_fairseq|beam_onmt|
beam_ct2``). ``PRESETS`` is the one place their values live: a preset config lists every key as
``null`` (the preset's value); a key the user sets overrides the preset's, and the built search
keeps the resolved values as ``search.settings``. Hugging Face's own key names (``num_beams``,
``max_new_tokens``...) are accepted by ``beam_hf`` only, translated to the lab's.

What each pins, in the lab's units (lengths count generated tokens, EOS included):

=============  ==========  ============  ===========  ===========
knob           hf          fairseq       onmt         ct2
=============  ==========  ============  ===========  ===========
beam_size      1           5             5            2
max_len_a, b   0, 20       0, 201        0, 250       0, 256
min_len        0           2             1            2
stop_rule      heuristic   first_k       top_beam     patience
penalty        average 1   average 1     average 1    average 1
length_offset  0           0             1 (BOS)      0
refill         yes         yes           no           yes
finalize       best        first         best         best
forced_eos     model       logprob       off          off
=============  ==========  ============  ===========  ===========

Sources (``nbest`` is 1 everywhere: ``num_return_sequences``, ``--nbest``, ``-n_best``,
``num_hypotheses``):

* hf, transformers 5.24 ``generation/configuration_utils.py`` (``GenerationConfig``) and
  ``generation/utils.py``: ``num_beams=1``; ``max_length=20`` left unset means 20 new tokens
  (``_prepare_generated_length``: "by default let's always generate 20 new tokens"), while a
  ``max_length`` set by the user or a checkpoint (Marian's: 512) also counts the decoder start
  token or the prompt, padding included (give ``max_new_tokens``: it counts what the lab
  counts); ``early_stopping=False`` (``_check_early_stop_heuristic``);
  ``length_penalty=1.0`` divides by ``(cur_len + 1 - decoder_prompt_len) ** lp`` in
  ``_update_finished_beams``; ``ForcedEOSTokenLogitsProcessor`` when the model's config sets
  ``forced_eos_token_id`` (MarianConfig: 0) scores EOS 0 at ``cur_len == max_length - 1``.
* fairseq ``dataclass/configs.py`` (``GenerationConfig``) and ``sequence_generator.py``:
  ``--beam 5``; ``--max-len-b 200`` and ``--min-len 1`` exclude EOS (``range(max_len + 1)``,
  "one extra step for EOS marker"; ``step < self.min_len`` bans EOS); ``step >= max_len`` leaves
  only EOS with its log-prob; ``finalize_hypos`` keeps the first ``beam_size`` finished, scored
  ``/ (step + 1) ** len_penalty`` (``--lenpen 1``), and ``is_finished`` stops at ``beam_size``.
* onmt, OpenNMT-py 3.x ``onmt/opts.py`` (``_add_decoding_opts``), ``translate/beam_search.py``
  (``BeamSearchBase``) and ``translate/decode_strategy.py``: ``-beam_size 5``, ``-max_length
  250`` (``ensure_max_length``: EOS included), ``-max_length_ratio 0`` (off), ``-min_length 0``
  (EOS excluded); ``-length_penalty avg -alpha 1`` divides by ``(step + 1) ** alpha`` where
  ``step = len(alive_seq)`` counts BOS; ``_pick`` takes the top ``beam_size`` of ``K*V`` (a
  finished beam leaves its slot empty); ``beams_non_finished`` stops when the step's top beam
  ended and ``n_best`` are finished.
* ct2, CTranslate2 4.x ``python/cpp/translator.cc`` (``translate_batch`` defaults) and
  ``src/decoding.cc`` (``BeamSearch::search``): ``beam_size=2``, ``max_decoding_length=256``
  (EOS included), ``min_decoding_length=1`` (``step < min_length`` bans EOS: EOS excluded),
  ``length_penalty=1`` over the hypothesis with its EOS, ``patience=1``: stop at
  ``round(beam_size * patience)`` finished; with ``length_penalty=0`` it exits when the top
  beam has ended (``allow_early_exit``), which the preset follows (``top_beam_ever``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lab.errors import LabError
from lab.registry import SEARCHES, check_type, unknown_name_message
from lab.search.beam.beam import build_beam
from lab.search.beam.beam_search import BeamSearch
from lab.search.beam.rules import BeamRules

# the lab's beam knobs, every one of which each preset pins (``build_beam``'s arguments)
LAB_KEYS = (
    "beam_size", "nbest", "max_len_a", "max_len_b", "min_len", "stop_rule", "penalty", "alpha",
    "length_offset", "refill", "finalize", "forced_eos", "patience", "processors",
)  # fmt: skip
# what every preset pins alike (each overrides some below)
COMMON: dict[str, Any] = {
    "nbest": 1,
    "max_len_a": 0.0,
    "processors": [],
    "penalty": "average",
    "alpha": 1.0,
    "length_offset": 0,
    "refill": True,
    "finalize": "best",
    "forced_eos": "off",
    "patience": 1.0,
}
RULE_KEYS = ("refill", "finalize", "forced_eos", "patience")
EARLY_STOPPING = {True: "first_k", False: "heuristic", "never": "canonical"}
Derive = Callable[[dict[str, Any], set[str]], None]  # (settings, keys the user set) -> None


def _ct2_early_exit(settings: dict[str, Any], explicit: set[str]) -> None:
    """CTranslate2 exits when the top beam has ended if no length penalty is used."""
    no_penalty = settings["penalty"] == "none" or settings["alpha"] == 0
    if no_penalty and "stop_rule" not in explicit:
        settings["stop_rule"] = "top_beam_ever"


@dataclass(frozen=True)
class Preset:
    """A toolkit's beam search: its ``settings`` (every knob of ``build_beam``) and ``derive``,
    the toolkit's rules that follow from other settings."""

    name: str
    toolkit: str
    settings: Mapping[str, Any]
    derive: Derive | None = None


def _preset(name: str, toolkit: str, derive: Derive | None = None, **pinned: Any) -> Preset:
    settings = {**COMMON, **pinned}
    return Preset(name, toolkit, {k: settings[k] for k in LAB_KEYS}, derive)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset(
            "hf", "Hugging Face transformers generate()", beam_size=1, max_len_b=20, min_len=0,
            stop_rule="heuristic", forced_eos="model",
        ),
        _preset(
            "fairseq", "fairseq generate", beam_size=5, max_len_b=201, min_len=2,
            stop_rule="first_k", finalize="first", forced_eos="logprob",
        ),
        _preset(
            "onmt", "OpenNMT-py translate", beam_size=5, max_len_b=250, min_len=1,
            stop_rule="top_beam", length_offset=1, refill=False,
        ),
        _preset(
            "ct2", "CTranslate2 translate_batch", _ct2_early_exit, beam_size=2, max_len_b=256,
            min_len=2, stop_rule="patience",
        ),
    )
}  # fmt: skip


def _count(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LabError(f"search.{key} must be a whole number >= {minimum}, got {value!r}.")
    return value


def _early_stopping(value: Any) -> str:
    if not (isinstance(value, bool) or value == "never"):
        raise LabError(f"search.early_stopping must be true, false or never, got {value!r}.")
    return EARLY_STOPPING[value]


def _no_repeat(n: Any) -> list[dict[str, Any]]:
    return [{"name": "no_repeat_ngram", "n": n}] if _count("no_repeat_ngram_size", n, 0) else []


def _length_penalty(value: Any) -> float:
    check_type("search.length_penalty", value, 1.0)
    return float(value)


# HF key -> (its lab twins, the lab settings it becomes)
HF_KEYS: dict[str, tuple[tuple[str, ...], Callable[[Any], dict[str, Any]]]] = {
    "num_beams": (("beam_size",), lambda v: {"beam_size": _count("num_beams", v, 1)}),
    "num_return_sequences": (("nbest",), lambda v: {"nbest": _count("num_return_sequences", v, 1)}),
    "length_penalty": (("alpha",), lambda v: {"alpha": _length_penalty(v)}),
    "early_stopping": (("stop_rule",), lambda v: {"stop_rule": _early_stopping(v)}),
    "no_repeat_ngram_size": (("no_repeat_ngram",), lambda v: {"processors": _no_repeat(v)}),
    "min_new_tokens": (("min_len",), lambda v: {"min_len": _count("min_new_tokens", v, 0) + 1}),
    "max_new_tokens": (
        ("max_len_a", "max_len_b"),
        lambda v: {"max_len_a": 0.0, "max_len_b": _count("max_new_tokens", v, 1)},
    ),
}


def preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is one line listing the valid ones."""
    if name not in PRESETS:
        raise LabError(unknown_name_message("preset", name, sorted(PRESETS)))
    return PRESETS[name]


def _check_keys(p: Preset, given: Mapping[str, Any]) -> None:
    """Refuse a key no preset knows, an HF key outside ``hf``, and an HF key with its twin."""
    valid = [*LAB_KEYS, *HF_KEYS] if p.name == "hf" else list(LAB_KEYS)
    for key in given:
        if key in HF_KEYS and p.name != "hf":
            twins = " / ".join(f"search.{t}" for t in HF_KEYS[key][0])
            raise LabError(
                f"search.{key} is a Hugging Face key, accepted by search=beam_hf only; with"
                f" search=beam_{p.name} set {twins}."
            )
        if key not in valid:
            raise LabError(unknown_name_message(f"search=beam_{p.name} key", key, valid))
    procs = {str(s.get("name")) for s in given.get("processors") or () if isinstance(s, Mapping)}
    for key in sorted(given.keys() & HF_KEYS.keys()):
        twins = [f"search.{t}" for t in HF_KEYS[key][0] if t in given]
        twins += [f"a {t} entry of search.processors" for t in HF_KEYS[key][0] if t in procs]
        if twins:
            raise LabError(
                f"search.{key} and {twins[0]} set the same thing (the Hugging Face name and the"
                " lab's); keep one of them."
            )


def resolve(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Preset ``name``'s settings with the keys set in ``given`` (``None``: unset) applied: HF
    keys translated to the lab's, then the lab keys, then the toolkit's derived rules."""
    p = preset(name)
    given = {k: v for k, v in given.items() if v is not None}
    _check_keys(p, given)
    settings = dict(p.settings)
    for key in LAB_KEYS:
        if key in given:
            check_type(f"search.{key}", given[key], p.settings[key])
            settings[key] = given[key]
    extra: list[dict[str, Any]] = []
    for key in sorted(given.keys() & HF_KEYS.keys()):
        translated = HF_KEYS[key][1](given[key])
        extra += translated.pop("processors", [])
        settings.update(translated)
    settings["processors"] = [*(settings["processors"] or ()), *extra]
    explicit = set(given) | {t for k in given if k in HF_KEYS for t in HF_KEYS[k][0]}
    if p.derive is not None:
        p.derive(settings, explicit)
    return settings


def build_preset(name: str, given: Mapping[str, Any]) -> BeamSearch:
    """The beam search of preset ``name`` with the keys set in ``given`` overriding its own."""
    s = resolve(name, given)
    rules = BeamRules(**{k: s[k] for k in RULE_KEYS})
    lab = {k: v for k, v in s.items() if k not in RULE_KEYS}
    return build_beam(**lab, rules=rules, preset=name)


def _register(p: Preset) -> None:
    def factory(**keys: Any) -> BeamSearch:
        return build_preset(p.name, keys)

    doc = f"{p.toolkit} beam search defaults (lab.search.beam.presets; keys override)"
    factory.__doc__ = doc
    SEARCHES.register(f"beam_{p.name}", doc)(factory)


for _p in PRESETS.values():
    _register(_p)
