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
from lab.provenance import file_digest
from lab.registry import MODELS

FORMAT = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def build_model(name: str, args: dict[str, Any], src_vocab: int, tgt_vocab: int) -> DecoderModel:
    return MODELS.build(name, src_vocab, tgt_vocab, **args)


def save_model(
    model: DecoderModel,
    name: str,
    args: dict[str, Any],
    path: Path,
    meta: dict[str, Any],
    tokenizer: Any = None,
) -> None:
    """Save the model with what it needs to be decoded: its architecture and arguments, its
    vocabulary sizes and (with ``tokenizer``) the fingerprint of the tokenizer it reads."""
    fingerprint = tokenizer_fingerprint(tokenizer)
    atomic_torch_save(
        {
            "format": FORMAT,
            "model": name,
            "args": args,
            "src_vocab": model.src_vocab_size,
            "tgt_vocab": model.tgt_vocab_size,
            "state_dict": model.state_dict(),
            "meta": meta,
            **({"tokenizer": fingerprint} if fingerprint else {}),
        },
        path,
    )


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any] | None:
    """The SentencePiece model's content hash and vocabulary size (None without a model file:
    a pretrained model's own tokenizer)."""
    path = getattr(tokenizer, "path", None)
    if path is None or not Path(path).is_file():
        return None
    return {"sha256": file_digest(Path(path))[:16], "vocab_size": int(tokenizer.vocab_size)}


def check_tokenizer(path: Path, ckpt: dict[str, Any], tokenizer: Any, note: bool = True) -> None:
    """Refuse to decode ``ckpt`` with another tokenizer than the one it was trained with (the
    ids would mean other pieces: fluent nonsense, or an index error). A checkpoint saved before
    fingerprints were recorded is checked by its vocabulary size only, and (with ``note``) a
    note says so: a cache entry needs none, its key holds the tokenizer's settings."""
    have = tokenizer_fingerprint(tokenizer)
    if have is None:
        return
    mine = f"this run's tokenizer {have['sha256']} (vocab {have['vocab_size']}, {tokenizer.path})"
    advice = "decode it with the task and task.tokenizer settings it was trained with"
    recorded = ckpt.get("tokenizer")
    if isinstance(recorded, dict):
        if (recorded.get("sha256"), recorded.get("vocab_size")) != (
            have["sha256"],
            have["vocab_size"],
        ):
            raise LabError(
                f"checkpoint {path} was trained with tokenizer {recorded.get('sha256')} (vocab "
                f"{recorded.get('vocab_size')}), not {mine}; {advice}."
            )
        return
    if {ckpt["src_vocab"], ckpt["tgt_vocab"]} != {have["vocab_size"]}:
        raise LabError(
            f"checkpoint {path} has vocab {ckpt['tgt_vocab']}, not that of {mine}; {advice}."
        )
    if not note:
        return
    print(
        f"note: checkpoint {path} records no tokenizer fingerprint (saved by an older lab); only "
        f"its vocabulary size ({have['vocab_size']}) was checked against this run's tokenizer",
        flush=True,
    )


REQUIRED = ("format", "model", "args", "src_vocab", "tgt_vocab", "state_dict")


def read_checkpoint(path: Path, fix: str) -> dict[str, Any]:
    """The checkpoint dict at ``path``, loaded with ``weights_only``: tensors and plain values
    only, so that a crafted file can never run code. Anything else is one ``LabError`` line."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise LabError(f"checkpoint {path} does not exist; {fix}.") from None
    except OSError as e:
        raise LabError(f"checkpoint {path} is unreadable ({e.strerror}); {fix}.") from None
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):  # zip, or a pickle
        raise LabError(f"{path} is not a torch checkpoint file (no zip or pickle header); {fix}.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
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


# what to do about a bad checkpoint= file: never delete anything of the user's
GIVEN_FIX = "point checkpoint= at a lab checkpoint of this model and task, or drop it to train one"


def cache_fix(path: Path) -> str:
    """What to do about a bad cached checkpoint: delete that one cache entry, nothing else."""
    return f"delete the cache entry {Path(path).parent} to retrain it"


def load_model(
    path: Path,
    name: str | None = None,
    args: dict[str, Any] | None = None,
    tokenizer: Any = None,
    fix: str = GIVEN_FIX,
) -> tuple[DecoderModel, dict[str, Any]]:
    """Load a checkpoint; with ``name``/``args``, insist it matches the configured model, and
    with ``tokenizer`` that it was trained with that tokenizer. ``fix`` ends every error."""
    path = Path(path)
    ckpt = read_checkpoint(path, fix)
    if name is not None and (ckpt["model"] != name or (args is not None and ckpt["args"] != args)):
        raise LabError(
            f"checkpoint {path} holds model={ckpt['model']} {ckpt['args']}, not the "
            f"configured model={name} {args}; {fix}."
        )
    check_tokenizer(path, ckpt, tokenizer, note=fix == GIVEN_FIX)
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
    and, where training recorded it, the tokenizer's fingerprint (``tokenizer_fingerprint``)."""
    recorded = ckpt.get("tokenizer")
    tok = recorded.get("sha256", "unrecorded") if isinstance(recorded, dict) else "unrecorded"
    return f"vocab {ckpt['src_vocab']}/{ckpt['tgt_vocab']}, tokenizer {tok}"


def load_member(spec: str | Path) -> tuple[DecoderModel, str]:
    """A trained model for a combination (``model=ensemble``/``fusion``, a speculative
    draft): the checkpoint ``spec`` names (``checkpoint_of``) and its ``fingerprint``."""
    path = checkpoint_of(spec)
    fix = f"point {spec} at a lab checkpoint, checkpoint directory or run directory"
    ckpt = read_checkpoint(path, fix)
    return built(ckpt, path, fix), fingerprint(ckpt)
