"""Decoder architectures behind one decoding interface (see ``lab.models.base``)."""

from lab.models import decoder_only, hf, rnn, transformer  # noqa: F401  (registration)
from lab.models.base import BOS_ID, EOS_ID, PAD_ID, UNK_ID, DecoderModel, State

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "DecoderModel", "State"]
