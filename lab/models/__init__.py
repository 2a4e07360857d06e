"""Decoder architectures behind one decoding interface (see ``lab.models.base``)."""

from lab.models import decoder_only, hf, rnn, transformer  # noqa: F401  (registration)
from lab.models.base import DecoderModel, State

__all__ = ["DecoderModel", "State"]
