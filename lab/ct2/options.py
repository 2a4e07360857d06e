"""A lab beam search's settings as CTranslate2 ``translate_batch`` options, or a refusal.

The ``beam_ct2`` preset (``lab.search.beam.presets``) states CTranslate2's semantics in the lab's
knobs; this is the inverse map, used to run CTranslate2 with what a lab run ran. Lengths:
the lab counts EOS in ``max_len_b`` and ``min_len``; CTranslate2's ``max_decoding_length``
counts it too, its ``min_decoding_length`` does not (``min_len = min_decoding_length + 1``).
A setting CTranslate2 has no way to express (a source-relative length limit, a processor,
another stop rule or penalty) is refused with one line, because a comparison under different
rules would measure the rules, not the implementations.
"""

from __future__ import annotations

from typing import Any

from lab.errors import LabError

# the lab knobs a CTranslate2 beam search always has
FIXED = {"refill": True, "finalize": "best", "forced_eos": "off", "length_offset": 0}
STOP_RULES = ("patience", "top_beam_ever")
PENALTIES = ("average", "none")


def _refuse(key: str, value: Any, valid: str) -> LabError:
    return LabError(
        f"search.{key}={value!r} has no CTranslate2 equivalent ({valid}); "
        "decode with search=beam_ct2 or change that setting."
    )


def translate_options(settings: dict[str, Any]) -> dict[str, Any]:
    """``translate_batch`` keyword arguments for the resolved lab settings ``settings``
    (``results.json``'s ``search_settings``, or a preset's ``settings``)."""
    for key, value in FIXED.items():
        if settings.get(key, value) != value:
            raise _refuse(key, settings[key], f"CTranslate2 always runs {key}={value!r}")
    if float(settings.get("max_len_a", 0) or 0) != 0:
        raise _refuse("max_len_a", settings["max_len_a"], "its limit is absolute: max_len_b")
    if settings.get("processors"):
        raise _refuse("processors", settings["processors"], "no logits processors")
    rule = settings.get("stop_rule", "patience")
    if rule not in STOP_RULES:
        raise _refuse("stop_rule", rule, f"valid: {', '.join(STOP_RULES)}")
    penalty = settings.get("penalty", "average")
    if penalty not in PENALTIES:
        raise _refuse("penalty", penalty, f"valid: {', '.join(PENALTIES)}")
    alpha = 0.0 if penalty == "none" else float(settings.get("alpha", 1.0))
    early_exit = alpha == 0
    if (rule == "top_beam_ever") != early_exit:
        raise _refuse(
            "stop_rule", rule, "it stops at the top beam's EOS exactly when alpha=0 (no penalty)"
        )
    return {
        "beam_size": int(settings["beam_size"]),
        "num_hypotheses": int(settings.get("nbest", 1)),
        "length_penalty": alpha,
        "patience": float(settings.get("patience", 1.0)),
        "max_decoding_length": int(settings["max_len_b"]),
        "min_decoding_length": max(int(settings.get("min_len", 0) or 0) - 1, 0),
        "return_scores": True,
    }
