"""The chain of logits processors a search applies, built (and so validated) with the search.

Processors follow the ``Processor`` contract of ``lab.search.contracts``: called as
``proc(log_probs, tokens, step)``, they change what the search ranks by, never the model
log-probability a hypothesis reports. ``forced_eos`` also takes each row's length limit
(``takes_limit``); the decoding driver passes it to every search's chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import PROCESSORS
from lab.search.contracts import Processor
from lab.search.processors.constraints import BanTokens, ForcedEOS, MinLength
from lab.search.types import Constraints
from lab.vocab import BOS_ID, EOS_ID, PAD_ID


def model_forces_eos(model: DecoderModel) -> bool:
    """Whether ``model`` asks for EOS at the length limit: a Hugging Face model (model=hf) whose
    generation config sets ``forced_eos_token_id``, as MarianMT's does; other models never do."""
    hf = getattr(model, "hf", None)
    forced = getattr(getattr(hf, "generation_config", None), "forced_eos_token_id", None)
    if forced is None:
        return False
    ids = list(forced) if isinstance(forced, list | tuple) else [forced]
    if ids != [model.eos_id]:
        raise LabError(
            f"the model's forced_eos_token_id={forced} is not its EOS id {model.eos_id}; the lab"
            " forces EOS only: set search.forced_eos=off (or zero to force EOS)."
        )
    return True


class Processors:
    """The processors a search applies, built (and so validated) with the search.

    Always first: PAD and BOS banned; then EOS banned before ``min_len``; then each
    ``{"name": ..., **kwargs}`` spec of the config, in order. A misspelled name or key fails
    when the search is built, before any training. ``for_model`` binds them to a model's ids,
    ``for_call`` also to a call's constraints; ``constraint_kinds``: the kinds of constraint
    they enforce (``allowed`` with ``trie``), which a search adds to its own.
    ``limits``: whether ``forced_eos`` may force EOS at each sentence's own length limit
    (``max_len=0``; the beam searches allow it); without it, ``forced_eos`` needs ``max_len``.
    """

    def __init__(
        self,
        specs: Sequence[Mapping[str, Any]] | None = None,
        min_len: int = 0,
        limits: bool = False,
    ) -> None:
        self.specs = [dict(s) for s in specs or ()]
        self.min_len, self.limits = int(min_len), limits
        for spec in self.specs:
            if "name" not in spec:
                raise LabError(
                    f"search.processors entry {spec} has no name; write {{name: <processor>, ...}}"
                    f" with one of: {', '.join(PROCESSORS.names())}."
                )
        built = self.for_ids(PAD_ID, BOS_ID, EOS_ID)
        kinds = (k for p in built for k in getattr(p, "constraint_kinds", ()))
        self.constraint_kinds: tuple[str, ...] = tuple(dict.fromkeys(kinds))

    def for_model(self, model: DecoderModel) -> list[Processor]:
        return self.for_ids(model.pad_id, model.bos_id, model.eos_id)

    def for_call(
        self,
        model: DecoderModel,
        constraints: Sequence[Constraints | None] | None,
        forced_eos: str = "off",
    ) -> list[Processor]:
        """``for_model``, with the processors that read the examples' constraints (``trie``,
        ``takes_sentence``) bound to this call's ``constraints``; then, for a beam search's
        ``forced_eos`` rule, EOS forced at each sentence's limit (``zero`` or ``logprob``;
        ``model``: ``zero`` where the model asks for it, as MarianMT does; ``off``: never)."""
        procs = [
            p.bind(constraints) if getattr(p, "takes_sentence", False) else p  # type: ignore[attr-defined]
            for p in self.for_model(model)
        ]
        if forced_eos == "model":
            forced_eos = "zero" if model_forces_eos(model) else "off"
        if forced_eos != "off":
            procs.append(ForcedEOS(0, forced_eos, model.eos_id))
        return procs

    def for_ids(self, pad_id: int, bos_id: int, eos_id: int) -> list[Processor]:
        procs: list[Processor] = [BanTokens([pad_id, bos_id])]
        if self.min_len > 1:
            procs.append(MinLength(self.min_len, eos_id))
        for spec in self.specs:
            spec = dict(spec)
            name = spec.pop("name")
            if name in ("min_length", "forced_eos", "trie"):
                spec.setdefault("eos_id", eos_id)
            procs.append(PROCESSORS.build(name, **spec))
            if name == "forced_eos" and not (procs[-1].max_len or self.limits):
                raise LabError(
                    "processor forced_eos needs max_len (the step that must be EOS) with this"
                    " search; only beam searches know each sentence's own limit."
                )
        return procs
