"""Tiny random Hugging Face models behind the lab's interface, and ``generate`` on the same
sentences, shared by the ``model=hf`` tests and the toolkit-preset parity tests. Nothing here
imports ``transformers`` before a fixture runs: a test module that needs it skips first
(``pytest.importorskip``).
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

import lab.models.hf  # noqa: F401  (registers model=hf)
from lab.registry import MODELS
from tests.helpers.model_checks import HF_V, tiny_hf

V = HF_V
LENGTHS = (6, 2, 9, 4, 7, 3, 5, 8)
MAX_LEN = 12


def _save_tokenizer(path) -> None:
    """A word-level tokenizer over the Marian model's ids: ``w3 w4`` -> ``[3, 4, </s>]``."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"</s>": 0, "<unk>": 1, **{f"w{i}": i for i in range(2, V - 1)}, "<pad>": V - 1}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 0)]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(path)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Tiny random Marian (pad=decoder start=49, eos=0) and GPT-2 (bos=eos=1, no pad) models.

    Both get a moderate EOS bias so that outputs end at various lengths.
    """
    marian = tiny_hf("marian").eval()
    with torch.no_grad():
        marian.final_logits_bias[0, 0] += 3.0
    gpt2 = tiny_hf("gpt2").eval()
    with torch.no_grad():
        direction = torch.full((16,), 0.25)
        gpt2.transformer.ln_f.bias.copy_(direction)
        gpt2.transformer.wte.weight[1] += direction  # tied with the output layer
    root = tmp_path_factory.mktemp("hf")
    marian.save_pretrained(root / "marian")
    _save_tokenizer(root / "marian")
    gpt2.save_pretrained(root / "gpt2")
    return {"marian": str(root / "marian"), "gpt2": str(root / "gpt2")}


@pytest.fixture(scope="module")
def models(model_dirs):
    return {name: MODELS.build("hf", name_or_path=path) for name, path in model_dirs.items()}


def batch(model, lengths=LENGTHS, seed=1):
    """Right-padded lab batch (``model.pad_id``) of random word ids, and its lengths."""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(3, V - 2, (n,), generator=g) for n in lengths]
    return pad_sequence(seqs, batch_first=True, padding_value=model.pad_id), torch.tensor(lengths)


def generate(model, src, lengths, **kw):
    """``model.hf.generate`` on the same sentences (left-padded for a causal LM), as token tuples
    without the decoder start token or prompt, cut after the first EOS."""
    b, s = src.shape
    real = torch.arange(s)[None, :] < lengths[:, None]  # (B, S)
    if model.is_seq2seq:
        ids, mask, skip = model._to_hf(src), real.long(), 1
    else:
        ids = torch.full_like(src, model.eos_id)
        mask = torch.zeros_like(src)
        for i, n in enumerate(lengths.tolist()):
            ids[i, s - n :], mask[i, s - n :] = src[i, :n], 1
        skip = s
    banned = [t for t in {model.pad_id, model.bos_id} if t < model.hf_vocab_size]
    out = model.hf.generate(
        input_ids=ids,
        attention_mask=mask,
        do_sample=False,
        suppress_tokens=banned or None,
        pad_token_id=model.eos_id if model.virtual else model.pad_id,
        return_dict_in_generate=True,
        output_scores=True,
        **kw,
    )
    seqs = []
    for row in out.sequences[:, skip:].tolist():
        seqs.append(tuple(row[: row.index(model.eos_id) + 1] if model.eos_id in row else row))
    return seqs, out
