"""Transformer encoder-decoder: inputs past the position table fail with a one-line fix; a
block of tokens is decoded in one pass (its equality with step by step is checked for every
variant by ``test_model_interface``)."""

import pytest
import torch

from lab.config_checks import check_facts_option
from lab.errors import LabError
from lab.registry import MODELS
from lab.vocab import EOS_ID, SEP_ID


def test_inputs_longer_than_the_position_table_name_the_setting_to_raise():
    model = MODELS.build(
        "transformer",
        10,
        10,
        d_model=16,
        n_heads=2,
        enc_layers=1,
        dec_layers=1,
        d_ff=32,
        max_positions=8,
    ).eval()
    fits, lens = torch.full((1, 8), 4), torch.tensor([8])
    assert model(fits, lens, fits).shape == (1, 8, 10)  # exactly the table: fine
    too_long = torch.full((1, 9), 4)
    with pytest.raises(LabError, match=r"9 positions exceed model.max_positions=8"):
        model(too_long, torch.tensor([9]), fits)
    with pytest.raises(LabError, match=r"model.max_positions=8; raise it"):
        model(fits, lens, too_long)


def test_a_block_is_one_pass_through_each_decoder_layer_at_the_absolute_positions():
    """``step_block`` runs each layer once for the whole block (one self-attention query
    projection per layer), and a block that would pass the position table fails as a step
    there would, naming the setting; one that ends on the table's last position decodes."""
    torch.manual_seed(0)
    opts = dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=2, d_ff=32, max_positions=6)
    model = MODELS.build("transformer", 10, 10, **opts).eval()
    src, lens = torch.full((2, 3), 4), torch.tensor([3, 2])
    calls = []
    for layer in model.decoder:
        layer.self_attn.q.register_forward_hook(lambda *_: calls.append(1))
    state = model.init_state(model.encode(src, lens), 1)
    with torch.no_grad():
        log_probs, states = model.step_block(torch.full((2, 4), 5), state)
        assert log_probs.shape == (2, 4, 10) and len(calls) == 2
        assert [s.step for s in states] == [1, 2, 3, 4]
        with pytest.raises(LabError, match=r"7 positions exceed model.max_positions=6; raise it"):
            model.step_block(torch.full((2, 3), 5), states[-1])
        assert model.step_block(torch.full((2, 2), 5), states[-1])[0].shape == (2, 2, 10)


# --- an encoder over facts (model.facts=true, bAbI) ------------------------------------------
def facts_model(**options) -> torch.nn.Module:
    torch.manual_seed(0)
    opts = dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, dropout=0.0)
    return MODELS.build("transformer", 12, 12, facts=True, **{**opts, **options}).eval()


def encode(model, *sources: list[int]) -> dict[str, torch.Tensor]:
    """The encoder's output for right-padded ``sources``."""
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sources], batch_first=True)
    with torch.no_grad():
        return model.encode(src, torch.tensor([len(s) for s in sources]))


def test_the_fact_encoder_gives_one_memory_vector_per_separated_fact():
    """``a b <sep> c <sep> q ?``: three facts; padding facts of a shorter source are masked."""
    out = encode(facts_model(copy=True), [5, 6, SEP_ID, 7, SEP_ID, 8, 9, EOS_ID], [5, 6, EOS_ID])
    assert out["memory"].shape == (2, 3, 16)
    assert out["src_mask"][:, 0, 0].tolist() == [[True, True, True], [True, False, False]]
    # the copy head copies tokens: separators and padding are not copyable
    assert out["copy_mask"][0].tolist() == [True, True, False, True, False, True, True, True]
    assert out["copy_mask"][1].tolist() == [True] * 3 + [False] * 5


def test_a_fact_is_a_bag_of_words_under_a_learned_mask_per_position():
    """At initialization the mask is all ones: swapping two words inside a fact changes
    nothing, swapping words across facts does. A trained mask makes word order count."""
    model = facts_model()
    story = [5, 6, SEP_ID, 7, 8, SEP_ID, 9, EOS_ID]
    inside = [6, 5, SEP_ID, 7, 8, SEP_ID, 9, EOS_ID]
    across = [5, 7, SEP_ID, 6, 8, SEP_ID, 9, EOS_ID]
    base = encode(model, story)["memory"]
    torch.testing.assert_close(encode(model, inside)["memory"], base)
    assert not torch.allclose(encode(model, across)["memory"], base)
    with torch.no_grad():
        model.word_mask.normal_()
    assert not torch.allclose(encode(model, inside)["memory"], encode(model, story)["memory"])


def test_the_newest_fact_is_told_apart_from_older_ones_by_recency():
    """The same two facts in the other order encode differently (recency embeddings)."""
    model = facts_model()
    ab = encode(model, [5, SEP_ID, 6, SEP_ID, 9, EOS_ID])["memory"]
    ba = encode(model, [6, SEP_ID, 5, SEP_ID, 9, EOS_ID])["memory"]
    assert not torch.allclose(ab[:, -1], ba[:, -1])  # the question reads them differently


def test_more_facts_than_the_recency_table_name_the_settings_to_change():
    model = facts_model(max_positions=4)
    with pytest.raises(LabError) as e:
        encode(model, [5, SEP_ID] * 4 + [9, EOS_ID])
    assert "\n" not in str(e.value)
    assert "model.max_positions=4" in str(e.value) and "task.max_facts" in str(e.value)


def test_a_source_of_separators_only_encodes_without_nan():
    out = encode(facts_model(copy=True), [SEP_ID, SEP_ID, EOS_ID], [SEP_ID])
    assert out["memory"].isfinite().all()


@pytest.mark.parametrize(
    ("model", "task", "fix"),
    [
        ({"name": "gru", "facts": True}, {"name": "babi", "facts": True}, "model=transformer"),
        ({"name": "transformer", "facts": True}, {"name": "babi"}, "task.facts=true"),
        ({"name": "transformer", "facts": True}, {"name": "multi30k"}, "task=babi"),
    ],
)
def test_the_config_check_refuses_a_fact_encoder_without_facts(model, task, fix):
    with pytest.raises(LabError) as e:
        check_facts_option(model, task)
    assert "\n" not in str(e.value) and fix in str(e.value)
    check_facts_option({**model, "facts": False}, task)  # the default passes everywhere
