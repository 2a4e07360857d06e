"""One experiment, top-down: build the plugins a config names, obtain the model (pretrained,
given, cached or trained), decode a split, score it, record the run's files and log them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from lab.config_checks import check_config
from lab.data import encode_examples
from lab.errors import LabError
from lab.evaluate import Evaluation, evaluate
from lab.io import check_writable
from lab.loggers import open_logger
from lab.model_cache import ModelSource, locate_model
from lab.models.quantize import quantize
from lab.precision import decoding_precision
from lab.registry import SEARCHES, TASKS
from lab.results import (
    LOCK,
    PREDICTIONS,
    RESULTS,
    Interrupted,
    read_results,
    write_json,
    write_jsonl,
)
from lab.search.contracts import nbest_of, settings_of
from lab.tasks.base import Example, Task

VOLATILE_KEYS = ("force", "cache_dir", "data_dir", "logger", "threads")  # do not change results


def run(cfg: DictConfig, run_dir: Path, group: str | None = None) -> float:
    """Run the experiment described by ``cfg`` in ``run_dir``; returns its objective."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    check_config(config)
    check_writable(run_dir, "run directory", "hydra.run.dir")
    with run_dir_lock(run_dir):
        return _run_once(cfg, config, run_dir, group)


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """One run directory, one writer: a second run started into a directory that a run is
    still writing is refused with one line (it would overwrite, or be overwritten)."""
    lock = FileLock(str(run_dir / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LabError(
            f"another lab run is writing {run_dir}; wait for it to end, or choose another "
            "hydra.run.dir / hydra.sweep.dir."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _run_once(cfg: DictConfig, config: dict[str, Any], run_dir: Path, group: str | None) -> float:
    """Skip a run completed with the same config, refuse to overwrite another's, else run."""
    previous = read_results(run_dir)
    if previous is not None and not cfg.force:
        if comparable(previous.get("config", {})) == comparable(config):
            print(f"skipping {run_dir}: already completed (set force=true to rerun)", flush=True)
            return objective(cfg, previous["metrics"])
        raise LabError(
            f"{run_dir} holds a completed run of another config; choose another "
            "hydra.run.dir / hydra.sweep.dir, or set force=true to overwrite it."
        )
    (run_dir / RESULTS).unlink(missing_ok=True)
    with recorded_failure(run_dir, config):
        return _run(cfg, config, run_dir, group)


def _run(cfg: DictConfig, config: dict[str, Any], run_dir: Path, group: str | None) -> float:
    started = time.time()
    data_dir, cache_dir = resolve_dirs(cfg)
    check_writable(cache_dir, "cache directory", "cache_dir")
    device = setup_torch(cfg)
    precision = decoding_precision(str(cfg.get("precision", "fp32")), device)
    search = SEARCHES.build(cfg.search.name, **options(cfg.search))  # fails before training
    task = TASKS.build(
        cfg.task.name, data_dir=data_dir, cache_dir=cache_dir, **options(cfg.task, "tokenizer")
    )
    split, examples = eval_examples(cfg, task)
    source = locate_model(cfg, task, cache_dir, device)
    name = f"{cfg.task.name}-{source.name}-{cfg.search.name}"
    with open_logger(
        options(cfg.logger) | {"name": cfg.logger.name},
        run_dir=run_dir,
        name=name,
        group=group,
        job_type="train" if source.trains else "decode",
        tags=[cfg.task.name, source.name, cfg.search.name],
        config=config,
    ) as lg:
        model, meta = source.obtain(cfg, task, device, lg.log)
        model = quantize(model, cfg.model.get("quantize"))
        lg.checkpoint(source.path, source.name)  # W&B lineage: the checkpoint decoded
        pairs = encode_examples(examples, source.tokenizer)
        save_nbest = bool(cfg.eval.save_nbest) or nbest_of(search) > 1
        with interrupted_while("decoding"), precision:
            result = evaluate(
                model, search, examples, pairs, source.tokenizer, task.default_metrics,
                cfg.eval.batch_size, device, save_nbest=save_nbest,
            )  # fmt: skip
        value = objective(cfg, result.metrics)
        settings = settings_of(search)  # a preset's resolved knobs
        record(
            run_dir, cfg, config, split, source, meta, result, value, time.time() - started,
            settings,
        )  # fmt: skip
        lg.summary(result.metrics)  # numbers and text (metric signatures)
        log_predictions(lg, result, int(cfg.logger.get("log_predictions", 0) or 0))
    summary = ", ".join(
        f"{k}={result.metrics[k]:.2f}"
        for k in ("bleu", "chrf", "em", "f1", "len_ratio")
        if k in result.metrics
    )
    print(f"{name}: {summary} ({len(result.predictions)} examples) -> {run_dir}", flush=True)
    return value


@contextmanager
def recorded_failure(run_dir: Path, config: dict[str, Any]) -> Iterator[None]:
    """Leave ``results.json`` with status ``failed`` (or ``interrupted``) and the error's line
    when the block raises, so that a run directory never looks unfinished for no reason."""
    try:
        yield
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        try:
            write_json(
                run_dir / RESULTS, {"status": status, "error": str(e)[:500], "config": config}
            )
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        raise


@contextmanager
def interrupted_while(what: str) -> Iterator[None]:
    """Say in an interruption's one line what the block was doing: nothing of it is kept, so
    a rerun does it again (training says more: it resumes, see ``lab.trainer``)."""
    try:
        yield
    except KeyboardInterrupt as e:
        stop = Interrupted.of(e)
        raise Interrupted(stop.signum, f"interrupted while {what}; rerun the same command") from e


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "decoding-lab"


def resolve_dirs(cfg: DictConfig) -> tuple[Path, Path]:
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    data = Path(cfg.data_dir).expanduser() if cfg.data_dir else cache / "data"
    return data, cache


def setup_torch(cfg: DictConfig) -> torch.device:
    """Set the torch thread count (``threads``, else ``default_threads()``, under every
    launcher) and pick the device."""
    torch.set_num_threads(int(cfg.threads) or default_threads())
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def default_threads() -> int:
    """The torch threads of a job that does not set ``threads``: SLURM's CPUs for the task
    where SLURM allocated them, else one.

    torch's own default (one thread per core) spins threads on every core whether or not
    they are free: on 2 cores busy with other work (load 3-6), a training step of the
    quickstart model took 0.5-1.3 s with 1 thread and 1.7-8.3 s with 2 (the default
    Transformer: 3.7 s and 7.6 s), and decoding was ~50x slower in ``reports/throughput/``.
    A count read from the load would be no better: the thread count is part of the
    checkpoint cache key (``lab.model_cache``), so it must not change with what else the
    machine is doing.
    """
    return int(os.environ.get("SLURM_CPUS_PER_TASK") or 1)


def options(node: DictConfig, *drop: str) -> dict[str, Any]:
    """A plugin's keyword arguments: its config node without ``name`` (and ``drop``)."""
    d = OmegaConf.to_container(node, resolve=True)
    assert isinstance(d, dict)
    return {k: v for k, v in d.items() if k not in ("name", *drop)}


def build_search(cfg: DictConfig) -> Any:
    return SEARCHES.build(cfg.search.name, **options(cfg.search))


def build_task(cfg: DictConfig, data_dir: Path, cache_dir: Path) -> Task:
    opts = options(cfg.task, "tokenizer")
    return TASKS.build(cfg.task.name, data_dir=data_dir, cache_dir=cache_dir, **opts)


def eval_examples(cfg: DictConfig, task: Task) -> tuple[str, list[Example]]:
    """The split to decode (default: the task's test split) and its first ``eval.limit``."""
    split = cfg.eval.split or task.test_split
    examples = list(task.examples(split))
    if cfg.eval.limit is not None:
        examples = examples[: int(cfg.eval.limit)]
    if not examples:
        raise LabError(
            f"split {split} of task={cfg.task.name} has no examples to decode (eval.limit="
            f"{cfg.eval.limit}); choose another eval.split or a positive eval.limit."
        )
    return split, examples


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the keys that do not change results; ``precision: fp32`` is the
    default, so a run recorded before the key existed compares equal to one that states it."""
    out = {k: v for k, v in config.items() if k not in VOLATILE_KEYS}
    if out.get("precision") == "fp32":
        del out["precision"]
    return out


def objective(cfg: DictConfig, metrics: dict[str, Any]) -> float:
    """The number a sweeper optimizes: ``eval.objective``, else BLEU or F1."""
    key = cfg.eval.objective or next((k for k in ("bleu", "f1", "em") if k in metrics), None)
    if key not in metrics:
        raise LabError(
            f"eval.objective={key} is not a metric of this run; "
            f"choose one of {', '.join(sorted(metrics))}."
        )
    return float(metrics[key])


def record(
    run_dir: Path,
    cfg: DictConfig,
    config: dict[str, Any],
    split: str,
    source: ModelSource,
    meta: dict[str, Any],
    result: Evaluation,
    value: float,
    seconds: float,
    search_settings: dict[str, Any] | None = None,
) -> None:
    """Write ``predictions.jsonl``, then ``results.json`` (status ``completed``) last."""
    write_jsonl(run_dir / PREDICTIONS, result.predictions)
    results = {
        "status": "completed",
        "task": cfg.task.name,
        "model": source.name,
        "search": cfg.search.name,
        **({"search_settings": search_settings} if search_settings else {}),
        "split": split,
        "config": config,
        "metrics": result.metrics,
        "n_examples": len(result.predictions),
        "checkpoint": str(source.path),
        "train": meta,
        "objective": value,
        "seconds": seconds,
    }
    write_json(run_dir / RESULTS, results)


def log_predictions(lg: Any, result: Evaluation, n: int) -> None:
    """The first ``n`` predictions as a W&B table."""
    rows = result.predictions[:n]
    if rows:
        cols = ["id", "src", "ref", "hyp", "logprob", "length"]
        lg.log_table("predictions", cols, [[r[c] for c in cols] for r in rows])
