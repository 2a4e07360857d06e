"""Checkpoints: the cache key of a trained model, and saving/loading with clear errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from lab.errors import LabError
from lab.io import atomic_write
from lab.models.base import DecoderModel
from lab.registry import MODELS

FORMAT = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def build_model(name: str, args: dict[str, Any], src_vocab: int, tgt_vocab: int) -> DecoderModel:
    return MODELS.build(name, src_vocab, tgt_vocab, **args)


def save_model(
    model: DecoderModel, name: str, args: dict[str, Any], path: Path, meta: dict[str, Any]
) -> None:
    atomic_torch_save(
        {
            "format": FORMAT,
            "model": name,
            "args": args,
            "src_vocab": model.src_vocab_size,
            "tgt_vocab": model.tgt_vocab_size,
            "state_dict": model.state_dict(),
            "meta": meta,
        },
        path,
    )


REQUIRED = ("format", "model", "args", "src_vocab", "tgt_vocab", "state_dict")


def read_checkpoint(path: Path, fix: str) -> dict[str, Any]:
    """The checkpoint dict at ``path``, loaded with ``weights_only``: tensors and plain values
    only, so that a crafted file can never run code. Anything else is one ``LabError`` line."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LabError(f"checkpoint {path} does not exist; {fix}.") from None
    except pickle.UnpicklingError:
        raise LabError(
            f"checkpoint {path} holds Python objects, not only tensors and plain values (an "
            f"old-format, foreign or tampered file); it was not loaded: {fix}."
        ) from None
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise LabError(f"checkpoint {path} is unreadable ({type(e).__name__}); {fix}.") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise LabError(f"checkpoint {path} is not a lab checkpoint of format {FORMAT}; {fix}.")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise LabError(f"checkpoint {path} lacks {', '.join(missing)}; {fix}.")
    return ckpt


def load_model(
    path: Path, name: str | None = None, args: dict[str, Any] | None = None
) -> tuple[DecoderModel, dict[str, Any]]:
    """Load a checkpoint; with ``name``/``args``, insist it matches the configured model."""
    path = Path(path)
    fix = f"delete {path.parent} to retrain, or point checkpoint= at a checkpoint of this model"
    ckpt = read_checkpoint(path, fix)
    if name is not None and (ckpt["model"] != name or (args is not None and ckpt["args"] != args)):
        raise LabError(
            f"checkpoint {path} holds model={ckpt['model']} {ckpt['args']}, not the "
            f"configured model={name} {args}; {fix}."
        )
    return built(ckpt, path, fix), ckpt.get("meta", {})


def built(ckpt: dict[str, Any], path: Path, fix: str) -> DecoderModel:
    """The model of a read checkpoint, weights loaded, in eval mode."""
    model = build_model(ckpt["model"], ckpt["args"], ckpt["src_vocab"], ckpt["tgt_vocab"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise LabError(f"checkpoint {path} does not fit model={ckpt['model']}; {fix}.") from e
    return model.eval()


def checkpoint_of(spec: str | Path) -> Path:
    """The checkpoint file that ``spec`` names: a checkpoint file, a checkpoint directory
    (holding ``model.pt``) or a run directory (its ``results.json`` names the checkpoint)."""
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "model.pt").is_file():
        return path / "model.pt"
    if path.is_dir() and (path / "results.json").is_file():
        recorded = json.loads((path / "results.json").read_text()).get("checkpoint")
        if recorded:
            return Path(recorded)
    if path.is_dir():
        raise LabError(
            f"{path} holds neither model.pt nor a completed run's results.json; name a "
            "checkpoint file, a checkpoint directory or a run directory."
        )
    return path


def fingerprint(ckpt: dict[str, Any]) -> str:
    """What must match for two checkpoints to decode with one tokenizer: the vocabulary sizes
    and, where training recorded it, the tokenizer file's hash (``meta["tokenizer"]``)."""
    tok = (ckpt.get("meta") or {}).get("tokenizer", "unrecorded")
    return f"vocab {ckpt['src_vocab']}/{ckpt['tgt_vocab']}, tokenizer {tok}"


def load_member(spec: str | Path) -> tuple[DecoderModel, str]:
    """A trained model for a combination (``model=ensemble``/``fusion``, a speculative
    draft): the checkpoint ``spec`` names (``checkpoint_of``) and its ``fingerprint``."""
    path = checkpoint_of(spec)
    fix = f"point {spec} at a lab checkpoint, checkpoint directory or run directory"
    ckpt = read_checkpoint(path, fix)
    return built(ckpt, path, fix), fingerprint(ckpt)
