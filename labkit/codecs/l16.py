"""L16: uncompressed 16-bit linear PCM in network byte order (RFC 3551 §4.5.11).

The simplest codec there is, and the reference the others are measured against. On the
wire samples are big-endian; in labkit PCM is native int16, so the codec is a byte swap.
"""
from __future__ import annotations

import numpy as np

from .codec import as_pcm

__all__ = ["L16Encoder", "L16Decoder"]


class L16Encoder:
    def encode(self, pcm: np.ndarray) -> bytes:
        return as_pcm(pcm, "L16 encoder").astype(">i2").tobytes()


class L16Decoder:
    def decode(self, payload: bytes) -> np.ndarray:
        if len(payload) % 2:
            raise ValueError(f"L16 payload has an odd length ({len(payload)} bytes); "
                             "every sample is 2 bytes")
        return np.frombuffer(bytes(payload), dtype=">i2").astype(np.int16)
