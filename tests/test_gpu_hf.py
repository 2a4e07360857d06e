"""``model=hf`` on the decode device: the lab's greedy and beam search give ``generate``'s
outputs on the tiny Marian (seq2seq) and GPT-2 (causal) builds of ``tests/test_hf.py``, with
both run on the same device. ``cpu`` in the normal suite (one case each), ``cuda`` under
``pytest -m gpu``."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

import lab  # noqa: E402,F401  (registers the searches)
import lab.models.hf  # noqa: E402,F401  (registers model=hf)
from lab.registry import MODELS, SEARCHES  # noqa: E402
from tests.helpers.devices import ATOL, grid  # noqa: E402
from tests.helpers.hf_models import MAX_LEN, batch, generate  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
ARCHS = ["marian", "gpt2"]
CASES = [(a, s) for a in ARCHS for s in ("greedy", "beam")]


def on_device(path: str, dev: str):
    """The lab model and its source batch on ``dev``."""
    model = MODELS.build("hf", name_or_path=path).to(dev)
    src, lens = batch(model)
    return model, src.to(dev), lens.to(dev)


def device_generate(model, src, lens, **kw):
    """``tests.test_hf.generate`` (which builds its masks on the CPU) with the batch's tensors
    moved to the model's device inside ``generate``."""
    dev = src.device
    real_generate = model.hf.generate

    def moved(**args):
        return real_generate(**{k: v.to(dev) if torch.is_tensor(v) else v for k, v in args.items()})

    model.hf.generate = moved
    try:
        return generate(model, src.cpu(), lens.cpu(), **kw)
    finally:
        del model.hf.generate


@grid("arch,search", [("marian", "beam"), ("gpt2", "greedy")], CASES)
def test_lab_search_equals_generate_on_the_device(model_dirs, dev, arch, search):  # noqa: F811
    model, src, lens = on_device(model_dirs[arch], dev)
    if search == "greedy":
        out = SEARCHES.build("greedy", max_len_a=0, max_len_b=MAX_LEN)(model, src, lens)
        ref, _ = device_generate(model, src, lens, num_beams=1, max_new_tokens=MAX_LEN)
        assert [h.tokens for h in out.best()] == ref
        return
    lab_beam = SEARCHES.build(
        "beam_lp", beam_size=4, nbest=4, penalty="average", alpha=1.0, stop_rule="heuristic",
        max_len_a=0, max_len_b=MAX_LEN,
    )  # fmt: skip
    out = lab_beam(model, src, lens)
    ref, raw = device_generate(
        model, src, lens, num_beams=4, num_return_sequences=4, max_new_tokens=MAX_LEN,
        early_stopping=False, length_penalty=1.0,
    )  # fmt: skip
    assert [h.tokens for nb in out.nbest for h in nb] == ref
    scores = torch.tensor([h.score for nb in out.nbest for h in nb])
    torch.testing.assert_close(scores, raw.sequences_scores.float().cpu(), atol=ATOL, rtol=0)
