"""Encoder, attention, decoder and the model that joins them (``build_model``)."""
from .seq2seq import Seq2Seq, build_model  # noqa: F401
