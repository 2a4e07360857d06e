"""search=constrained_beam: outputs contain their include-phrases (dynamic beam allocation),
checked against enumeration of the outputs that meet them on every architecture."""

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from lab.registry import SEARCHES
from lab.search.beam.lexical import Phrases, allocate, progress
from lab.search.contracts import call_search
from lab.search.types import Constraints
from lab.vocab import EOS_ID
from tests.helpers.brute_force import enumerate_outputs
from tests.helpers.models import ARCHS, sources, tiny_model


def contains(seq, phrase) -> bool:
    n = len(phrase)
    return any(tuple(seq[i : i + n]) == tuple(phrase) for i in range(len(seq) - n + 1))


def test_progress_counts_met_and_begun_constraint_tokens():
    phrases = Phrases([[(3, 4), (5,)]], torch.device("cpu"))
    tokens = torch.tensor([[6, 3], [5, 6]])  # row 0 began (3, 4); row 1 contains (5,)
    banks, met = progress(tokens, phrases, k=2, vocab=7)
    assert banks[0].tolist() == [0, 0, 0, 1, 2, 1, 0]  # 3: restarts (3,4); 4: completes it; 5: (5,)
    assert banks[1].tolist() == [1, 1, 1, 2, 1, 1, 1]  # only 3 begins (3, 4)
    assert met.tolist() == [False, False]


def test_allocation_stripes_over_banks_best_first():
    scores = torch.tensor([[-1.0, -2.0, -3.0, -4.0, -5.0, float("-inf")]])
    banks = torch.tensor([[0, 0, 0, 1, 2, 2]])
    assert allocate(scores, banks, 4).tolist() == [[4, 3, 0, 1]]  # bank 2, 1, 0, then 0 again


PHRASES = [((4, 3),), ((3,), (4, 4)), ((4,),)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("phrases", PHRASES)
def test_a_beam_covering_the_space_finds_the_best_output_meeting_the_constraints(arch, phrases):
    vocab, max_len = 5, 4
    model = tiny_model(arch, vocab=vocab, seed=3)
    src, lens = sources(vocab=vocab, lengths=(4, 2))
    decoder = SEARCHES.build("constrained_beam", beam_size=32, max_len_a=0, max_len_b=max_len)
    cons = [Constraints(include=phrases)] * 2
    out = call_search(decoder, model, src, lens, constraints=cons)
    outputs = [
        o for o in enumerate_outputs(max_len)
        if o[-1] == EOS_ID and all(contains(o, p) for p in phrases)
    ]  # fmt: skip
    tgt = pad_sequence([torch.tensor(o) for o in outputs], batch_first=True)
    for i in range(len(lens)):
        s, n = src[i : i + 1].expand(len(outputs), -1), lens[i : i + 1].expand(len(outputs))
        with torch.no_grad():
            logp = model.score(s, n, tgt)  # (O,)
        best, hyp = int(logp.argmax()), out.nbest[i][0]
        assert hyp.tokens == outputs[best] and hyp.finished
        assert hyp.logprob == pytest.approx(float(logp[best]), abs=1e-4)
        assert hyp.info == {"constraints_met": True}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_finished_output_meets_its_constraints_and_scores_as_the_model(arch):
    vocab = 9
    model, (src, lens) = tiny_model(arch, vocab=vocab), sources(vocab=vocab)
    cons = [
        Constraints(include=((5, 6),)),
        Constraints((7,), include=((3,), (8, 8))),
        None,
        Constraints(include=((4, 5, 6),)),
    ]
    decoder = SEARCHES.build("constrained_beam", beam_size=4, nbest=3, max_len_b=8)
    out = call_search(decoder, model, src, lens, constraints=cons)
    for i, c in enumerate(cons):
        phrases = c.include if c else ()
        for h in out.nbest[i]:
            meets = all(contains(h.tokens, p) for p in phrases)
            assert h.info["constraints_met"] == meets
            assert meets or not h.finished
            assert h.tokens[: len(c.prefix) if c else 0] == (c.prefix if c else ())
        tgt = pad_sequence([torch.tensor(h.tokens) for h in out.nbest[i]], batch_first=True)
        m = len(out.nbest[i])
        want = model.score(src[i : i + 1].expand(m, -1), lens[i : i + 1].expand(m), tgt)
        got = torch.tensor([h.logprob for h in out.nbest[i]])
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_a_phrase_that_cannot_fit_is_reported_unmet():
    model, (src, lens) = tiny_model("gru", vocab=6), sources(vocab=6, lengths=(3,))
    decoder = SEARCHES.build("constrained_beam", beam_size=3, max_len_a=0, max_len_b=3)
    cons = [Constraints(include=((3, 4, 5, 3),))]
    hyp = call_search(decoder, model, src, lens, constraints=cons).nbest[0][0]
    assert not hyp.finished and hyp.info == {"constraints_met": False} and hyp.length == 3
