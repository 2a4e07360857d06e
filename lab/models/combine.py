"""Models made of other models (an ensemble, LM fusion): one decoding interface over several
members that decode in lockstep.

``Combined`` runs every member's ``encode``/``init_state``/``step`` and merges their
next-token log-probs with its ``combine`` rule. Its ``State`` holds every member's leaves under
the key ``"<member index>/<leaf name>"``, in ``hyp`` and ``shared`` as the member keeps them,
so the generic ``State.reorder`` / ``select_sentences`` move every member's rows at once and
nothing is stored on the module between steps.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from torch import Tensor, nn

from lab.errors import LabError
from lab.models.base import DecoderModel, Leaf, State


def prefixed(i: int, leaves: dict[str, Leaf]) -> dict[str, Leaf]:
    """``leaves`` of member ``i`` under the keys ``"i/<name>"``."""
    return {f"{i}/{k}": v for k, v in leaves.items()}


def member_part(i: int, leaves: dict[str, Leaf]) -> dict[str, Leaf]:
    """The leaves of member ``i`` (its own key names) out of a combined dict."""
    head = f"{i}/"
    return {k[len(head) :]: v for k, v in leaves.items() if k.startswith(head)}


def joined(states: Sequence[State]) -> State:
    """One state holding every member's ``states`` (all with the same beam size and step)."""
    hyp: dict[str, Leaf] = {}
    shared: dict[str, Leaf] = {}
    for i, s in enumerate(states):
        hyp |= prefixed(i, s.hyp)
        shared |= prefixed(i, s.shared)
    return State(hyp=hyp, shared=shared, beam_size=states[0].beam_size, step=states[0].step)


def split(state: State, n: int) -> list[State]:
    """The ``n`` member states of a combined ``state``."""
    return [
        State(member_part(i, state.hyp), member_part(i, state.shared), state.beam_size, state.step)
        for i in range(n)
    ]


def same_ids(members: Sequence[DecoderModel]) -> tuple[int, int, int]:
    """The members' common ``(pad_id, bos_id, eos_id)``; members that differ are refused."""
    ids = {(m.pad_id, m.bos_id, m.eos_id) for m in members}
    if len(ids) != 1:
        raise LabError(
            f"the members use different special ids (pad, bos, eos): {sorted(ids)}; "
            "combine models of one tokenizer."
        )
    return ids.pop()


class Combined(DecoderModel):
    """Members decoded in lockstep, their log-probs merged by ``combine``."""

    def __init__(self, members: Sequence[DecoderModel]) -> None:
        if not members:
            raise LabError("a combined model needs at least one member model.")
        vocabs = {m.tgt_vocab_size for m in members}
        if len(vocabs) != 1:
            raise LabError(
                f"the members predict different target vocabularies {sorted(vocabs)}; "
                "combine models of one tokenizer."
            )
        super().__init__(members[0].src_vocab_size, vocabs.pop())
        self.pad_id, self.bos_id, self.eos_id = same_ids(members)
        self.members = nn.ModuleList(members)

    @property
    def max_positions(self) -> int | None:
        bounds = [m.max_positions for m in self.members if m.max_positions is not None]
        return min(bounds) if bounds else None

    @abstractmethod
    def combine(self, log_probs: list[Tensor]) -> Tensor:
        """Merge the members' log-probs (each ``(..., V)``) into the model's ``(..., V)``."""

    def member_source(self, i: int, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """What member ``i`` reads as its source (default: the source itself)."""
        return src, src_lengths

    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Leaf]:
        memory: dict[str, Leaf] = {}
        for i, m in enumerate(self.members):
            memory |= prefixed(i, m.encode(*self.member_source(i, src_tokens, src_lengths)))
        return memory

    def init_state(self, memory: dict[str, Leaf], beam_size: int) -> State:
        return joined(
            [m.init_state(member_part(i, memory), beam_size) for i, m in enumerate(self.members)]
        )

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        outs = [
            m.step(prev_tokens, s)
            for m, s in zip(self.members, split(state, len(self.members)), strict=True)
        ]
        return self.combine([lp for lp, _ in outs]), joined([s for _, s in outs])  # (B*K, V)

    def member_log_probs(
        self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor
    ) -> list[Tensor]:
        """Every member's teacher-forced log-probs ``(B, T, V)``."""
        return [
            m.forward(*self.member_source(i, src_tokens, src_lengths), prev_tokens)
            .float()
            .log_softmax(-1)
            for i, m in enumerate(self.members)
        ]

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """The combined teacher-forced log-probs ``(B, T, V)`` (log-softmax leaves them as they
        are where ``combine`` normalizes)."""
        return self.combine(self.member_log_probs(src_tokens, src_lengths, prev_tokens))
