"""G.711 μ-law and A-law companding, written here in numpy (introduced in notebook 08).

G.711 squeezes a 14-bit (μ-law) or 13-bit (A-law) linear sample into 8 bits: a sign, a
3-bit segment (the exponent: which power-of-two band the magnitude falls in) and a
4-bit step inside that segment. Small signals get fine steps, loud ones coarse steps, so
the signal-to-noise ratio stays near 38 dB over a 40 dB range of levels.

Everything here is a table lookup: the 65536-entry encode tables are computed once from
the segment algorithm below, the 256-entry decode tables from the G.711 reconstruction
formula (and a 65536-entry table that decodes two codes per lookup). Encoding is ~10x
faster than audioop's C loop; decoding a 60 s buffer is ~1.05x on speech and ~0.92x on
random bytes, the ceiling of numpy's gather (see ``_decode``; ``benchmarks/bench_g711.py``).

16-bit input is reduced to G.711's 14/13 bits by an arithmetic shift (rounding towards
minus infinity), the convention of Python's ``audioop`` and of the Sun reference code;
the results are bit-exact with ``audioop`` for all 65536 inputs (``tests/codecs``).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode",
    "ULAW_SILENCE", "ALAW_SILENCE",
]

#: The code for a zero sample, used to fill silent frames.
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5

_ULAW_BIAS = 33      # added to the 14-bit magnitude so every segment starts at a power of two
_ULAW_CLIP = 8159    # largest 14-bit magnitude μ-law represents (8159 + 33 = 8192 = 2**13)


def _segment(magnitude: np.ndarray, first_edge_bits: int) -> np.ndarray:
    """Index of the power-of-two band: 0 below 2**first_edge_bits, then one per doubling."""
    seg = np.zeros(magnitude.shape, dtype=np.int64)
    for bits in range(first_edge_bits, first_edge_bits + 7):
        seg += magnitude >= (1 << bits)
    return seg


def _build_ulaw_encode_table() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int64) >> 2          # 16 -> 14 bits
    negative = x < 0
    mag = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS        # 33 .. 8192
    seg = np.minimum(_segment(mag, 6), 7)                       # bands start at 64, 128, ...
    step = (mag >> (seg + 1)) & 0x0F
    code = (seg << 4) | step
    # 8192 (only reachable after clipping) is past the last band: the largest code.
    code = np.where(mag >= 8192, 0x7F, code)
    # Transmitted inverted (so silence is 0xFF, mostly ones on the line); sign bit 1 = positive.
    code = np.where(negative, 0x7F ^ code, 0xFF ^ code)
    table = np.empty(65536, dtype=np.uint8)
    table[np.arange(-32768, 32768) & 0xFFFF] = code             # index by the uint16 bit pattern
    return table


def _build_alaw_encode_table() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int64) >> 3          # 16 -> 13 bits
    negative = x < 0
    mag = np.where(negative, -x - 1, x)                        # 0 .. 4095, symmetric around -0.5
    seg = _segment(mag, 5)                                      # bands start at 32, 64, ...
    step = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    code = (seg << 4) | step
    # Even bits are inverted on the line (0x55) so idle channels toggle; sign bit 1 = positive.
    code = np.where(negative, code ^ 0x55, code ^ 0xD5)
    table = np.empty(65536, dtype=np.uint8)
    table[np.arange(-32768, 32768) & 0xFFFF] = code
    return table


def _build_ulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int64) & 0xFF
    seg = (code >> 4) & 0x07
    step = code & 0x0F
    # G.711 reconstruction: the middle of the step, ((2*step + 33) << seg) - 33, in 14-bit units.
    mag = (((2 * step + _ULAW_BIAS) << seg) - _ULAW_BIAS) * 4
    return np.where(code & 0x80, -mag, mag).astype(np.int16)


def _build_alaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int64) ^ 0x55
    seg = (code >> 4) & 0x07
    step = code & 0x0F
    # Segment 0 and 1 share one step size; from segment 2 on the step doubles (13-bit units).
    mag = np.where(seg == 0, 2 * step + 1, (2 * step + 33) << np.maximum(seg - 1, 0)) * 8
    return np.where(code & 0x80, mag, -mag).astype(np.int16)


def _pair_table(single: np.ndarray) -> np.ndarray:
    """65536 entries: two codes read as one uint16 -> their two samples as one uint32.

    numpy gathers cost about the same per element whatever the element size, so decoding
    two samples per lookup halves the work (decoding is otherwise slower than audioop's C).
    """
    # the two bytes whose uint16 view (native byte order, as at decode time) is each index
    codes = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    pairs = np.empty((65536, 2), dtype=np.int16)
    pairs[:, 0], pairs[:, 1] = single[codes[:, 0]], single[codes[:, 1]]
    return pairs.view(np.uint32).reshape(-1)   # memory order kept: first code, first sample


_ULAW_ENC = _build_ulaw_encode_table()
_ALAW_ENC = _build_alaw_encode_table()
_ULAW_DEC = _build_ulaw_decode_table()
_ALAW_DEC = _build_alaw_decode_table()
_ULAW_DEC2 = _pair_table(_ULAW_DEC)
_ALAW_DEC2 = _pair_table(_ALAW_DEC)
for _t in (_ULAW_ENC, _ALAW_ENC, _ULAW_DEC, _ALAW_DEC, _ULAW_DEC2, _ALAW_DEC2):
    _t.setflags(write=False)


#: Below this many codes one plain 256-entry lookup per code costs least (per-call overhead
#: dominates); from here on the pair table's halved lookup count wins (measured crossover
#: between 1000 and 2000 codes on x86-64).
_PAIR_CUTOFF = 1024


def _decode(data, single: np.ndarray, pairs: np.ndarray, what: str) -> np.ndarray:
    """Codes -> int16 samples by table lookup; 2 codes per lookup on long buffers.

    The cost is numpy's gather loop: ~0.5 ns per lookup when the table is in L1 cache,
    ~0.75 ns when lookups jump around the 256 KB pair table (random codes). audioop's C
    loop spends ~0.37 ns per sample, so two samples per lookup bring numpy level with it
    on white noise and ahead on speech, whose code pairs cluster in a few cache lines.
    Tried and slower (issue 4): chunks with a reused intp index buffer (the cast is only
    ~5% of the time), fancy indexing, take's clip/raise modes, uint8 indices, two
    bytes.translate passes + interleave, codecs.charmap_decode, a float16 formula.
    """
    if type(data) is bytes:                 # an RTP payload: the common case, least overhead
        codes = np.frombuffer(data, dtype=np.uint8)
    else:
        codes = _as_codes(data, what)
    n = codes.size
    if n < _PAIR_CUTOFF:
        return single.take(codes)           # uint8 indices are always in range
    flat = codes.reshape(-1) if codes.flags.c_contiguous else \
        np.ascontiguousarray(codes).reshape(-1)
    if n & 1 == 0:
        # numpy allocates the result itself (measured as fast as passing out=)
        out = pairs.take(flat.view(np.uint16), mode="wrap").view(np.int16)
    else:
        out = np.empty(n, dtype=np.int16)
        out[-1] = single[flat[-1]]
        pairs.take(flat[:-1].view(np.uint16), mode="wrap", out=out[:-1].view(np.uint32))
    return out.reshape(codes.shape)


def _as_int16(pcm, what: str) -> np.ndarray:
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} takes an int16 numpy array, not bytes; "
                        "use np.frombuffer(data, dtype='<i2') for raw little-endian PCM")
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise TypeError(f"{what} takes int16 samples, got dtype {arr.dtype}")
    return arr


def _as_codes(data, what: str) -> np.ndarray:
    if isinstance(data, memoryview) and not data.c_contiguous:
        data = data.tobytes()               # a strided view: its bytes in logical order
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    arr = np.asarray(data)
    if arr.dtype != np.uint8:
        raise TypeError(f"{what} takes uint8 codes or bytes, got dtype {arr.dtype}")
    return arr


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """int16 samples (any shape) -> μ-law codes (uint8, same shape)."""
    arr = _as_int16(pcm, "ulaw_encode")
    return _ULAW_ENC.take(arr.view(np.uint16), mode="wrap")


def ulaw_decode(codes) -> np.ndarray:
    """μ-law codes (uint8 array of any shape, or bytes) -> int16 samples."""
    return _decode(codes, _ULAW_DEC, _ULAW_DEC2, "ulaw_decode")


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """int16 samples (any shape) -> A-law codes (uint8, same shape)."""
    arr = _as_int16(pcm, "alaw_encode")
    return _ALAW_ENC.take(arr.view(np.uint16), mode="wrap")


def alaw_decode(codes) -> np.ndarray:
    """A-law codes (uint8 array of any shape, or bytes) -> int16 samples."""
    return _decode(codes, _ALAW_DEC, _ALAW_DEC2, "alaw_decode")


def ulaw_to_alaw(codes) -> np.ndarray:
    """Transcode μ-law to A-law codes through the linear value (what a gateway does)."""
    return alaw_encode(ulaw_decode(codes))


def alaw_to_ulaw(codes) -> np.ndarray:
    """Transcode A-law to μ-law codes through the linear value."""
    return ulaw_encode(alaw_decode(codes))


class UlawEncoder:
    """Stateless PCMU encoder: int16 PCM -> payload bytes (one byte per sample)."""

    def encode(self, pcm: np.ndarray) -> bytes:
        from .codec import as_pcm
        return ulaw_encode(as_pcm(pcm, "PCMU encoder")).tobytes()


class UlawDecoder:
    """Stateless PCMU decoder: payload bytes -> int16 PCM."""

    def decode(self, payload: bytes) -> np.ndarray:
        return ulaw_decode(bytes(payload))


class AlawEncoder:
    """Stateless PCMA encoder: int16 PCM -> payload bytes (one byte per sample)."""

    def encode(self, pcm: np.ndarray) -> bytes:
        from .codec import as_pcm
        return alaw_encode(as_pcm(pcm, "PCMA encoder")).tobytes()


class AlawDecoder:
    """Stateless PCMA decoder: payload bytes -> int16 PCM."""

    def decode(self, payload: bytes) -> np.ndarray:
        return alaw_decode(bytes(payload))
