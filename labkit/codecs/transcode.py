"""Transcoding: decode with one codec, resample if the rates differ, encode with another.

This is what a B2BUA does when two call legs share no codec (a PCMU phone calling a PCMA
trunk, an Opus browser calling a G.722 desk phone). G.711 ↔ G.711 is exact table work;
anything else costs quality, which notebook 08 measures.

    transcode(payload, "pcmu", "pcma")          # bytes -> bytes
    transcode(pcm_int16, None, "g722", rate=8000)   # PCM at 8 kHz -> G.722 bytes
    transcode(packets, "opus", None)            # list of Opus packets -> 48 kHz PCM

Command line (raw payload streams, or WAV by extension)::

    python -m labkit.codecs.transcode --from pcmu --to pcma in.raw out.raw
    python -m labkit.codecs.transcode --to g722 speech.wav out.wav

Introduced in notebook 08.
"""
from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ..dsp.resample import Resampler, resample
from .codec import Codec
from .registry import CODECS, get_codec

__all__ = ["transcode", "decode_stream", "encode_stream", "Transcoder", "main"]

_PCM_NAMES = (None, "pcm", "slin")


def _codec_or_pcm(c) -> Codec | None:
    if isinstance(c, str) and c.strip().lower() in ("pcm", "slin"):
        return None
    return None if c is None else get_codec(c)


def decode_stream(codec: str | Codec, data: bytes | Sequence[bytes],
                  ptime_ms: float = 20) -> np.ndarray:
    """Decode a payload stream: one bytes object (constant-rate codecs, any length of whole
    samples) or a list of packets (needed for Opus, whose packets are not self-delimiting)."""
    c = get_codec(codec)
    dec = c.decoder()
    if isinstance(data, (bytes, bytearray, memoryview)):
        if c.bytes_per_ms is None:
            raise ValueError(f"{c.name} packets are not self-delimiting; pass a list of "
                             "payloads, one per RTP packet")
        size = c.payload_size(ptime_ms)
        data = bytes(data)
        packets = [data[i:i + size] for i in range(0, len(data), size)]
    else:
        packets = list(data)
    if not packets:
        return np.zeros(0, np.int16)
    return np.concatenate([dec.decode(p) for p in packets])


def encode_stream(codec: str | Codec, pcm: np.ndarray, ptime_ms: float = 20) -> list[bytes]:
    """Encode PCM (at the codec's sample rate) into packets of ``ptime_ms``; the last one
    is padded with silence to a whole frame (a real sender would send it at the next tick)."""
    c = get_codec(codec)
    n = c.samples_per_frame(ptime_ms)
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise TypeError(f"encode_stream takes 1-D int16 PCM, got {pcm.dtype} {pcm.shape}")
    short = (-len(pcm)) % n
    if short:
        pcm = np.concatenate([pcm, np.zeros(short, np.int16)])
    enc = c.encoder()
    return [enc.encode(pcm[i:i + n]) for i in range(0, len(pcm), n)]


def transcode(data, src: str | Codec | None, dst: str | Codec | None, *,
              rate: int | None = None, ptime_ms: float = 20):
    """Convert ``data`` from ``src`` to ``dst``; either side may be None (or "pcm") for
    int16 PCM at ``rate`` (default: the other side's sample rate).

    Returns bytes for a constant-rate ``dst`` (G.711, G.722, L16), a list of packets for
    Opus, and an int16 array for PCM.
    """
    s, d = _codec_or_pcm(src), _codec_or_pcm(dst)
    if s is None and d is None:
        raise ValueError("transcode needs a codec on at least one side; for PCM to PCM "
                         "use labkit.dsp.resample.resample")
    if s is None:
        pcm = np.asarray(data)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise TypeError(f"PCM input must be 1-D int16, got {pcm.dtype} {pcm.shape}")
        pcm_rate = rate or d.sample_rate
    else:
        pcm = decode_stream(s, data, ptime_ms)
        pcm_rate = s.sample_rate
    if d is None:
        return resample(pcm, pcm_rate, rate) if rate and rate != pcm_rate else pcm
    if pcm_rate != d.sample_rate:
        pcm = resample(pcm, pcm_rate, d.sample_rate)
    if d.bytes_per_ms is None:
        return encode_stream(d, pcm, ptime_ms)
    if d.name == "g722" and len(pcm) % 2:
        pcm = np.concatenate([pcm, np.zeros(1, np.int16)])
    return d.encoder().encode(pcm)


class Transcoder:
    """One direction of one call leg, packet by packet: what a B2BUA runs when the two legs
    negotiated different codecs. ``feed(payload)`` returns the packets of the other codec
    that are complete so far (0, 1 or more: ptimes may differ, e.g. Opus 20 ms in, PCMU
    10 ms out). Decoder, resampler and encoder states persist between packets.
    """

    def __init__(self, src: str | Codec, dst: str | Codec, ptime_ms: float = 20):
        self.src, self.dst = get_codec(src), get_codec(dst)
        self.ptime_ms = ptime_ms
        self._frame = self.dst.samples_per_frame(ptime_ms)
        self._decoder = self.src.decoder()
        self._encoder = self.dst.encoder()
        self._resampler = (Resampler(self.src.sample_rate, self.dst.sample_rate)
                           if self.src.sample_rate != self.dst.sample_rate else None)
        self._pending = np.zeros(0, np.int16)

    @property
    def delay_ms(self) -> float:
        """Algorithmic delay added by resampling (excluding the codecs' own)."""
        if self._resampler is None:
            return 0.0
        return 1000 * self._resampler.delay / self.src.sample_rate

    def feed(self, payload: bytes) -> list[bytes]:
        pcm = self._decoder.decode(payload)
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        buf = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        whole = len(buf) // self._frame * self._frame
        out = [self._encoder.encode(buf[i:i + self._frame]) for i in range(0, whole, self._frame)]
        self._pending = buf[whole:]
        return out


# ---- files ----------------------------------------------------------------------------

_WAV_G711_FORMAT = {"pcmu": 7, "pcma": 6}   # WAVE_FORMAT_MULAW / WAVE_FORMAT_ALAW


def write_g711_wav(path: Path, codes: bytes, law: str) -> None:
    """A WAV file holding G.711 codes as they are (format tag 7 μ-law / 6 A-law)."""
    fmt = struct.pack("<HHIIHHH", _WAV_G711_FORMAT[law], 1, 8000, 8000, 1, 8, 0)
    fact = struct.pack("<I", len(codes))
    pad = b"\x00" if len(codes) % 2 else b""
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<I", 4) + fact
            + b"data" + struct.pack("<I", len(codes)) + codes + pad)
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf
    try:
        pcm, wav_rate = sf.read(path, dtype="int16", always_2d=True)
    except RuntimeError as exc:   # soundfile's error for unreadable files
        raise ValueError(f"cannot read {path} as audio: {exc}") from None
    if pcm.shape[1] > 1:   # mix down to mono
        pcm = np.clip(np.rint(pcm.astype(np.float64).mean(axis=1)), -32768, 32767)
    return pcm.reshape(-1).astype(np.int16), wav_rate


def _write_wav(path: Path, result, d: Codec | None, rate: int) -> str:
    import soundfile as sf
    if d is not None and d.name in _WAV_G711_FORMAT:
        write_g711_wav(path, result, d.name)
        return f"G.711 {d.rtpmap_name} WAV"
    if d is not None:                  # what the listener hears after this codec
        result = decode_stream(d, result)
        rate = d.sample_rate
    sf.write(path, result, rate, subtype="PCM_16")
    return f"16-bit PCM WAV at {rate} Hz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m labkit.codecs.transcode",
        description="Transcode audio between codecs. Raw files hold a payload stream "
                    "(G.711/G.722/L16 bytes back to back, or slin: int16 little-endian PCM); "
                    ".wav files hold audio (input: any WAV, mixed to mono; output: G.711 "
                    "WAV for pcmu/pcma, else 16-bit PCM of the decoded result).",
        epilog=f"codecs: {', '.join(CODECS)}, slin")
    p.add_argument("--from", dest="src", help="codec of a raw input file")
    p.add_argument("--to", dest="dst", required=True, help="codec to encode into")
    p.add_argument("--rate", type=int, default=8000, help="sample rate of raw slin (default 8000)")
    p.add_argument("--ptime", type=float, default=20, help="packet duration in ms (default 20)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    args = p.parse_args(argv)
    try:
        d = _codec_or_pcm(args.dst)
        if args.input.suffix.lower() == ".wav":
            if args.src and args.src.lower() not in ("wav", "slin", "pcm"):
                raise ValueError("--from is for raw input; a .wav file says its own format")
            data, rate = _read_wav(args.input)
            result = transcode(data, None, d, rate=rate, ptime_ms=args.ptime)
            in_rate = rate
        else:
            if not args.src:
                raise ValueError("raw input needs --from CODEC (or --from slin --rate HZ)")
            raw = args.input.read_bytes()
            s = _codec_or_pcm(args.src)
            if s is None:
                if len(raw) % 2:
                    raise ValueError(f"{args.input}: odd byte count, not int16 PCM")
                raw = np.frombuffer(raw, "<i2").astype(np.int16)
            in_rate = args.rate if s is None else s.sample_rate
            result = transcode(raw, s, d, rate=args.rate if s is None else None,
                               ptime_ms=args.ptime)
        if args.output.suffix.lower() == ".wav":
            what = _write_wav(args.output, result, d, in_rate if d is None else 0)
        else:
            if isinstance(result, list):
                raise ValueError(f"{d.name} packets are not self-delimiting, so a raw file "
                                 "cannot hold them; write a .wav to hear the result")
            if isinstance(result, np.ndarray):
                result = result.astype("<i2").tobytes()
            args.output.write_bytes(result)
            what = f"raw {d.name if d else 'slin'}"
    except (ValueError, TypeError, OSError) as exc:
        print(f"transcode: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.input} -> {args.output} ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
