"""Training with teacher forcing, cached by config hash, resumable, one trainer per checkpoint.

The checkpoint lives in ``<cache_dir>/checkpoints/<key>/`` where ``key`` hashes everything that
changes the weights (task, tokenizer, model, train settings, seed): a sweep over search
settings trains once. A file lock makes concurrent jobs wait for one trainer; ``state.pt``
(saved every ``train.save_every`` steps) lets an interrupted training resume where it was.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from filelock import FileLock, Timeout
from tqdm import tqdm

from lab.checkpoint import atomic_torch_save, build_model, load_model, save_model
from lab.data import Pair, pad, token_batches
from lab.errors import LabError
from lab.models.base import DecoderModel, count_parameters, shift_right

LogFn = Callable[[dict[str, float], int], None]


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int = 0  # 0: no step limit
    max_epochs: int = 10
    batch_tokens: int = 4096
    lr: float = 5e-4
    warmup_steps: int = 500
    schedule: str = "inverse_sqrt"  # or "constant"
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    weight_decay: float = 0.0
    eval_every: int = 0  # validate every N steps as well as after each epoch; 0: epochs only
    save_every: int = 200  # training state for resume, every N steps
    max_len: int = 256  # training pairs longer than this (tokens) are skipped
    patience: int = 0  # stop after N validations without improvement; 0: never

    def __post_init__(self) -> None:
        if self.max_steps <= 0 and self.max_epochs <= 0:
            raise LabError("set train.max_steps or train.max_epochs to a positive number.")
        if self.schedule not in ("inverse_sqrt", "constant"):
            raise LabError(f"train.schedule={self.schedule!r}; valid: inverse_sqrt, constant.")


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up to ``lr``, then constant or decaying as 1/sqrt(step)."""
    warm = max(1, s.warmup_steps)
    if step < warm:
        return s.lr * (step + 1) / warm
    return s.lr if s.schedule == "constant" else s.lr * math.sqrt(warm / (step + 1))


def batch_loss(
    model: DecoderModel, batch: Sequence[Pair], smoothing: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(smoothed loss sum, NLL sum, target tokens) of one batch, teacher-forced."""
    src, src_len = pad([p.src for p in batch])
    tgt, _ = pad([p.tgt for p in batch])
    src, src_len, tgt = src.to(device), src_len.to(device), tgt.to(device)
    logits = model(src, src_len, shift_right(tgt, model.bos_id, model.pad_id))  # (B, T, V)
    flat, gold = logits.reshape(-1, logits.size(-1)).float(), tgt.reshape(-1)
    loss = F.cross_entropy(
        flat, gold, ignore_index=model.pad_id, reduction="sum", label_smoothing=smoothing
    )
    nll = F.cross_entropy(flat, gold, ignore_index=model.pad_id, reduction="sum")
    return loss, nll, int(gold.ne(model.pad_id).sum())


@torch.no_grad()
def validate(model: DecoderModel, pairs: Sequence[Pair], device: torch.device) -> dict[str, float]:
    """Teacher-forced validation loss (per token, natural log) and perplexity."""
    model.eval()
    total, n = 0.0, 0
    for batch in token_batches(pairs, 8192, seed=None):
        _, nll, k = batch_loss(model, batch, 0.0, device)
        total, n = total + float(nll), n + k
    model.train()
    loss = total / max(n, 1)
    return {"valid/loss": loss, "valid/ppl": math.exp(min(loss, 50.0))}


def train_or_load(
    ckpt_dir: Path,
    model_name: str,
    model_args: dict[str, Any],
    vocab: tuple[int, int],
    train_pairs: Sequence[Pair],
    valid_pairs: Sequence[Pair],
    settings: TrainSettings,
    seed: int,
    device: torch.device,
    log: LogFn | None = None,
    label: str = "",
) -> tuple[DecoderModel, dict[str, Any], bool]:
    """The trained model for this key: loaded from cache, or trained (or resumed) under a lock.

    Only the job that holds the lock says ``training <label> -> <dir>``; a job that finds the
    lock taken says it waits. Returns ``(model, meta, trained_now)``.
    """
    final = ckpt_dir / "model.pt"
    if final.exists():
        return (*load_model(final, model_name, model_args), False)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(ckpt_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another job to train {ckpt_dir}", flush=True)
        lock.acquire()
    try:
        if final.exists():  # another job trained it while we waited
            return (*load_model(final, model_name, model_args), False)
        print(f"training {label or model_name} -> {ckpt_dir}", flush=True)
        model = build_model(model_name, model_args, *vocab)
        meta = Trainer(model, train_pairs, valid_pairs, settings, seed, device, ckpt_dir, log).run()
        save_model(model, model_name, model_args, final, meta)
        (ckpt_dir / "state.pt").unlink(missing_ok=True)
    finally:
        lock.release()
    return (*load_model(final, model_name, model_args), True)


class Trainer:
    """One training run; resumable from ``<ckpt_dir>/state.pt``."""

    def __init__(
        self,
        model: DecoderModel,
        train_pairs: Sequence[Pair],
        valid_pairs: Sequence[Pair],
        s: TrainSettings,
        seed: int,
        device: torch.device,
        ckpt_dir: Path,
        log: LogFn | None,
    ) -> None:
        if not train_pairs:
            raise LabError("the training split is empty after tokenization; check the task data.")
        self.model, self.s, self.seed, self.device = model.to(device), s, seed, device
        self.train_pairs, self.valid_pairs = train_pairs, valid_pairs
        self.ckpt_dir, self.log = ckpt_dir, log or (lambda m, step: None)
        self.opt = torch.optim.Adam(
            model.parameters(), lr=s.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=s.weight_decay
        )
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best: dict[str, Any] = {"valid/loss": float("inf")}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_validations = 0

    def _save_state(self) -> None:
        atomic_torch_save(
            {
                "model": self.model.state_dict(),
                "opt": self.opt.state_dict(),
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "best": self.best,
                "best_state": self.best_state,
                "bad": self.bad_validations,
                "rng": torch.get_rng_state(),
                "py_rng": random.getstate(),
            },
            self.ckpt_dir / "state.pt",
        )

    def _resume(self) -> None:
        path = self.ckpt_dir / "state.pt"
        if not path.exists():
            return
        st = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.epoch, self.batch_in_epoch = st["step"], st["epoch"], st["batch_in_epoch"]
        self.best, self.best_state, self.bad_validations = st["best"], st["best_state"], st["bad"]
        torch.set_rng_state(st["rng"])
        random.setstate(st["py_rng"])
        print(f"resuming training at step {self.step} (epoch {self.epoch + 1})", flush=True)

    def _done(self) -> bool:
        s = self.s
        return (
            (s.max_steps > 0 and self.step >= s.max_steps)
            or (s.max_epochs > 0 and self.epoch >= s.max_epochs)
            or (s.patience > 0 and self.bad_validations >= s.patience)
        )

    def _validate(self) -> None:
        metrics = validate(self.model, self.valid_pairs, self.device) if self.valid_pairs else {}
        metrics["train/epoch"] = self.epoch
        self.log(metrics, self.step)
        loss = metrics.get("valid/loss", -self.step)  # without a validation set: keep the last
        if loss < self.best["valid/loss"]:
            self.best = {
                "valid/loss": loss,
                "valid/ppl": metrics.get("valid/ppl"),
                "step": self.step,
            }
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.bad_validations = 0
        else:
            self.bad_validations += 1

    def run(self) -> dict[str, Any]:
        torch.manual_seed(self.seed)
        random.seed(self.seed)
        self._resume()
        self.model.train()
        s, started = self.s, time.time()
        total = s.max_steps if s.max_steps > 0 else None
        bar = tqdm(total=total, initial=self.step, desc="train", unit="step", mininterval=10)
        while not self._done():
            batches = token_batches(
                self.train_pairs, s.batch_tokens, seed=self.seed * 1000 + self.epoch + 1
            )
            for batch in batches[self.batch_in_epoch :]:
                for group in self.opt.param_groups:
                    group["lr"] = lr_at(self.step, s)
                loss, nll, ntok = batch_loss(self.model, batch, s.label_smoothing, self.device)
                self.opt.zero_grad(set_to_none=True)
                (loss / ntok).backward()
                gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.clip_norm)
                self.opt.step()
                self.step, self.batch_in_epoch = self.step + 1, self.batch_in_epoch + 1
                bar.update(1)
                if self.step % 50 == 0:
                    lv = loss.detach().item() / ntok
                    bar.set_postfix(loss=f"{lv:.3f}", epoch=self.epoch + 1)
                    self.log(
                        {
                            "train/loss": lv,
                            "train/nll": nll.detach().item() / ntok,
                            "train/lr": lr_at(self.step, s),
                            "train/grad_norm": float(gnorm),
                        },
                        self.step,
                    )
                if s.eval_every and self.step % s.eval_every == 0:
                    self._validate()
                if s.save_every and self.step % s.save_every == 0:
                    self._save_state()
                if self._done():
                    break
            else:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self._validate()
                self._save_state()
        bar.close()
        if self.valid_pairs and (not self.best_state or self.best.get("step") != self.step):
            self._validate()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        return {
            "steps": self.step,
            "epochs": self.epoch,
            "best": self.best,
            "params": count_parameters(self.model),
            "train_seconds": time.time() - started,
        }
