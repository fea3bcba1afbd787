"""What every codec in the registry looks like (introduced in notebook 08).

A :class:`Codec` is the description SDP negotiates (name, payload type, clock rate,
channels) plus two factories: ``encoder()`` and ``decoder()`` return fresh, independent
objects, stateful where the codec is (G.722's ADPCM predictors, Opus), so one call leg's
state never leaks into another's. PCM is always mono ``int16`` at ``sample_rate``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

__all__ = ["Codec", "Encoder", "Decoder", "as_pcm"]


class Encoder(Protocol):
    def encode(self, pcm: np.ndarray) -> bytes: ...


class Decoder(Protocol):
    def decode(self, payload: bytes) -> np.ndarray: ...


def as_pcm(pcm, who: str) -> np.ndarray:
    """Check that ``pcm`` is a 1-D int16 array (the one PCM type labkit passes around)."""
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        raise TypeError(f"{who} takes an int16 numpy array, not bytes; "
                        "use np.frombuffer(data, dtype='<i2') for raw little-endian PCM")
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise TypeError(f"{who} takes int16 samples, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{who} takes mono samples (a 1-D array), got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class Codec:
    """An audio codec as the RTP/SDP layer sees it.

    ``clock_rate`` is the RTP timestamp rate written in ``a=rtpmap`` and may differ from
    ``sample_rate``, the rate of the audio itself: G.722 is 16 kHz audio on an 8 kHz clock
    (an RFC 3551 mistake kept for compatibility). ``channels`` is the rtpmap channel count
    (Opus always says 2, RFC 7587) while the PCM handed in and out here is mono.
    ``payload_type`` is the static type, or the customary default for a dynamic one
    (``dynamic`` is then True and SDP decides the real number).
    """

    name: str
    rtpmap_name: str
    payload_type: int | None
    clock_rate: int
    sample_rate: int
    bitrate: int
    make_encoder: Callable[..., Encoder] = field(repr=False, compare=False)
    make_decoder: Callable[..., Decoder] = field(repr=False, compare=False)
    channels: int = 1
    dynamic: bool = False
    fmtp: str | None = None
    #: payload bytes per ms of audio for constant-rate codecs; None for variable (Opus)
    bytes_per_ms: float | None = None
    #: frame durations the codec accepts; None means any whole number of ms
    ptimes_ms: tuple[float, ...] | None = None
    description: str = ""

    def encoder(self, **options) -> Encoder:
        """A fresh encoder (own state); ``options`` such as ``bitrate`` go to the codec."""
        return self.make_encoder(**options)

    def decoder(self, **options) -> Decoder:
        """A fresh decoder (own state)."""
        return self.make_decoder(**options)

    def _check_ptime(self, ptime_ms: float) -> None:
        if not isinstance(ptime_ms, (int, float)) or ptime_ms <= 0:
            raise ValueError(f"ptime must be a positive number of ms, got {ptime_ms!r}")
        if self.ptimes_ms is not None and ptime_ms not in self.ptimes_ms:
            allowed = ", ".join(f"{p:g}" for p in self.ptimes_ms)
            raise ValueError(f"{self.name} frames must be one of {allowed} ms, got {ptime_ms:g}")

    def samples_per_frame(self, ptime_ms: float = 20) -> int:
        """Audio samples (at ``sample_rate``) in one packet of ``ptime_ms``."""
        self._check_ptime(ptime_ms)
        n = self.sample_rate * ptime_ms / 1000
        if n != int(n):
            raise ValueError(f"{ptime_ms:g} ms is not a whole number of samples at "
                             f"{self.sample_rate} Hz")
        return int(n)

    def timestamp_increment(self, ptime_ms: float = 20) -> int:
        """How far the RTP timestamp advances per packet of ``ptime_ms`` (at ``clock_rate``)."""
        self._check_ptime(ptime_ms)
        n = self.clock_rate * ptime_ms / 1000
        if n != int(n):
            raise ValueError(f"{ptime_ms:g} ms is not a whole number of ticks at "
                             f"{self.clock_rate} Hz")
        return int(n)

    def payload_size(self, ptime_ms: float = 20) -> int | None:
        """Bytes in one packet's payload, or None for a variable-rate codec."""
        if self.bytes_per_ms is None:
            return None
        return int(self.bytes_per_ms * ptime_ms)

    @property
    def rtpmap(self) -> str:
        """The ``a=rtpmap`` value after the payload type, e.g. ``opus/48000/2``."""
        base = f"{self.rtpmap_name}/{self.clock_rate}"
        return f"{base}/{self.channels}" if self.channels != 1 else base
