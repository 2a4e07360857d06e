"""``model=hf``: tiny random Hugging Face models (built from configs, saved to a temporary
directory) behind the lab's interface agree with teacher forcing and with ``generate``."""

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

transformers = pytest.importorskip("transformers")

import lab  # noqa: E402,F401  (registers the searches)
import lab.models.hf  # noqa: E402,F401  (registers model=hf)
from lab.registry import MODELS, SEARCHES  # noqa: E402
from tests.helpers.hf_models import MAX_LEN, V, batch, generate  # noqa: E402

# HF early_stopping -> the lab's stop rule that reproduces it
STOP_RULES = [(True, "first_k"), (False, "heuristic"), ("never", "canonical")]
pytestmark = pytest.mark.usefixtures("one_thread")


def forced(model, length):
    """Lab search arguments and generate arguments that force ``length`` output tokens."""
    lab_kw = {"processors": [{"name": "min_length", "min_len": length, "eos_id": model.eos_id}]}
    return lab_kw, {"min_new_tokens": length - 1}


ARCHS = ["marian", "gpt2"]


def test_token_ids_come_from_the_model_config(models):
    marian, gpt2 = models["marian"], models["gpt2"]
    assert (marian.pad_id, marian.bos_id, marian.eos_id) == (V - 1, V - 1, 0)
    assert not marian.virtual and marian.grouped_cross
    # GPT-2 has no pad token and BOS == EOS: pad/bos become a virtual id past the vocabulary
    assert (gpt2.pad_id, gpt2.bos_id, gpt2.eos_id) == (V, V, 1)
    src, lens = batch(gpt2)
    log_probs, _ = gpt2.step(
        torch.full((len(lens),), gpt2.bos_id), gpt2.init_state(gpt2.encode(src, lens), 1)
    )
    assert log_probs.shape == (len(lens), V + 1)
    assert torch.isneginf(log_probs[:, V]).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_step_by_step_log_probs_equal_teacher_forcing(models, arch):
    model = models[arch]
    src, lens = batch(model)
    tgt = torch.randint(3, V - 2, (len(lens), 7), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        teacher = model.token_log_probs(src, lens, tgt)  # (B, T)
        state = model.init_state(model.encode(src, lens), 1)
        prev, stepped = torch.full((len(lens),), model.bos_id), []
        for t in range(tgt.size(1)):
            log_probs, state = model.step(prev, state)
            stepped.append(log_probs.gather(1, tgt[:, t : t + 1]).squeeze(1))
            prev = tgt[:, t]
    torch.testing.assert_close(torch.stack(stepped, 1), teacher, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("fixed", [False, True], ids=["natural", "fixed_length"])
@pytest.mark.parametrize("forced_eos", [False, True], ids=["plain", "forced_eos"])
def test_greedy_equals_generate(models, arch, fixed, forced_eos):
    """With ``forced_eos`` the ``forced_eos`` processor is HF's ``forced_eos_token_id``."""
    model = models[arch]
    src, lens = batch(model)
    lab_kw, hf_kw = forced(model, 7) if fixed else ({"processors": []}, {})
    limit = 7 if fixed else MAX_LEN
    if forced_eos:
        lab_kw["processors"].append({"name": "forced_eos", "max_len": limit})
        hf_kw["forced_eos_token_id"] = model.eos_id
    out = SEARCHES.build("greedy", max_len_a=0, max_len_b=limit, **lab_kw)(model, src, lens)
    ref, _ = generate(model, src, lens, num_beams=1, max_new_tokens=limit, **hf_kw)
    assert [h.tokens for h in out.best()] == ref
    lengths = {len(h.tokens) for h in out.best()}
    if fixed:
        assert lengths == {7}
    else:  # lengths vary: EOS and the length limit both end sentences
        assert len(lengths) > 2 and MAX_LEN in lengths
    if forced_eos:  # nothing is cut at the limit: every output ends with EOS
        assert all(h.finished for h in out.best())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("early_stopping", "stop_rule"), STOP_RULES)
@pytest.mark.parametrize("fixed", [False, True], ids=["natural", "fixed_length"])
@pytest.mark.parametrize("forced_eos", ["off", "zero"], ids=["plain", "forced_eos"])
def test_beam_equals_generate(models, arch, early_stopping, stop_rule, fixed, forced_eos):
    """The lab's ``average`` penalty (length counts generated tokens, EOS included) and stop rules
    reproduce HF beam search: n-best tokens and penalized scores; ``forced_eos=zero`` is HF's
    ``forced_eos_token_id`` (MarianConfig's default): at the limit only EOS, which adds 0."""
    model = models[arch]
    src, lens = batch(model)
    lab_kw, hf_kw = forced(model, 7) if fixed else ({}, {})
    limit = 7 if fixed else MAX_LEN
    if forced_eos == "zero":
        hf_kw["forced_eos_token_id"] = model.eos_id
    search = SEARCHES.build(
        "beam_lp",
        beam_size=4,
        nbest=4,
        penalty="average",
        alpha=1.0,
        stop_rule=stop_rule,
        max_len_a=0,
        max_len_b=limit,
        forced_eos=forced_eos,
        **lab_kw,
    )
    out = search(model, src, lens)
    ref, raw = generate(
        model,
        src,
        lens,
        num_beams=4,
        num_return_sequences=4,
        max_new_tokens=limit,
        early_stopping=early_stopping,
        length_penalty=1.0,
        **hf_kw,
    )
    assert [h.tokens for nb in out.nbest for h in nb] == ref
    scores = torch.tensor([h.score for nb in out.nbest for h in nb])
    torch.testing.assert_close(scores, raw.sequences_scores, atol=1e-4, rtol=0)
    if not fixed:
        assert len({len(h.tokens) for h in out.best()}) > 1
    if forced_eos == "zero":  # nothing is cut at the limit: every hypothesis ends with EOS
        assert all(h.finished for nb in out.nbest for h in nb)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam_lp"])
def test_reported_logprob_is_the_model_score(models, arch, search):
    model = models[arch]
    src, lens = batch(model)
    kw = {} if search == "greedy" else {"beam_size": 4, "nbest": 3, "penalty": "average"}
    out = SEARCHES.build(search, max_len_a=0, max_len_b=MAX_LEN, **kw)(model, src, lens)
    for rank in range(len(out.nbest[0])):
        hyps = [nb[rank] for nb in out.nbest]
        tgt = pad_sequence(
            [torch.tensor(h.tokens) for h in hyps], batch_first=True, padding_value=model.pad_id
        )
        with torch.inference_mode():
            scored = model.score(src, lens, tgt)
        got = torch.tensor([h.logprob for h in hyps])
        torch.testing.assert_close(got, scored, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch(models, arch, search):
    model = models[arch]
    src, lens = batch(model, lengths=(3, 9, 5, 7))
    kw = {} if search == "greedy" else {"beam_size": 3, "nbest": 3}
    decode = SEARCHES.build(search, max_len_a=0, max_len_b=MAX_LEN, **kw)
    together = decode(model, src, lens).nbest
    for i in range(len(lens)):
        alone = decode(model, src[i : i + 1, : lens[i]], lens[i : i + 1]).nbest[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]
        assert [h.logprob for h in alone] == pytest.approx(
            [h.logprob for h in together[i]], abs=1e-4
        )


def test_cross_attention_is_kept_once_per_sentence(models):
    model = models["marian"]
    src, lens = batch(model)
    k, n = 4, len(lens)
    prev = torch.randint(3, V - 2, (n * k,), generator=torch.Generator().manual_seed(3))
    results = []
    with torch.inference_mode():
        for grouped in (True, False):
            model.grouped_cross = grouped
            try:
                state = model.init_state(model.encode(src, lens), k)
                _, state = model.step(torch.full((n * k,), model.bos_id), state)
                lead = (n,) if grouped else (n, k)  # per sentence, or copied per beam once
                assert state.shared["ck"][0].shape[: len(lead)] == lead
                assert state.hyp["k"][0].size(0) == n * k
                within = torch.tensor([3, 0, 2, 1])  # a permutation of each sentence's beams
                rows = (torch.arange(n)[:, None] * k + within[None, :]).reshape(-1)  # (n*K,)
                state = model.reorder(state, rows)
                log_probs, state = model.step(prev, state)
                results.append(log_probs)
            finally:
                model.grouped_cross = True
    torch.testing.assert_close(results[0], results[1], atol=1e-5, rtol=0)


def test_encode_text_and_decode_ids_use_the_model_tokenizer(models):
    model = models["marian"]
    src, lens = model.encode_text(["w3 w4 w5", "w7"])
    assert src.tolist() == [[3, 4, 5, 0], [7, 0, model.pad_id, model.pad_id]]
    assert lens.tolist() == [4, 2]
    assert model.decode_ids([3, 4, 0, 9]) == "w3 w4"
    assert models["gpt2"].tokenizer is None  # no tokenizer files were saved


def test_from_pretrained_and_unknown_paths(model_dirs, tmp_path):
    from lab.errors import LabError
    from lab.models.hf import HFModel

    model = HFModel.from_pretrained(model_dirs["gpt2"])
    assert model.eos_id == 1 and not model.is_seq2seq
    built = MODELS.build("hf", 123, 456, name_or_path=model_dirs["gpt2"])  # vocab sizes ignored
    assert built.tgt_vocab_size == V + 1
    with pytest.raises(LabError):
        HFModel(name_or_path=str(tmp_path / "missing"))


def test_lab_run_decodes_a_squad_file_with_a_pretrained_model_and_its_tokenizer(
    model_dirs, tmp_path
):
    """model=hf skips training and tokenizer training: the pipeline reads text with the model's
    own tokenizer and scores SQuAD-format answers."""
    import json
    import os
    import subprocess
    import sys

    squad = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "w5 w6 w7 w8",
                        "qas": [
                            {
                                "id": f"q{i}",
                                "question": f"w{3 + i} w4 ?",
                                "answers": [{"text": "w5 w6", "answer_start": 0}],
                            }
                            for i in range(4)
                        ],
                    }
                ],
            }
        ]
    }
    (tmp_path / "s.json").write_text(json.dumps(squad))
    env = {**os.environ, "LAB_CACHE_DIR": str(tmp_path / "cache"), "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            "task=squad",
            f"task.path={tmp_path / 's.json'}",
            "model=hf",
            f"model.name_or_path={model_dirs['marian']}",
            "search=beam",
            "search.max_len_a=0",
            "search.max_len_b=6",
            "logger=none",
            "threads=1",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["status"] == "completed" and res["n_examples"] == 4
    assert {"em", "f1"} <= set(res["metrics"])
    assert not (tmp_path / "cache" / "tokenizers").exists()
    assert not (tmp_path / "cache" / "checkpoints").exists()
