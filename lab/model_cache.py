"""Where a run's model comes from: pretrained weights, a given checkpoint, or the checkpoint
cache, trained on a miss. This module owns the cache: its key, its lock, train-or-load.

A trained checkpoint lives in ``<cache_dir>/checkpoints/<key>/model.pt`` where ``key`` hashes
everything that changes the weights (task, tokenizer, model, train settings, seed): a sweep
over search settings trains once. A file lock makes concurrent jobs wait for one trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from lab.checkpoint import FORMAT, build_model, cache_fix, load_model, save_model
from lab.data import encode_examples
from lab.io import cache_key
from lab.models.base import DecoderModel
from lab.registry import MODELS
from lab.tasks.base import Task
from lab.train import LogFn, TrainSettings
from lab.trainer import Trainer


@dataclass
class ModelSource:
    """The model a run decodes with, before any weights are loaded.

    ``kind`` is ``pretrained`` (the model brings weights and tokenizer), ``checkpoint`` (the
    user's ``checkpoint=``), ``members`` (a combination of trained models, ``model=ensemble``:
    it loads them itself, the task's tokenizer must fit them) or ``cache`` (trained once per
    key; ``trains`` on a miss).
    """

    kind: str  # pretrained | checkpoint | cache | members
    name: str
    args: dict[str, Any]
    tokenizer: Any
    path: Path
    pretrained: DecoderModel | None = None

    @property
    def trains(self) -> bool:
        return self.kind == "cache" and not self.path.exists()

    def obtain(
        self, cfg: DictConfig, task: Task, device: torch.device, log: LogFn
    ) -> tuple[DecoderModel, dict[str, Any]]:
        """The model (on ``device``, in eval mode) and what is known of its training."""
        if self.pretrained is not None:
            return self.pretrained.to(device), {"pretrained": str(self.path)}
        if self.kind == "members":
            vocab = self.tokenizer.vocab_size
            return build_model(self.name, self.args, vocab, vocab).to(device), {}
        if self.kind == "checkpoint":
            model, meta = load_model(self.path, self.name, self.args, self.tokenizer)
            return model.to(device), meta
        torch.manual_seed(cfg.seed)
        model, meta = train_or_load(self, cfg, task, device, log)
        return model.to(device), meta


def locate_model(cfg: DictConfig, task: Task, cache_dir: Path, device: torch.device) -> ModelSource:
    """Resolve the config's model: which weights, which tokenizer (trained and cached here).

    The cache key holds everything that changes the trained weights, the CPU thread count
    included: float sums are reduced in another order with another thread count, so trainings
    with 1 and 2 threads differ in their last bits, and then in some outputs.
    """
    from lab.tokenizer import load_or_train  # sentencepiece is only needed from here on

    name, args = cfg.model.name, model_options(cfg)
    if getattr(MODELS.get(name), "pretrained", False):
        model = build_model(name, args, 0, 0)
        path = Path(str(args.get("name_or_path")))
        return ModelSource("pretrained", name, args, model.text_tokenizer(), path, model)
    tok = cfg.task.tokenizer
    tokenizer = load_or_train(task, cache_dir, int(tok.vocab_size), str(tok.model_type))
    if getattr(MODELS.get(name), "loads_members", False):
        return ModelSource("members", name, args, tokenizer, members_path(args))
    if cfg.checkpoint:
        return ModelSource("checkpoint", name, args, tokenizer, Path(cfg.checkpoint).expanduser())
    key = cache_key(
        {
            "task": task.signature(),
            "tokenizer": OmegaConf.to_container(tok),
            "model": {"name": name, **args},
            "train": OmegaConf.to_container(cfg.train),
            "seed": cfg.seed,
            "format": FORMAT,
            "threads": torch.get_num_threads() if device.type == "cpu" else None,
        }
    )
    path = cache_dir / "checkpoints" / key / "model.pt"
    return ModelSource("cache", name, args, tokenizer, path)


def members_path(args: dict[str, Any]) -> Path:
    """The path a combination of trained models is recorded under: its first member's."""
    members = list(args.get("members") or []) + [args.get("translation", "")]
    return Path(str(members[0])).expanduser()


# model keys that choose how a trained model decodes, not what is trained: no part of the
# cache key or of the constructor's arguments
DECODE_ONLY = ("name", "quantize")


def model_options(cfg: DictConfig) -> dict[str, Any]:
    opts = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(opts, dict)
    return {k: v for k, v in opts.items() if k not in DECODE_ONLY}


def train_or_load(
    src: ModelSource, cfg: DictConfig, task: Task, device: torch.device, log: LogFn
) -> tuple[DecoderModel, dict[str, Any]]:
    """The trained model of ``src.path``: loaded, or trained (or resumed) under the key's lock.

    Only the job that holds the lock says ``training ... -> <dir>``; a job that finds the lock
    taken says it waits, then loads what the other one trained.
    """
    final, ckpt_dir = src.path, src.path.parent
    if final.exists():
        return load_model(final, src.name, src.args, src.tokenizer, cache_fix(final))
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(ckpt_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another job to train {ckpt_dir}", flush=True)
        lock.acquire()
    try:
        if not final.exists():  # else another job trained it while we waited
            print(f"training {src.name} on {cfg.task.name} -> {ckpt_dir}", flush=True)
            settings = TrainSettings(**OmegaConf.to_container(cfg.train))
            train = encode_examples(
                task.examples(task.train_split), src.tokenizer, settings.max_len
            )
            # validated on the pairs training could see: the same length limit
            valid = encode_examples(
                task.examples(task.valid_split), src.tokenizer, settings.max_len
            )
            vocab = src.tokenizer.vocab_size
            model = build_model(src.name, src.args, vocab, vocab)
            meta = Trainer(model, train, valid, settings, cfg.seed, device, ckpt_dir, log).run()
            save_model(model, src.name, src.args, final, meta, src.tokenizer)
            (ckpt_dir / "state.pt").unlink(missing_ok=True)
    finally:
        lock.release()
    return load_model(final, src.name, src.args, src.tokenizer, cache_fix(final))
