"""The levers measured and not shipped (``lab.bench.tried``) compute what the shipped code
computes, to float tolerance, and leave the code as it was once switched off: the levers table
times the same arithmetic, and a measurement never leaks into the next one."""

import torch

from lab.bench.common import MODES, build_transformer, fixed_length, random_batch
from lab.bench.tried import TRIED_STEP
from lab.registry import SEARCHES

S = MODES["tiny"]


def _steps(model, src, lens, n=4):
    """The log-probs ``(n, B, V)`` of ``n`` cached steps fed fixed tokens."""
    feed = torch.arange(4, 4 + n)
    with torch.inference_mode():
        state = model.init_state(model.encode(src, lens), 1)
        prev, out = torch.full((src.size(0),), model.bos_id), []
        for t in range(n):
            lp, state = model.step(prev, state)
            out.append(lp)
            prev = feed[t].expand(src.size(0))
    return torch.stack(out)


def test_fused_qkv_computes_the_same_log_probs():
    model = build_transformer(S)
    src, lens = random_batch(S, S.vocab, model.pad_id)
    plain = _steps(model, src, lens)
    with TRIED_STEP["fused_qkv"][1]():
        tried = _steps(model, src, lens)
    assert torch.allclose(tried, plain, atol=1e-5)
    assert torch.equal(_steps(model, src, lens), plain)  # switched off again


def test_the_in_place_ban_keeps_beam_and_greedy_outputs():
    model = build_transformer(S)
    src, lens = random_batch(S, S.vocab, model.pad_id)
    fixed = fixed_length(S.out_len, model.eos_id)
    for search in (SEARCHES.build("greedy", **fixed), SEARCHES.build("beam", beam_size=3, **fixed)):
        with torch.inference_mode():
            plain = search(model, src, lens).best()
            with TRIED_STEP["inplace_ban"][1]():
                tried = search(model, src, lens).best()
        assert [h.tokens for h in tried] == [h.tokens for h in plain]
        assert all(len(h.tokens) == S.out_len for h in tried)
