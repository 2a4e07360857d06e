"""``BeamRules``: the choices in which the toolkits' beam searches differ beyond the length
penalty and the stop rule (``lab.search.beam.presets`` bundles them per toolkit); the defaults
are the lab's."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lab.errors import LabError

FINALIZE = ("best", "first")
FORCED_EOS = ("off", "zero", "logprob", "model")


@dataclass(frozen=True)
class BeamRules:
    """How a beam treats hypotheses that end, where the toolkits disagree.

    ``refill``: an EOS among a step's top K candidates is replaced by the next non-EOS one, so
    K hypotheses stay live (2K candidates: HF, fairseq, CTranslate2); False leaves its slot
    empty for that step (K candidates: OpenNMT-py ``BeamSearchBase._pick``).
    ``finalize``: ``best``: the pool keeps the K best finished hypotheses (HF, CTranslate2);
    ``first``: the first K to finish, never replaced (fairseq ``finalize_hypos``).
    ``forced_eos``: at each sentence's last allowed step only EOS, scored 0 (``zero``, HF) or
    by its log-prob (``logprob``, fairseq); ``model``: ``zero`` if the model's config forces EOS
    (HF ``forced_eos_token_id``), else ``off``.
    ``patience``: the factor of ``stop_rule=patience`` (CTranslate2).
    """

    refill: bool = True
    finalize: str = "best"
    forced_eos: str = "off"
    patience: float = 1.0

    def __post_init__(self) -> None:
        for key, value, valid in (
            ("finalize", self.finalize, FINALIZE),
            ("forced_eos", self.forced_eos, FORCED_EOS),
        ):
            if value not in valid:
                raise LabError(f"search.{key}={value!r} is not one of {', '.join(valid)}.")
        if not isinstance(self.refill, bool):
            raise LabError(f"search.refill must be true or false, got {self.refill!r}.")
        if not (isinstance(self.patience, int | float) and math.isfinite(self.patience)):
            raise LabError(f"search.patience must be a finite number, got {self.patience!r}.")
