"""The training loop, resumable: ``state.pt`` (saved every ``train.save_every`` steps in the
checkpoint directory) lets an interrupted training resume where it was.

SIGINT or SIGTERM during training stops it at the end of the current step, after saving the
state of that step, with ``interrupted at step N; saved at step N; rerun the same command to
resume``; a second signal stops it at once (the state then is the last one saved).

What one step computes (loss, schedule, validation) is ``lab.train``; which checkpoint
directory, and whether to train at all, is ``lab.model_cache``'s business.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from tqdm import tqdm

from lab.checkpoint import atomic_torch_save
from lab.data import Pair, token_batches
from lab.errors import LabError
from lab.models.base import DecoderModel, count_parameters
from lab.results import Interrupted, signals_handled
from lab.train import LogFn, TrainSettings, batch_loss, lr_at, validate

# what a resumable training state must hold ("seconds" is optional: older states lack it)
STATE_KEYS = (
    "model", "opt", "step", "epoch", "batch_in_epoch", "best", "best_state", "bad", "rng", "py_rng"
)  # fmt: skip


def cuda_rng(device: torch.device) -> torch.Tensor | None:
    """The CUDA generator's state of ``device``, or None on another device."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


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
        self.seconds_before, self.started = 0.0, time.time()  # training time of earlier runs
        self.saved_step: int | None = None  # the step state.pt holds, once there is one
        self.pending_signal: int | None = None  # SIGINT/SIGTERM received, acted on after a step

    def _seconds(self) -> float:
        """Training wall time so far, over every run that resumed this training."""
        return self.seconds_before + time.time() - self.started

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
                "cuda_rng": cuda_rng(self.device),  # dropout on a GPU draws from its own stream
                "py_rng": random.getstate(),
                "seconds": self._seconds(),
            },
            self.ckpt_dir / "state.pt",
        )
        self.saved_step = self.step

    def _resume(self) -> None:
        """Continue from ``state.pt`` if there is one. A state that cannot be read (corrupt,
        truncated, incomplete, or holding more than tensors and plain values) is set aside,
        with one line naming where, and training starts over: one bad file never blocks reruns.
        """
        path = self.ckpt_dir / "state.pt"
        if not path.exists():
            return
        try:
            st = torch.load(path, map_location=self.device, weights_only=True)
            missing = [k for k in STATE_KEYS if k not in st]
            if missing:
                raise KeyError(", ".join(missing))
        except Exception as e:  # noqa: BLE001 - whatever is wrong with it, the fix is the same
            aside = path.with_name(f"state.pt.unreadable-{int(time.time())}")
            path.replace(aside)
            print(
                f"warning: training state {path} is unreadable ({type(e).__name__}: {e}); "
                f"set aside as {aside.name}, training from the start",
                flush=True,
            )
            return
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.epoch, self.batch_in_epoch = st["step"], st["epoch"], st["batch_in_epoch"]
        self.best, self.best_state, self.bad_validations = st["best"], st["best_state"], st["bad"]
        self.seconds_before = float(st.get("seconds", 0.0))  # states saved before it: unknown
        torch.set_rng_state(st["rng"].cpu())  # map_location moved it to the training device
        if st.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(st["cuda_rng"].cpu(), self.device)
        random.setstate(st["py_rng"])
        self.saved_step = self.step
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

    def _batches(self) -> list[list[Pair]]:
        """The batches of the current epoch, in this epoch's order."""
        seed = self.seed * 1000 + self.epoch + 1
        return token_batches(self.train_pairs, self.s.batch_tokens, seed=seed)

    def _planned_steps(self, per_epoch: int) -> int:
        """The step training ends at if it runs to its limits: ``max_steps``, or the epochs
        left at ``per_epoch`` batches each (every epoch has as many: batches depend on lengths
        only), whichever comes first; ``patience`` may stop it sooner."""
        s, limits = self.s, []
        if s.max_steps > 0:
            limits.append(s.max_steps)
        if s.max_epochs > 0:
            limits.append(self.step - self.batch_in_epoch + per_epoch * (s.max_epochs - self.epoch))
        return max(min(limits), self.step)

    def _interrupted(self, signum: int) -> Interrupted:
        if self.saved_step is None:
            return Interrupted(
                signum,
                f"interrupted at step {self.step}; no training state saved yet; "
                "rerun the same command to start over",
            )
        return Interrupted(
            signum,
            f"interrupted at step {self.step}; saved at step {self.saved_step}; "
            "rerun the same command to resume",
        )

    def _stop_if_signalled(self) -> None:
        """After a step: on a pending SIGINT/SIGTERM, save this step's state and stop."""
        if self.pending_signal is not None:
            if self.saved_step != self.step:
                self._save_state()
            raise self._interrupted(self.pending_signal)

    @contextmanager
    def _signals_deferred(self) -> Iterator[None]:
        """SIGINT and SIGTERM wait for the end of the step (``_stop_if_signalled``): an
        exception in the middle of ``opt.step()`` would leave weights half updated, and the
        state saved then would not resume bit for bit. A second signal stops at once. Signals
        ignored by the process and threads other than the main one keep their handling."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.pending_signal is not None:
                raise self._interrupted(signum)
            self.pending_signal = signum

        with signals_handled(on_signal):
            yield

    def run(self) -> dict[str, Any]:
        torch.manual_seed(self.seed)
        random.seed(self.seed)
        self._resume()
        self.model.train()
        self.started = time.time()
        batches = self._batches()
        with (
            self._signals_deferred(),
            tqdm(
                total=self._planned_steps(len(batches)),
                initial=self.step,
                desc="train",
                unit="step",
                mininterval=10,
            ) as bar,
        ):
            self._train(batches, bar)
        self._stop_if_signalled()  # a signal in the last step's last moments
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
            "train_seconds": self._seconds(),
        }

    def _train(self, batches: list[list[Pair]], bar: tqdm) -> None:
        """Step until done, starting with the current epoch's ``batches``; the bar's total
        is the planned end (``_planned_steps``), which tqdm turns into an ETA."""
        s = self.s
        while not self._done():
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
                self._stop_if_signalled()
                if self._done():
                    break
            else:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self._validate()
                self._save_state()
                self._stop_if_signalled()
                batches = self._batches()
                bar.total = self._planned_steps(len(batches))
