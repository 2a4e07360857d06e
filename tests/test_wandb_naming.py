"""W&B run names from Hydra overrides: distinct within a sweep, swept values first, and free of
the overrides that do not change what a run computes."""

from __future__ import annotations

from lab.loggers import run_name

FIXED = ["model=gru", "model.d_model=32", "threads=2", "logger=wandb", "eval.limit=10"]


def test_sweep_jobs_get_distinct_names_with_the_swept_values_first() -> None:
    names = []
    for beam in (1, 4, 8):
        job = [*FIXED, f"search.beam_size={beam}", "search=beam"]
        names.append(run_name(job, "default", swept={f"search.beam_size={beam}"}))
    assert names == [
        f"beam_size={beam},model=gru,d_model=32,limit=10,search=beam" for beam in (1, 4, 8)
    ]


def test_volatile_and_group_overrides_are_left_out() -> None:
    overrides = [
        "threads=4",
        "force=true",
        "logger=none",
        "logger.mode=offline",
        "data_dir=/data",
        "cache_dir=/cache",
        "hydra.run.dir=out",
        "+experiment=quickstart",
        "experiment_name=quickstart",
        "search=greedy",
    ]
    assert run_name(overrides, "default") == "search=greedy"


def test_no_result_changing_override_keeps_the_default_name() -> None:
    assert run_name(None, "toy_mt-transformer-beam") == "toy_mt-transformer-beam"
    assert run_name([], "toy_mt-transformer-beam") == "toy_mt-transformer-beam"
    assert run_name(["threads=1", "logger=wandb"], "dflt") == "dflt"


def test_dotted_keys_shorten_unless_that_makes_them_ambiguous() -> None:
    overrides = ["model.d_model=32", "task.tokenizer.vocab_size=200", "~eval.limit"]
    assert run_name(overrides, "x") == "d_model=32,vocab_size=200,~limit"
    clash = ["model.dropout=0.1", "train.dropout=0.3", "++search.beam_size=5"]
    assert run_name(clash, "x") == "model.dropout=0.1,train.dropout=0.3,beam_size=5"
