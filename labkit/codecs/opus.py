"""Opus (RFC 6716) for RTP (RFC 7587) through libopus, as packaged by PyAV (``av``).

Opus is what WebRTC speaks: 6-510 kbit/s, narrowband to fullband, frames of 2.5-60 ms,
built-in loss robustness. Its RTP clock is always 48 kHz and its rtpmap always says two
channels (``opus/48000/2``) whatever is actually sent. Here PCM is mono 48 kHz int16.

aiortc drives libopus the same way (through ``av``), which keeps one maintained
binding in the project. Encoder and decoder are stateful: one per call leg and direction.
Introduced in notebook 08.
"""
from __future__ import annotations

import numpy as np

from .codec import as_pcm

__all__ = ["OpusEncoder", "OpusDecoder", "SAMPLE_RATE", "FRAME_SAMPLES"]

SAMPLE_RATE = 48000
#: Frame lengths libopus accepts at 48 kHz (2.5, 5, 10, 20, 40, 60 ms).
FRAME_SAMPLES = (120, 240, 480, 960, 1920, 2880)
_APPLICATIONS = ("voip", "audio", "lowdelay")


def _av():
    try:
        import av
    except ImportError as exc:   # pragma: no cover - depends on the environment
        raise ImportError("Opus needs PyAV with libopus: pip install 'av>=12'") from exc
    return av


class OpusEncoder:
    """Stateful Opus encoder: 48 kHz mono int16, one whole frame per call -> one packet.

    The frame length is fixed by the first call (any of ``FRAME_SAMPLES``); later calls
    must send the same length, as a real RTP sender with a fixed ptime does.
    """

    def __init__(self, bitrate: int = 32000, application: str = "voip", fec: bool = True,
                 complexity: int = 10):
        if not 6000 <= bitrate <= 510000:
            raise ValueError(f"Opus bitrate must be 6000..510000 bit/s, got {bitrate!r}")
        if application not in _APPLICATIONS:
            raise ValueError(f"Opus application must be one of {', '.join(_APPLICATIONS)}, "
                             f"got {application!r}")
        if not 0 <= complexity <= 10:
            raise ValueError(f"Opus complexity must be 0..10, got {complexity!r}")
        self.bitrate, self.application, self.fec, self.complexity = (
            bitrate, application, fec, complexity)
        self.frame_samples: int | None = None
        self._ctx = None

    def _open(self, frame_samples: int):
        av = _av()
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.bit_rate = self.bitrate
        ctx.options = {
            "application": self.application,
            "frame_duration": f"{frame_samples * 1000 / SAMPLE_RATE:g}",
            "fec": "1" if self.fec else "0",
            "compression_level": str(self.complexity),
            "packet_loss": "10" if self.fec else "0",
        }
        ctx.open()
        self._ctx, self.frame_samples = ctx, frame_samples

    def encode(self, pcm: np.ndarray) -> bytes:
        arr = as_pcm(pcm, "Opus encoder")
        if self._ctx is None:
            if arr.size not in FRAME_SAMPLES:
                raise ValueError(f"Opus frames at 48 kHz must hold one of "
                                 f"{', '.join(map(str, FRAME_SAMPLES))} samples "
                                 f"(2.5-60 ms), got {arr.size}")
            self._open(arr.size)
        elif arr.size != self.frame_samples:
            raise ValueError(f"this Opus encoder sends {self.frame_samples}-sample frames; "
                             f"got {arr.size} (make a new encoder to change ptime)")
        av = _av()
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        packets = self._ctx.encode(frame)
        if len(packets) != 1:   # libopus emits exactly one packet per full frame
            raise RuntimeError(f"libopus returned {len(packets)} packets for one frame")
        return bytes(packets[0])


class OpusDecoder:
    """Stateful Opus decoder: one RTP payload -> 48 kHz mono int16 (stereo is downmixed)."""

    def __init__(self):
        av = _av()
        ctx = av.CodecContext.create("libopus", "r")
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.open()
        self._ctx = ctx

    def decode(self, payload: bytes) -> np.ndarray:
        if not payload:
            raise ValueError("empty Opus payload (a lost packet is concealed by the jitter "
                             "buffer's PLC, not by decoding nothing)")
        av = _av()
        try:
            frames = self._ctx.decode(av.Packet(bytes(payload)))
        except av.error.InvalidDataError as exc:
            raise ValueError(f"invalid Opus packet ({len(payload)} bytes, TOC byte "
                             f"0x{payload[0]:02x}): {exc}") from None
        if not frames:
            return np.zeros(0, np.int16)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16,
                                                                                    copy=False)
