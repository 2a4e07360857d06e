"""One experiment, top-down: build the plugins a config names, obtain the model (pretrained,
given, cached or trained), decode a split, score it, record the run's files and log them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from lab.config_checks import check_config
from lab.data import encode_examples
from lab.errors import LabError
from lab.evaluate import Evaluation, evaluate
from lab.input_checks import check_source_lengths
from lab.io import check_writable, unwritable
from lab.loggers import open_logger
from lab.machine import resolve_dirs, setup_torch
from lab.model_cache import ModelSource, locate_model
from lab.models.quantize import quantize
from lab.precision import decoding_precision
from lab.provenance import (
    IGNORED,
    checkpoint_identity,
    config_changes,
    dependencies,
    dependency_changes,
    stale_error,
)
from lab.registry import SEARCHES, TASKS
from lab.results import (
    LOCK,
    RESULTS,
    Interrupted,
    read_results,
    write_json,
)
from lab.run_files import discard_staged_files, write_run
from lab.search.contracts import nbest_of, settings_of
from lab.tasks.base import Example, Task
from lab.tune import tune_search

VOLATILE_KEYS = IGNORED  # config keys that change no number (see ``lab.provenance``)


@dataclass
class Prepared:
    """What a run builds before it trains or decodes: every bad value fails while building it,
    before a run directory is touched."""

    search: Any
    task: Task
    split: str
    examples: list[Example]
    source: ModelSource
    device: torch.device
    depends: dict[str, Any]


def run(cfg: DictConfig, run_dir: Path, group: str | None = None) -> float:
    """Run the experiment described by ``cfg`` in ``run_dir``; returns its objective."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    check_config(config)
    previous = read_results(run_dir)
    if previous is not None and not cfg.force and unwritable(run_dir) is not None:
        return reuse(cfg, config, run_dir, previous)  # a read-only archive: nothing to write
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
    """Skip a run completed with the same dependencies, refuse to overwrite another's, else
    run. A forced rerun builds everything first and replaces a completed run only when it
    completes itself: until then the directory holds the old run whole."""
    previous = read_results(run_dir)
    if previous is not None and not cfg.force:
        return reuse(cfg, config, run_dir, previous)
    if previous is not None:
        try:
            return _run(cfg, config, run_dir, group, prepare(cfg))
        except BaseException:
            discard_staged_files(run_dir)
            raise
    (run_dir / RESULTS).unlink(missing_ok=True)
    with recorded_failure(run_dir, config):
        return _run(cfg, config, run_dir, group, prepare(cfg))


def reuse(
    cfg: DictConfig, config: dict[str, Any], run_dir: Path, previous: dict[str, Any]
) -> float:
    """The objective of the completed run in ``run_dir`` when nothing it depends on changed;
    else one line naming what changed (the config is compared before anything is built)."""
    changed = config_changes(previous, config)
    if not changed and "depends" in previous:
        changed = dependency_changes(previous, prepare(cfg).depends)
    if changed:
        raise stale_error(run_dir, changed)
    print(f"skipping {run_dir}: already completed (set force=true to rerun)", flush=True)
    return objective(cfg, previous["metrics"])


def prepare(cfg: DictConfig) -> Prepared:
    """Build the search, the task, its examples and the model's source (a missing tokenizer
    is trained here): everything that can refuse a bad value, before any model is trained."""
    data_dir, cache_dir = resolve_dirs(cfg)
    check_writable(cache_dir, "cache directory", "cache_dir")
    device = setup_torch(cfg)
    search = SEARCHES.build(cfg.search.name, **options(cfg.search))
    task = build_task(cfg, data_dir, cache_dir)
    split, examples = eval_examples(cfg, task)
    source = locate_model(cfg, task, cache_dir, device)
    threads = torch.get_num_threads() if device.type == "cpu" else 0
    ckpt = checkpoint_identity(source.kind, source.path, cache_dir)
    depends = dependencies(threads, examples, ckpt)
    return Prepared(search, task, split, examples, source, device, depends)


def _run(
    cfg: DictConfig, config: dict[str, Any], run_dir: Path, group: str | None, prep: Prepared
) -> float:
    started = time.time()
    search, task, source, device = prep.search, prep.task, prep.source, prep.device
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
        pairs = encode_examples(prep.examples, source.tokenizer)
        check_source_lengths(model, pairs, prep.examples, prep.split)
        save_nbest = bool(cfg.eval.save_nbest) or nbest_of(search) > 1
        with interrupted_while("decoding"), decoding_precision(str(cfg.precision), device):
            tune_search(search, model, task, source.tokenizer, cfg.eval.batch_size, device)
            result = evaluate(
                model, search, prep.examples, pairs, source.tokenizer, task.default_metrics,
                cfg.eval.batch_size, device, save_nbest=save_nbest,
                save_attention=bool(cfg.eval.get("save_attention", False)),
            )  # fmt: skip
        value = objective(cfg, result.metrics)
        record(run_dir, cfg, config, prep, meta, result, value, time.time() - started)
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


def options(node: DictConfig, *drop: str) -> dict[str, Any]:
    """A plugin's keyword arguments: its config node without ``name`` (and ``drop``)."""
    d = OmegaConf.to_container(node, resolve=True)
    assert isinstance(d, dict)
    return {k: v for k, v in d.items() if k not in ("name", *drop)}


def build_search(cfg: DictConfig) -> Any:
    return SEARCHES.build(cfg.search.name, **options(cfg.search))


def build_task(cfg: DictConfig, data_dir: Path, cache_dir: Path) -> Task:
    """The task of ``cfg``, reading under ``data_dir`` and caching under ``cache_dir``."""
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
    prep: Prepared,
    meta: dict[str, Any],
    result: Evaluation,
    value: float,
    seconds: float,
) -> None:
    """Write ``predictions.jsonl``, then ``results.json`` (status ``completed``) last."""
    settings = settings_of(prep.search)  # a preset's resolved knobs
    results = {
        "status": "completed",
        "task": cfg.task.name,
        "model": prep.source.name,
        "search": cfg.search.name,
        **({"search_settings": settings} if settings else {}),
        "split": prep.split,
        "config": config,
        "depends": prep.depends,
        "metrics": result.metrics,
        "n_examples": len(result.predictions),
        "checkpoint": str(prep.source.path),
        "train": meta,
        "objective": value,
        "seconds": seconds,
    }
    write_run(run_dir, result.predictions, results)


def log_predictions(lg: Any, result: Evaluation, n: int) -> None:
    """The first ``n`` predictions as a W&B table."""
    rows = result.predictions[:n]
    if rows:
        cols = ["id", "src", "ref", "hyp", "logprob", "length"]
        lg.log_table("predictions", cols, [[r[c] for c in cols] for r in rows])
