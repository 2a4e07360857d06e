"""UID regularizers (Meister et al., 2020): the definitions on hand-made surprisals, the
processors' totals against log p(y) - lam * R(y) recomputed by teacher forcing, and ``rerank``."""

from __future__ import annotations

import math

import pytest
import torch

from lab.errors import LabError
from lab.registry import SEARCHES
from lab.search.processors.regularizers import rerank, uid_objective, uid_regularizer
from tests.helpers.models import sources, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

LAM = 0.3


def test_definitions_on_hand_made_surprisals():
    u = [1.0, 3.0, 2.0]
    assert uid_regularizer(u, "square") == pytest.approx(1 + 9 + 4)
    assert uid_regularizer(u, "max") == pytest.approx(3.0)
    assert uid_regularizer(u, "var") == pytest.approx(((1 - 2) ** 2 + 1 + 0) / 3)
    # u_0 = 0: (1-0)^2 + (3-1)^2 + (2-3)^2 over |y| = 3
    assert uid_regularizer(u, "local") == pytest.approx((1 + 4 + 1) / 3)
    assert uid_objective([-1.0, -3.0, -2.0], "max", 2.0) == pytest.approx(-6.0 - 6.0)
    assert uid_regularizer([], "var") == 0.0
    with pytest.raises(LabError, match="one of"):
        uid_regularizer(u, "nope")


def model_and_sources():
    """A tiny Transformer with one decoder layer (sharpened: less uniform surprisals) and three
    sources of its vocabulary of 14."""
    return tiny_model("transformer", 14, dec_layers=1), sources(1, 14, (6, 3, 8))


def forced(model, src, lens, hyp):
    """Per-token log-probs ``(T,)`` and full log-prob rows ``(T, V)`` of ``hyp`` on one source."""
    tgt = torch.tensor([hyp.tokens])  # (1, T)
    with torch.no_grad():
        lp = model.token_log_probs(src, lens, tgt)[0]  # (T,)
        prev = torch.cat([torch.tensor([[model.bos_id]]), tgt[:, :-1]], 1)  # (1, T)
        rows = torch.log_softmax(model(src, lens, prev).float(), -1)[0]  # (T, V)
    return lp, rows


def check(model, src, lens, out, kind):
    for i, nbest in enumerate(out.nbest):
        s, n = src[i : i + 1], lens[i : i + 1]
        for h in nbest:
            lp, rows = forced(model, s, n, h)
            assert h.logprob == pytest.approx(float(lp.sum()), abs=1e-4)  # the model's, untouched
            if kind == "greedy":
                rows[:, [model.pad_id, model.bos_id]] = -math.inf  # the search's own bans
                gap = rows.max(-1).values - lp  # (T,) u_t - min u_t
                want = float(lp.sum() - LAM * (gap**2).sum())
            else:
                want = uid_objective(lp, kind, LAM)
            assert h.score == pytest.approx(want, abs=1e-3)


@pytest.mark.parametrize("kind", ["square", "max", "greedy"])
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_processor_total_is_the_regularized_objective(kind, search):
    model, (src, lens) = model_and_sources()
    kw = {"beam_size": 3, "nbest": 3} if search == "beam" else {}
    procs = [{"name": f"uid_{kind}", "lam": LAM}]
    dec = SEARCHES.build(search, max_len_b=8, processors=procs, **kw)
    if kind == "max":  # one sentence per batch, as the processor demands
        outs = [dec(model, src[i : i + 1], lens[i : i + 1]) for i in range(len(lens))]
        for i, out in enumerate(outs):
            check(model, src[i : i + 1], lens[i : i + 1], out, kind)
    else:
        check(model, src, lens, dec(model, src, lens), kind)


def test_uid_max_refuses_batches_of_several_sentences():
    model, (src, lens) = model_and_sources()
    dec = SEARCHES.build(
        "beam", beam_size=2, max_len_b=5, processors=[{"name": "uid_max", "lam": 1}]
    )
    with pytest.raises(LabError, match="eval.batch_size=1"):
        dec(model, src, lens)


@pytest.mark.parametrize("kind", ["var", "local", "max", "square"])
def test_rerank_scores_and_sorts_an_nbest(kind):
    model, (src, lens) = model_and_sources()
    out = SEARCHES.build("beam", beam_size=4, nbest=4, max_len_b=8)(model, src, lens)
    ranked = rerank(model, src, lens, out.nbest, kind, LAM)
    for i, (before, after) in enumerate(zip(out.nbest, ranked, strict=True)):
        assert sorted(h.tokens for h in before) == sorted(h.tokens for h in after)
        assert [h.score for h in after] == sorted((h.score for h in after), reverse=True)
        for h in after:
            lp, _ = forced(model, src[i : i + 1], lens[i : i + 1], h)
            assert h.score == pytest.approx(uid_objective(lp, kind, LAM), abs=1e-4)
            assert h.logprob == pytest.approx(float(lp.sum()), abs=1e-4)
