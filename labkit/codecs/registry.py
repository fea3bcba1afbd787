"""The codec registry: find a codec by name, by static payload type or by rtpmap.

Like aiortc's codec table, one place maps names to codecs and an unknown name is a clear
``ValueError`` listing what exists. G.722 and Opus load their libraries only when an
encoder or decoder is first made, so ``import labkit.codecs`` needs nothing but numpy.
"""
from __future__ import annotations

import importlib
import numbers

from .codec import Codec
from .g711 import AlawDecoder, AlawEncoder, UlawDecoder, UlawEncoder
from .l16 import L16Decoder, L16Encoder

__all__ = ["CODECS", "get_codec", "codec_for_payload_type", "codec_for_rtpmap"]


def _lazy(module: str, cls: str):
    def make(**options):
        return getattr(importlib.import_module(f"labkit.codecs.{module}"), cls)(**options)
    make.__qualname__ = f"{module}.{cls}"
    return make


def _plain(cls):
    def make():
        return cls()
    return make


_ALL = [
    Codec("pcmu", "PCMU", 0, 8000, 8000, 64000, _plain(UlawEncoder), _plain(UlawDecoder),
          bytes_per_ms=8, description="G.711 μ-law (North America, Japan)"),
    Codec("pcma", "PCMA", 8, 8000, 8000, 64000, _plain(AlawEncoder), _plain(AlawDecoder),
          bytes_per_ms=8, description="G.711 A-law (rest of the world)"),
    Codec("g722", "G722", 9, 8000, 16000, 64000,
          _lazy("g722", "G722Encoder"), _lazy("g722", "G722Decoder"),
          bytes_per_ms=8, description="G.722 wideband SB-ADPCM (16 kHz audio, 8 kHz RTP clock)"),
    Codec("opus", "opus", 111, 48000, 48000, 32000,
          _lazy("opus", "OpusEncoder"), _lazy("opus", "OpusDecoder"),
          channels=2, dynamic=True, fmtp="minptime=10;useinbandfec=1",
          ptimes_ms=(2.5, 5, 10, 20, 40, 60), description="Opus (RFC 6716/7587), via libopus"),
    Codec("l16", "L16", None, 8000, 8000, 128000, _plain(L16Encoder), _plain(L16Decoder),
          dynamic=True, bytes_per_ms=16, description="16-bit linear PCM, 8 kHz"),
    Codec("l16-16k", "L16", None, 16000, 16000, 256000, _plain(L16Encoder), _plain(L16Decoder),
          dynamic=True, bytes_per_ms=32, description="16-bit linear PCM, 16 kHz"),
    Codec("l16-44k", "L16", 11, 44100, 44100, 705600, _plain(L16Encoder), _plain(L16Decoder),
          bytes_per_ms=88.2, description="16-bit linear PCM, 44.1 kHz mono (static PT 11)"),
]

#: Every codec by its registry name.
CODECS: dict[str, Codec] = {c.name: c for c in _ALL}


def get_codec(name: str | Codec) -> Codec:
    """The codec called ``name`` (case-insensitive; also accepts an rtpmap like ``PCMU/8000``)."""
    if isinstance(name, Codec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"codec name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key in CODECS:
        return CODECS[key]
    if "/" in key:
        parts = key.split("/")
        try:
            return codec_for_rtpmap(parts[0], int(parts[1]),
                                    int(parts[2]) if len(parts) > 2 else 1)
        except (ValueError, IndexError):
            pass
    raise ValueError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")


def codec_for_payload_type(pt: int) -> Codec:
    """The codec with static payload type ``pt`` (or its customary dynamic default, e.g. 111)."""
    if isinstance(pt, bool) or not isinstance(pt, numbers.Integral) or not 0 <= pt <= 127:
        raise ValueError(f"RTP payload type must be an integer 0..127, got {pt!r}")
    for c in _ALL:
        if c.payload_type == int(pt):
            return c
    known = ", ".join(f"{c.payload_type}={c.name}" for c in _ALL if c.payload_type is not None)
    raise ValueError(f"no codec for payload type {pt}; known: {known} "
                     "(other dynamic types are mapped by SDP a=rtpmap)")


def codec_for_rtpmap(encoding: str, clock_rate: int, channels: int = 1) -> Codec:
    """The codec an SDP ``a=rtpmap:<pt> encoding/clock_rate[/channels]`` line names."""
    enc = encoding.strip().lower()
    for c in _ALL:
        if c.rtpmap_name.lower() == enc and c.clock_rate == clock_rate and c.channels == channels:
            return c
    known = ", ".join(sorted({c.rtpmap for c in _ALL}))
    raise ValueError(f"no codec for rtpmap {encoding}/{clock_rate}"
                     f"{'/' + str(channels) if channels != 1 else ''}; known: {known}")
