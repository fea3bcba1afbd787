"""G.722 wideband (7 kHz) speech: 16 kHz audio in 64 kbit/s, on an 8 kHz RTP clock.

G.722 splits the band in two with a QMF filter bank and codes each half with ADPCM
(6 bits for 0-4 kHz, 2 bits for 4-8 kHz at 64 kbit/s): one byte per pair of samples,
so a 20 ms packet is 320 samples in 160 bytes. RFC 3551 registered it with an 8000 Hz
clock by mistake and everyone kept the mistake, so timestamps advance by 160 per 20 ms.

The ADPCM itself is the maintained ``G722`` package (libg722, C, by the Sippy project). It
was checked before being chosen: its bitstream is byte-identical to FFmpeg's G.722
encoder, either decodes the other's stream, and speech round-trips at ~28 dB SNR
(``tests/codecs/test_g722_opus.py``, notebook 08). Introduced in notebook 08.
"""
from __future__ import annotations

import numpy as np

from .codec import as_pcm

__all__ = ["G722Encoder", "G722Decoder", "BITRATES"]

#: G.722 also has 56 and 48 kbit/s modes (1 or 2 low-band bits given to side data), but
#: RTP carries 64 kbit/s only (RFC 3551 §4.5.2), so that is the one offered here.
BITRATES = (64000,)


def _library():
    try:
        import G722
    except ImportError as exc:   # pragma: no cover - depends on the environment
        raise ImportError("G.722 needs the 'G722' package: pip install 'G722>=1.2'") from exc
    return G722


def _check_bitrate(bitrate: int) -> int:
    if bitrate not in BITRATES:
        raise ValueError(f"G.722 over RTP is 64000 bit/s (RFC 3551), got {bitrate!r}")
    return bitrate


class G722Encoder:
    """Stateful G.722 encoder: 16 kHz int16 PCM (even length) -> payload bytes."""

    def __init__(self, bitrate: int = 64000):
        self.bitrate = _check_bitrate(bitrate)
        self._state = _library().G722(16000, self.bitrate)

    def encode(self, pcm: np.ndarray) -> bytes:
        arr = as_pcm(pcm, "G.722 encoder")
        if arr.size % 2:
            raise ValueError(f"G.722 encodes pairs of samples; got an odd count ({arr.size})")
        return self._state.encode(np.ascontiguousarray(arr))


class G722Decoder:
    """Stateful G.722 decoder: payload bytes -> 16 kHz int16 PCM (2 samples per byte at 64k)."""

    def __init__(self, bitrate: int = 64000):
        self.bitrate = _check_bitrate(bitrate)
        self._state = _library().G722(16000, self.bitrate)

    def decode(self, payload: bytes) -> np.ndarray:
        if not payload:
            return np.zeros(0, np.int16)
        return np.frombuffer(self._state.decode(bytes(payload)), dtype=np.int16).copy()
