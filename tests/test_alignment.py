"""``eval.save_attention=true``: each output's cross-attention, fed back through ``step``, is
the attention the model had at each step of that output, sentence by sentence in a padded
batch; a run writes it into ``predictions.jsonl``; a model without cross-attention is refused
in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import lab.search  # noqa: F401  (registers the searches)
from lab.alignment import attention_of, check_save_attention
from lab.errors import LabError
from lab.registry import SEARCHES
from tests.helpers.lab_process import lab, ok, tiny
from tests.helpers.models import sources, tiny_model


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("arch", ["transformer", "gru"])
def test_each_output_is_aligned_as_decoded_alone(arch: str) -> None:
    model, (src, lengths) = tiny_model(arch), sources(5)
    outputs = [h.tokens for h in SEARCHES.build("beam", beam_size=3)(model, src, lengths).best()]
    mats = attention_of(model, src, lengths, outputs)
    for b, (out, m) in enumerate(zip(outputs, mats, strict=True)):
        n = int(lengths[b])
        assert m.shape == (len(out), n)
        torch.testing.assert_close(m.sum(1), torch.ones(len(out)), atol=1e-5, rtol=0)
        state = model.init_state(model.encode(src[b : b + 1, :n], lengths[b : b + 1]), 1)
        state, prev = state.asking_attention(), model.bos_id
        for t, tok in enumerate(out):
            _, state = model.step(torch.tensor([prev]), state)
            torch.testing.assert_close(m[t], state.attention[0], atol=1e-5, rtol=0)
            prev = tok


def test_an_empty_output_has_an_empty_alignment() -> None:
    model, (src, lengths) = tiny_model("transformer"), sources(5, lengths=(3, 2))
    mats = attention_of(model, src, lengths, [(), ()])
    assert [m.shape for m in mats] == [(0, 3), (0, 2)]


@pytest.mark.parametrize(
    ("arch", "changes"), [("decoder_only", {}), ("gru", {"attention": "none"})]
)
def test_a_model_without_cross_attention_is_refused_in_one_line(arch: str, changes: dict) -> None:
    with pytest.raises(
        LabError, match="eval.save_attention needs the model's cross-attention"
    ) as e:
        check_save_attention(tiny_model(arch, **changes))
    assert "\n" not in str(e.value) and "transformer" in str(e.value)


def test_a_run_writes_each_outputs_alignment(root: Path, trained: Path) -> None:
    run_dir = root / "aligned"
    overrides = tiny(eval__limit=3, eval__save_attention="true", search="beam")
    ok(
        lab(
            [
                "run",
                *overrides,
                "search.coverage=wu",
                "search.beta=0.2",
                f"hydra.run.dir={run_dir}",
            ],
            root,
            trained,
        )
    )
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        a = row["attention"]
        assert len(a["weights"]) == len(a["tgt"]) == row["length"]
        assert all(len(w) == len(a["src"]) for w in a["weights"]) and a["src"][-1] == "</s>"
        assert all(sum(w) == pytest.approx(1.0, abs=0.01) for w in a["weights"])
        assert row["coverage_penalty"] >= 0.0
