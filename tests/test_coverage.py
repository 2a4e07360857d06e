"""Coverage penalties (``search.coverage=wu|summary``): the formulas against OpenNMT-py's, written
out here from its ``penalties.py`` on hand-made attention; a hand-built beam where the penalty
must change the ranking; beta=0 equal to plain beam; every returned score equal to the
length-penalized log-prob minus the OpenNMT-py penalty of the coverage its tokens really had;
batch invariance; and the one-line refusals."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

import lab.search  # noqa: F401  (registers the searches)
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.beam.coverage import CoveragePenalty
from tests.helpers.brute_force import enumerate_outputs
from tests.helpers.models import sources, tiny_model
from tests.helpers.table_model import EOS, A, AttentionTableModel, B, C

pytestmark = pytest.mark.usefixtures("one_thread")


def onmt_wu(cov: Tensor, beta: float) -> Tensor:
    """OpenNMT-py ``PenaltyBuilder.coverage_wu``: beta * -sum log(min(cov, 1))."""
    return beta * -torch.min(cov, torch.ones_like(cov)).log().sum(-1)


def onmt_summary(cov: Tensor, beta: float) -> Tensor:
    """OpenNMT-py ``PenaltyBuilder.coverage_summary``: beta * (sum max(cov, 1) - len)."""
    return beta * (torch.max(cov, torch.ones_like(cov)).sum(-1) - cov.size(-1))


ONMT = {"wu": onmt_wu, "summary": onmt_summary}

# hand-made attention (target steps x source tokens), each row a distribution
ATTENTIONS = [
    [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]],  # each token about once
    [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.85, 0.1, 0.05], [0.6, 0.3, 0.1]],  # piled on one
    [[0.25, 0.25, 0.25, 0.25]],  # one step: everything under-covered
    [[1.0]],  # one token, covered exactly once
    [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]],  # everything over-covered
]


@pytest.mark.parametrize("name", ["wu", "summary"])
@pytest.mark.parametrize("beta", [0.0, 0.2, 1.0, 5.0])
def test_penalties_equal_opennmt_on_hand_made_attention(name: str, beta: float) -> None:
    for attn in ATTENTIONS:
        cov = torch.tensor(attn).sum(0)  # (S,) summed over the steps
        ours = CoveragePenalty(name, beta)(cov, torch.ones_like(cov, dtype=torch.bool))
        torch.testing.assert_close(ours, ONMT[name](cov, beta), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["wu", "summary"])
def test_padding_counts_nothing(name: str) -> None:
    """A padded sentence (attention 0 past its end) scores what it scores unpadded; OpenNMT-py's
    ``wu`` over the padded width would be infinite."""
    cov = torch.tensor([[0.9, 1.3, 0.4, 0.0, 0.0], [0.2, 0.3, 0.5, 2.0, 1.0]])  # (2, 5)
    real = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])
    ours = CoveragePenalty(name, 0.7)(cov, real)
    expected = torch.stack([ONMT[name](cov[0, :3], 0.7), ONMT[name](cov[1], 0.7)])
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    if name == "wu":
        assert onmt_wu(cov[0], 0.7).isinf()


def test_a_token_never_attended_is_floored_not_infinite() -> None:
    """OpenNMT-py's ``wu`` is +inf where a coverage is 0 (its scores go -inf); here that token
    costs ``-log`` of the smallest normal float (about 87) and the rest is OpenNMT-py's."""
    cov, beta = torch.tensor([0.0, 0.6, 1.4]), 0.5
    ours = CoveragePenalty("wu", beta)(cov, torch.ones(3, dtype=torch.bool))
    assert onmt_wu(cov, beta).isinf() and ours.isfinite()
    floor = -math.log(torch.finfo(torch.float32).tiny)
    torch.testing.assert_close(ours, onmt_wu(cov[1:], beta) + beta * floor, atol=1e-4, rtol=0)
    summary = CoveragePenalty("summary", beta)(cov, torch.ones(3, dtype=torch.bool))
    torch.testing.assert_close(summary, onmt_summary(cov, beta))  # 0 is no problem there


def ranking_model() -> AttentionTableModel:
    """Two sentences of 2 source tokens: ``A EOS`` (p 0.6) looks at the first token twice;
    ``B C EOS`` (p 0.3) covers both; ``B EOS`` (p 0.1) covers both exactly once."""
    table = {(): {A: 0.6, B: 0.4}, (A,): {EOS: 1.0}, (B,): {C: 0.75, EOS: 0.25}, (B, C): {EOS: 1.0}}
    attention = {(): [0.9, 0.1], (A,): [0.9, 0.1], (B,): [0.1, 0.9], (B, C): [0.5, 0.5]}
    return AttentionTableModel(table, attention)


def decode(model: DecoderModel, src: Tensor, lengths: Tensor, **search) -> list:
    return SEARCHES.build("beam", **{"beam_size": 2, "nbest": 2, **search})(model, src, lengths)


def test_wu_prefers_the_output_that_covers_the_source() -> None:
    src, lengths = torch.tensor([[3, 4]]), torch.tensor([2])
    plain = decode(ranking_model(), src, lengths).nbest[0]
    assert [h.tokens for h in plain] == [(A, EOS), (B, C, EOS)]
    wu = decode(ranking_model(), src, lengths, coverage="wu", beta=1.0).nbest[0]
    assert [h.tokens for h in wu] == [(B, C, EOS), (A, EOS)]
    # coverage of A EOS: (1.8, 0.2) -> -log 0.2; of B C EOS: (1.5, 1.5) -> 0
    assert wu[0].logprob == pytest.approx(math.log(0.3)) and wu[0].score == pytest.approx(
        wu[0].logprob
    )
    assert wu[1].score == pytest.approx(math.log(0.6) + math.log(0.2))
    assert wu[1].info == {"coverage_penalty": pytest.approx(-math.log(0.2))}
    assert wu[1].logprob == pytest.approx(math.log(0.6))  # the model's, unpenalized


def test_summary_penalizes_attention_piled_on_a_token() -> None:
    src, lengths = torch.tensor([[3, 4]]), torch.tensor([2])
    hyps = decode(ranking_model(), src, lengths, coverage="summary", beta=2.0).nbest[0]
    by_tokens = {h.tokens: h for h in hyps}
    # A EOS: max(1.8, 1) + max(0.2, 1) - 2 = 0.8; B C EOS: 1.5 + 1.5 - 2 = 1.0
    assert by_tokens[(A, EOS)].score == pytest.approx(math.log(0.6) - 1.6)
    assert by_tokens[(B, C, EOS)].score == pytest.approx(math.log(0.3) - 2.0)


def fields(output) -> list[list[tuple]]:
    return [[(h.tokens, h.logprob, h.score, h.length, h.finished) for h in n] for n in output.nbest]


@pytest.mark.parametrize("arch", ["transformer", "gru", "lstm"])
@pytest.mark.parametrize("search", ["beam", "beam_lp"])
def test_beta_zero_is_plain_beam_exactly(arch: str, search: str) -> None:
    model, (src, lengths) = tiny_model(arch), sources(2)
    plain = SEARCHES.build(search, beam_size=4, nbest=3)(model, src, lengths)
    for name in ("wu", "summary"):
        zero = SEARCHES.build(search, beam_size=4, nbest=3, coverage=name, beta=0.0)
        out = zero(model, src, lengths)
        assert fields(out) == fields(plain)
        assert all(h.info == {"coverage_penalty": 0.0} for n in out.nbest for h in n)


@torch.no_grad()
def real_coverage(model: DecoderModel, src: Tensor, length: int, tokens: tuple) -> Tensor:
    """The coverage ``(S,)`` of ``tokens`` decoded alone: the attention of every step that chose
    one of them, summed."""
    state = model.init_state(model.encode(src[None, :length], torch.tensor([length])), 1)
    state, prev, cov = state.asking_attention(), model.bos_id, torch.zeros(length)
    for tok in tokens:
        _, state = model.step(torch.tensor([prev]), state)
        cov, prev = cov + state.attention[0], tok
    return cov


@pytest.mark.parametrize("arch", ["transformer", "gru", "lstm"])
@pytest.mark.parametrize("name", ["wu", "summary"])
def test_every_score_is_the_length_penalized_logprob_minus_opennmts_penalty(arch, name) -> None:
    """On a padded batch, each returned hypothesis' score is GNMT's length penalty of its
    log-prob minus OpenNMT-py's penalty of the coverage its tokens had: the coverage followed
    the hypothesis through every reorder."""
    model, (src, lengths) = tiny_model(arch), sources(3)
    search = SEARCHES.build("beam_lp", beam_size=4, nbest=4, alpha=0.6, coverage=name, beta=0.4)
    out = search(model, src, lengths)
    for b, nbest in enumerate(out.nbest):
        assert nbest
        for h in nbest:
            cov = real_coverage(model, src[b], int(lengths[b]), h.tokens)
            penalty = float(ONMT[name](cov, 0.4))
            lp = h.logprob / ((5 + h.length) / 6) ** 0.6
            assert h.score == pytest.approx(lp - penalty, abs=1e-4)
            assert h.info["coverage_penalty"] == pytest.approx(penalty, abs=1e-4)


@pytest.mark.parametrize("arch", ["transformer", "gru"])
def test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch(arch: str) -> None:
    model, (src, lengths) = tiny_model(arch), sources(4)
    search = SEARCHES.build("beam_lp", beam_size=3, nbest=2, coverage="wu", beta=0.3)
    batch = search(model, src, lengths).nbest
    for b, nbest in enumerate(batch):
        alone = search(model, src[b : b + 1, : lengths[b]], lengths[b : b + 1]).nbest[0]
        assert [h.tokens for h in alone] == [h.tokens for h in nbest]
        for x, y in zip(alone, nbest, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-4)


@pytest.mark.parametrize(
    ("arch", "changes"),
    [("decoder_only", {}), ("lstm", {"attention": "none"}), ("transformer", {"facts": True})],
)
def test_a_model_without_cross_attention_is_refused_in_one_line(arch: str, changes: dict) -> None:
    model, (src, lengths) = tiny_model(arch, **changes), sources(1)
    with pytest.raises(LabError, match="search.coverage=wu needs the model's cross-attention") as e:
        SEARCHES.build("beam", coverage="wu", beta=0.2)(model, src, lengths)
    assert "transformer" in str(e.value) and "gru or lstm" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"coverage": "wuu", "beta": 0.2}, "search.coverage='wuu' is not one of none, wu, summary"),
        ({"coverage": "wu", "beta": -1.0}, "use beta >= 0"),
        ({"coverage": "summary", "beta": float("nan")}, "finite number"),
        ({"beta": 0.5}, "search.beta=0.5 applies only with a coverage penalty"),
    ],
)
def test_bad_settings_are_refused_in_one_line(settings: dict, message: str) -> None:
    with pytest.raises(LabError, match=message.replace("(", r"\(")) as e:
        SEARCHES.build("beam_lp", **settings)
    assert "\n" not in str(e.value)


def test_the_settings_name_the_penalty_only_when_there_is_one() -> None:
    assert "coverage" not in SEARCHES.build("beam").settings
    settings = SEARCHES.build("beam", coverage="summary", beta=0.5).settings
    assert (settings["coverage"], settings["beta"]) == ("summary", 0.5)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
@pytest.mark.parametrize("name", ["wu", "summary"])
def test_a_beam_that_covers_every_output_returns_the_best_penalized_one(arch, name) -> None:
    """With room for every output (3 words, at most 4 tokens: 121 outputs, 81 of them cut at
    the limit), the n-best is the enumeration's best by GNMT score minus the coverage penalty."""
    model, (src, lengths) = tiny_model(arch, vocab=6), sources(6, vocab=6, lengths=(3,))
    search = SEARCHES.build(
        "beam_lp", beam_size=128, nbest=5, max_len_a=0.0, max_len_b=4, coverage=name, beta=0.5
    )
    got = search(model, src, lengths).nbest[0]
    outputs = list(enumerate_outputs(4, words=(3, 4, 5)))
    tgt = pad_sequence([torch.tensor(o) for o in outputs], batch_first=True)  # (O, T)
    with torch.no_grad():
        logp = model.score(src.expand(len(outputs), -1), lengths.expand(len(outputs)), tgt)
    scored = []
    for lp, out in zip(logp.tolist(), outputs, strict=True):
        cov = real_coverage(model, src[0], 3, out)
        scored.append((lp / ((5 + len(out)) / 6) ** 0.6 - float(ONMT[name](cov, 0.5)), out))
    best = sorted(scored, key=lambda s: -s[0])[:5]
    assert [h.tokens for h in got] == [o for _, o in best]
    assert [h.score for h in got] == pytest.approx([s for s, _ in best], abs=1e-4)
