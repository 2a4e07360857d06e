"""One experiment: build the plugins a config names, train (or load) the model, decode, measure,
write the run's files and log to the tracker."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from lab import checkpoint as ckpt_mod
from lab.data import encode_examples
from lab.errors import LabError
from lab.evaluate import evaluate
from lab.io import cache_key, check_writable
from lab.loggers import open_logger
from lab.registry import MODELS, SEARCHES, TASKS
from lab.results import PREDICTIONS, RESULTS, read_results, write_json, write_jsonl
from lab.train import TrainSettings, train_or_load

VOLATILE_KEYS = ("force", "cache_dir", "data_dir", "logger", "threads")  # do not change results


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "decoding-lab"


def resolve_dirs(cfg: DictConfig) -> tuple[Path, Path]:
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    data = Path(cfg.data_dir).expanduser() if cfg.data_dir else cache / "data"
    return data, cache


def options(node: DictConfig, *drop: str) -> dict[str, Any]:
    """A plugin's keyword arguments: its config node without ``name`` (and ``drop``)."""
    d = OmegaConf.to_container(node, resolve=True)
    assert isinstance(d, dict)
    return {k: v for k, v in d.items() if k not in ("name", *drop)}


def build_task(cfg: DictConfig, data_dir: Path, cache_dir: Path):
    opts = options(cfg.task, "tokenizer")
    try:
        return TASKS.build(cfg.task.name, data_dir=data_dir, cache_dir=cache_dir, **opts)
    except TypeError as e:
        raise LabError(
            f"task={cfg.task.name} does not take these options ({e}); "
            f"see conf/task/{cfg.task.name}.yaml for its keys."
        ) from e


def build_search(cfg: DictConfig):
    try:
        return SEARCHES.build(cfg.search.name, **options(cfg.search))
    except TypeError as e:
        raise LabError(
            f"search={cfg.search.name} does not take these options ({e}); "
            f"see conf/search/{cfg.search.name}.yaml for its keys."
        ) from e


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in VOLATILE_KEYS}


def objective(cfg: DictConfig, metrics: dict[str, Any]) -> float:
    """The number a sweeper optimizes: ``eval.objective``, else BLEU or F1."""
    key = cfg.eval.objective or next((k for k in ("bleu", "f1", "em") if k in metrics), None)
    if key not in metrics:
        raise LabError(
            f"eval.objective={key} is not a metric of this run; "
            f"choose one of {', '.join(sorted(metrics))}."
        )
    return float(metrics[key])


def run(cfg: DictConfig, run_dir: Path, group: str | None = None, launcher: str = "basic") -> float:
    """Run the experiment described by ``cfg`` in ``run_dir``; returns its objective."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    previous = read_results(run_dir)
    if previous is not None and not cfg.force:
        if comparable(previous.get("config", {})) == comparable(config):
            print(f"skipping {run_dir}: already completed (set force=true to rerun)", flush=True)
            return objective(cfg, previous["metrics"])
        raise LabError(
            f"{run_dir} holds a completed run of another config; choose another "
            "hydra.run.dir / hydra.sweep.dir, or set force=true to overwrite it."
        )
    check_writable(run_dir, "run directory", "hydra.run.dir")
    (run_dir / RESULTS).unlink(missing_ok=True)
    try:
        return _run(cfg, config, run_dir, group, launcher)
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        try:
            write_json(
                run_dir / RESULTS, {"status": status, "error": str(e)[:500], "config": config}
            )
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        raise


def _run(
    cfg: DictConfig, config: dict[str, Any], run_dir: Path, group: str | None, launcher: str
) -> float:
    started = time.time()
    data_dir, cache_dir = resolve_dirs(cfg)
    check_writable(cache_dir, "cache directory", "cache_dir")
    threads = cfg.threads
    if not threads and launcher != "basic":  # parallel jobs: one thread each, or SLURM's share
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK") or 1)
    if threads:
        torch.set_num_threads(int(threads))
    device = torch.device(
        "cuda"
        if cfg.device == "auto" and torch.cuda.is_available()
        else ("cpu" if cfg.device == "auto" else cfg.device)
    )
    search = build_search(cfg)  # fail on a bad search setting before any training
    task = build_task(cfg, data_dir, cache_dir)
    if cfg.eval.batch_size < 1:
        raise LabError(f"eval.batch_size must be >= 1, got {cfg.eval.batch_size}.")
    from lab.tokenizer import load_or_train  # sentencepiece is only needed from here on

    split = cfg.eval.split or task.test_split
    examples = task.examples(split)
    if cfg.eval.limit:
        examples = examples[: int(cfg.eval.limit)]
    model_name, model_args = cfg.model.name, options(cfg.model)
    pretrained = getattr(MODELS.get(model_name), "pretrained", False)
    if pretrained:  # the model brings its own weights and tokenizer: nothing to train
        pre_model = ckpt_mod.build_model(model_name, model_args, 0, 0)
        tokenizer = pre_model.text_tokenizer()
        ckpt_path, trains = Path(str(model_args.get("name_or_path"))), False
    else:
        tok_cfg = cfg.task.tokenizer
        tokenizer = load_or_train(task, cache_dir, int(tok_cfg.vocab_size), str(tok_cfg.model_type))
        key_parts = {
            "task": task.signature(),
            "tokenizer": OmegaConf.to_container(tok_cfg),
            "model": {"name": model_name, **model_args},
            "train": OmegaConf.to_container(cfg.train),
            "seed": cfg.seed,
            "format": ckpt_mod.FORMAT,
        }
        ckpt_path = (
            Path(cfg.checkpoint).expanduser()
            if cfg.checkpoint
            else cache_dir / "checkpoints" / cache_key(key_parts) / "model.pt"
        )
        trains = not ckpt_path.exists()
    name = f"{cfg.task.name}-{model_name}-{cfg.search.name}"
    logger_cfg = options(cfg.logger) | {"name": cfg.logger.name}
    with open_logger(
        logger_cfg,
        run_dir=run_dir,
        name=name,
        group=group,
        job_type="train-eval" if trains else "eval",
        tags=[cfg.task.name, model_name, cfg.search.name],
        config=config,
    ) as lg:
        if pretrained:
            model, meta = pre_model, {"pretrained": str(ckpt_path)}
        elif cfg.checkpoint:
            model, meta = ckpt_mod.load_model(ckpt_path, model_name, model_args)
        else:
            vocab = (tokenizer.vocab_size, tokenizer.vocab_size)
            settings = TrainSettings(**OmegaConf.to_container(cfg.train))
            train_pairs = valid_pairs = []
            if trains:
                train_pairs = encode_examples(
                    task.examples(task.train_split), tokenizer, settings.max_len
                )
                # validated on the pairs training could see: same length limit
                valid_pairs = encode_examples(
                    task.examples(task.valid_split), tokenizer, settings.max_len
                )
            torch.manual_seed(cfg.seed)
            model, meta, _ = train_or_load(
                ckpt_path.parent,
                model_name,
                model_args,
                vocab,
                train_pairs,
                valid_pairs,
                settings,
                cfg.seed,
                device,
                lg.log,
                label=f"{model_name} on {cfg.task.name}",
            )
        model = model.to(device)
        pairs = encode_examples(examples, tokenizer)
        result = evaluate(
            model,
            search,
            examples,
            pairs,
            tokenizer,
            task.default_metrics,
            cfg.eval.batch_size,
            device,
            save_nbest=bool(cfg.eval.save_nbest) or getattr(search, "nbest", 1) > 1,
        )
        write_jsonl(run_dir / PREDICTIONS, result.predictions)
        metrics = result.metrics
        value = objective(cfg, metrics)
        results = {
            "status": "completed",
            "task": cfg.task.name,
            "model": model_name,
            "search": cfg.search.name,
            "split": split,
            "config": config,
            "metrics": metrics,
            "n_examples": len(result.predictions),
            "checkpoint": str(ckpt_path),
            "train": meta,
            "objective": value,
            "seconds": time.time() - started,
        }
        write_json(run_dir / RESULTS, results)
        lg.summary({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        rows = result.predictions[: int(cfg.logger.get("log_predictions", 0) or 0)]
        if rows:
            cols = ["id", "src", "ref", "hyp", "logprob", "length"]
            lg.log_table("predictions", cols, [[str(r[c]) for c in cols] for r in rows])
    summary = ", ".join(
        f"{k}={metrics[k]:.2f}" for k in ("bleu", "chrf", "em", "f1", "len_ratio") if k in metrics
    )
    print(f"{name}: {summary} ({len(result.predictions)} examples) -> {run_dir}", flush=True)
    return value
