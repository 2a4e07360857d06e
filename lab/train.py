"""Training with teacher forcing, its parts: the settings (``train.*``), the learning-rate
schedule, the loss of one batch and the validation loss. The loop that puts them together, and
resumes an interrupted training, is ``lab.trainer.Trainer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab.data import Pair, pad, token_batches
from lab.errors import LabError
from lab.models.base import DecoderModel, shift_right

LogFn = Callable[[dict[str, float], int], None]  # (metrics, step): where training logs


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
