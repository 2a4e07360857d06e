"""Decoder architectures behind one decoding interface (see ``lab.models.base``)."""

from lab.models import decoder_only, ensemble, fusion, hf, rnn, transformer  # noqa: F401
from lab.models.base import DecoderModel, State

__all__ = ["DecoderModel", "State"]
