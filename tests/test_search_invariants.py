"""Invariants every search must keep on every architecture, on random tiny models."""

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from lab.registry import SEARCHES
from tests.helpers.brute_force import enumerate_outputs
from tests.helpers.models import ARCHS, sources, tiny_model


def rescore(model, src, lens, hyps):
    tgt = pad_sequence([torch.tensor(h.tokens) for h in hyps], batch_first=True)
    return model.score(src, lens, tgt)


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_of_one_is_greedy(arch):
    model, (src, lens) = tiny_model(arch), sources()
    greedy = SEARCHES.build("greedy", max_len_b=12)(model, src, lens).best()
    beam = SEARCHES.build("beam", beam_size=1, max_len_b=12)(model, src, lens).best()
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    assert [h.logprob for h in beam] == pytest.approx([h.logprob for h in greedy], abs=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam", "beam_lp"])
def test_reported_logprob_is_the_model_score_of_the_tokens(arch, search):
    model, (src, lens) = tiny_model(arch), sources()
    kw = {} if search == "greedy" else {"beam_size": 4, "nbest": 3}
    out = SEARCHES.build(search, max_len_b=10, **kw)(model, src, lens)
    for rank in range(len(out.nbest[0])):
        hyps = [nb[rank] for nb in out.nbest]
        assert all(h.length == len(h.tokens) for h in hyps)
        got = torch.tensor([h.logprob for h in hyps])
        torch.testing.assert_close(got, rescore(model, src, lens, hyps), atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch(arch, search):
    model, (src, lens) = tiny_model(arch), sources(lengths=(3, 9, 5, 7))
    kw = {} if search == "greedy" else {"beam_size": 3, "nbest": 3}
    decode = SEARCHES.build(search, max_len_b=10, **kw)
    together = decode(model, src, lens).nbest
    for i in range(len(lens)):
        alone = decode(model, src[i : i + 1, : lens[i]], lens[i : i + 1]).nbest[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]
        assert [h.logprob for h in alone] == pytest.approx(
            [h.logprob for h in together[i]], abs=1e-4
        )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    ("search", "kw"),
    [
        ("beam", {"stop_rule": "canonical"}),
        ("beam", {"stop_rule": "first_k"}),
        ("beam_lp", {"penalty": "average", "alpha": 1.0, "stop_rule": "canonical"}),
        ("beam_lp", {"penalty": "word_reward", "alpha": 0.7, "stop_rule": "canonical"}),
    ],
)
def test_a_beam_covering_the_space_finds_the_exhaustive_argmax(arch, search, kw):
    vocab, max_len = 5, 4  # specials + two words: 31 possible outputs
    model = tiny_model(arch, vocab=vocab, seed=3)
    src, lens = sources(vocab=vocab, lengths=(4, 2))
    out = SEARCHES.build(search, beam_size=32, max_len_a=0, max_len_b=max_len, **kw)(
        model, src, lens
    )
    outputs = list(enumerate_outputs(max_len))
    decoder = SEARCHES.build(search, beam_size=32, max_len_a=0, max_len_b=max_len, **kw)
    for i in range(len(lens)):
        s, n = src[i : i + 1].expand(len(outputs), -1), lens[i : i + 1].expand(len(outputs))
        tgt = pad_sequence([torch.tensor(o) for o in outputs], batch_first=True)
        with torch.no_grad():
            logp = model.score(s, n, tgt)
        length = torch.tensor([len(o) for o in outputs])
        final = decoder.penalty(logp, length)
        best = int(final.argmax())
        assert out.nbest[i][0].tokens == outputs[best]
        assert out.nbest[i][0].score == pytest.approx(float(final[best]), abs=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_step_by_step_log_probs_equal_teacher_forcing(arch):
    model, (src, lens) = tiny_model(arch), sources()
    tgt = torch.randint(3, 12, (len(lens), 7))
    forced = model.token_log_probs(src, lens, tgt)  # (B, T)
    state = model.init_state(model.encode(src, lens), 1)
    prev = torch.full((len(lens),), model.bos_id)
    stepped = []
    for t in range(tgt.size(1)):
        log_probs, state = model.step(prev, state)
        stepped.append(log_probs.gather(1, tgt[:, t : t + 1]).squeeze(1))
        prev = tgt[:, t]
    torch.testing.assert_close(torch.stack(stepped, 1), forced, atol=1e-5, rtol=0)
