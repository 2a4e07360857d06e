"""The empty output's log-prob (EOS alone) on every test2016 sentence, beside the mode's.

How far the empty translation is from being the mode, which is what it is for half of the
sentences in Stahlberg & Byrne (2019). Loads the cached checkpoint of the search_errors
experiment and scores EOS alone per source with ``model.score``; reads the mode's score from
the exact run. Run from the project root after the exact run:

    LAB_DATA_DIR=../shared/data python reports/search_errors/empty_output.py
"""

import json
import statistics

import torch
from hydra import compose, initialize_config_dir

from lab.app import CONF_DIR
from lab.data import encode_examples, pad
from lab.model_cache import locate_model
from lab.pipeline import build_task, eval_examples, resolve_dirs

EXACT = "multirun/search_errors/search=exact/predictions.jsonl"


def main() -> None:
    torch.set_num_threads(1)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=search_errors", "logger=none"])
    data_dir, cache_dir = resolve_dirs(cfg)
    task = build_task(cfg, data_dir, cache_dir)
    _, examples = eval_examples(cfg, task)
    source = locate_model(cfg, task, cache_dir, torch.device("cpu"))
    model, _ = source.obtain(cfg, task, torch.device("cpu"), lambda *a, **k: None)
    model.eval()
    pairs = encode_examples(examples, source.tokenizer)
    empty: dict[str, float] = {}
    with torch.inference_mode():
        for i in range(0, len(pairs), 100):
            batch = pairs[i : i + 100]
            src, src_len = pad([p.src for p in batch])  # (B, S), (B,)
            tgt = torch.full((len(batch), 1), model.eos_id)  # (B, 1): EOS alone
            scores = model.score(src, src_len, tgt, torch.ones(len(batch), dtype=torch.long))
            for p, s in zip(batch, scores.tolist(), strict=True):
                empty[str(examples[p.index].id)] = s
    with open(EXACT) as f:
        mode = {str(r["id"]): r["logprob"] for r in map(json.loads, f)}
    gap = [mode[k] - v for k, v in empty.items()]
    print(
        f"empty output log-prob: median {statistics.median(empty.values()):.2f}, "
        f"max {max(empty.values()):.2f}; mode minus empty: median {statistics.median(gap):.2f}, "
        f"min {min(gap):.2f} ({len(gap)} sentences)"
    )


if __name__ == "__main__":
    main()
