"""``search=speculative``: greedy speculative decoding returns greedy's tokens on every
architecture whatever the draft; sampled speculative decoding draws from the target's own
distribution (chi-square against enumeration); the block step equals step by step."""

from __future__ import annotations

import pytest
import torch

import lab.models  # noqa: F401  (registers the models)
import lab.search  # noqa: F401  (registers the searches)
from lab.checkpoint import save_model
from lab.errors import LabError
from lab.registry import SEARCHES
from tests.helpers.models import ARCHS, TINY, sources, tiny_model
from tests.helpers.sampling import (
    MAX_LEN,
    VOCAB,
    chi_square,
    enumerable,
    every_outcome,
    processed_logprobs,
)

pytestmark = pytest.mark.usefixtures("one_thread")

LENGTHS = (6, 2, 9, 4, 1)
LIMIT = {"max_len_a": 1.0, "max_len_b": 4}


def drafts(arch: str) -> list:
    """Random drafts of another architecture and of the same one, and the target itself."""
    other = ARCHS[(ARCHS.index(arch) + 1) % len(ARCHS)]
    return [tiny_model(other, 12, seed=5), tiny_model(arch, 12, seed=7, sharpen=1.0)]


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_speculative_decoding_is_token_identical_to_greedy(arch):
    target = tiny_model(arch, 12, seed=2)
    src, lens = sources(3, 12, LENGTHS)
    want = SEARCHES.build("greedy", **LIMIT)(target, src, lens).best()
    for draft in [*drafts(arch), target]:
        for gamma in (1, 3, 6):
            out = SEARCHES.build("speculative", draft=draft, gamma=gamma, **LIMIT)(
                target, src, lens
            )
            for a, b in zip(want, out.best(), strict=True):
                assert b.tokens == a.tokens, (gamma, a, b)
                assert b.finished == a.finished
                assert b.logprob == pytest.approx(a.logprob, abs=1e-5)
    assert all(h.info["acceptance"] == 1.0 for h in out.best() if h.info["drafted"])


def test_counters_say_what_was_drafted_kept_and_called():
    target, draft = tiny_model("transformer", 12, seed=2), tiny_model("gru", 12, seed=5)
    src, lens = sources(3, 12, LENGTHS)
    out = SEARCHES.build("speculative", draft=draft, gamma=3, **LIMIT)(target, src, lens)
    for h in out.best():
        info = h.info
        assert 0 <= info["accepted"] <= info["drafted"]
        assert info["acceptance"] == pytest.approx(info["accepted"] / max(info["drafted"], 1))
        # every target call but the encode keeps the accepted drafts plus one token
        assert h.length <= info["accepted"] + info["target_calls"] - 1
        assert 0 < info["draft_seconds"] < info["seconds"]  # the draft's share of the time
    assert out.cost.steps == sum(h.info["target_calls"] - 1 for h in out.best())
    assert out.cost.sentences == len(LENGTHS)


@pytest.mark.parametrize("arch", ARCHS)
def test_step_block_equals_step_by_step(arch):
    model = tiny_model(arch, 12, seed=1)
    src, lens = sources(2, 12, (5, 3))
    block = torch.tensor([[1, 5, 6, 7], [1, 3, 3, 9]])  # (B, L)
    state = model.init_state(model.encode(src, lens), 1)
    got, states = model.step_block(block, state)  # (B, L, V)
    for j in range(block.size(1)):
        lp, state = model.step(block[:, j], state)
        assert torch.allclose(got[:, j], lp, atol=1e-6)
    assert len(states) == block.size(1) and states[-1].step == state.step


@pytest.mark.parametrize("n", [400, pytest.param(3000, marks=pytest.mark.slow)])
def test_sampled_speculative_decoding_draws_from_the_target(root, n):
    """Many draws of one sentence (one key each) against the enumerated target distribution:
    Pearson's chi-square must not reject at 0.1%; the draft is flat and of another
    architecture, so many drafts are refused (the residual draws matter)."""
    target, src, lens = enumerable()
    draft = tiny_model("gru", VOCAB, seed=3, sharpen=0.5)
    i = 0  # 400 draws in the suite, 3000 under -m slow
    search = SEARCHES.build(
        "speculative", draft=draft, gamma=2, sample=True, max_len_a=0, max_len_b=MAX_LEN
    )
    out = search(
        target, src[i : i + 1].expand(n, -1), lens[i : i + 1].expand(n), keys=list(range(n))
    )
    truth = processed_logprobs("none", i)
    outcomes = every_outcome()
    index = {o: j for j, o in enumerate(outcomes)}
    counts = torch.zeros(len(outcomes))
    for h in out.best():
        counts[index[h.tokens]] += 1
    probs = torch.tensor([truth[o] for o in outcomes]).exp()
    stat, df = chi_square(counts, probs * n)
    p_value = float(torch.special.gammaincc(torch.tensor(df / 2.0), torch.tensor(stat / 2.0)))
    assert p_value > 0.001, (stat, df)
    acceptance = sum(h.info["accepted"] for h in out.best()) / sum(
        h.info["drafted"] for h in out.best()
    )
    assert 0.05 < acceptance < 0.95


def test_the_draft_comes_from_a_checkpoint_and_must_share_the_vocabulary(tmp_path):
    save_model(tiny_model("gru", 12, seed=5), "gru", TINY["gru"], tmp_path / "model.pt", {})
    target = tiny_model("transformer", 12, seed=2)
    src, lens = sources(3, 12, LENGTHS)
    out = SEARCHES.build("speculative", draft=str(tmp_path), **LIMIT)(target, src, lens)
    want = SEARCHES.build("greedy", **LIMIT)(target, src, lens).best()
    assert [h.tokens for h in out.best()] == [h.tokens for h in want]
    with pytest.raises(LabError, match="search.draft predicts 12 tokens, the model 9"):
        SEARCHES.build("speculative", draft=str(tmp_path))(tiny_model("gru", 9), src % 9, lens)
    with pytest.raises(LabError, match="search.draft is empty"):
        SEARCHES.build("speculative")
