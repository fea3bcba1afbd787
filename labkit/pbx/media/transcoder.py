"""One direction of a call whose legs speak different codecs: RTP in, RTP out, sans-I/O.

When leg A negotiated PCMU and leg B PCMA (or G.722, Opus), the relay cannot pass packets
through. Per 20 ms packet it decodes with A's codec, resamples if the sample rates differ
(8 kHz G.711 <-> 16 kHz G.722 <-> 48 kHz Opus), encodes with B's codec (μ-law <-> A-law
takes a 256-entry byte table instead, bit-identical to decode + encode) and writes a new
RTP header in the *out* leg's terms: its payload type, its own SSRC, and sequence numbers and
timestamps mapped from the incoming ones by a fixed offset (timestamps scaled by the clock
ratio), so a gap or reordering on the way in stays visible on the way out.

RFC 4733 telephone-events share the stream's SSRC, sequence and timestamp space, so they go
through the same header mapping with only their payload type changed (and the event duration
scaled if the clock rates differ). Comfort noise and anything not negotiated is dropped.

Introduced in notebook 06; the codecs are notebook 08's.
"""
from __future__ import annotations

import random
import struct
from fractions import Fraction

import numpy as np

from labkit.codecs import get_codec
from labkit.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from labkit.codecs.codec import Codec
from labkit.dsp.resample import Resampler
from labkit.rtp.packet import RtpError, RtpPacket

__all__ = ["Transcoder", "split_rtp"]

_HEADER = struct.Struct("!BBHII")


def split_rtp(data: bytes) -> tuple[int, int, int, int, bytes]:
    """``(marker|payload type byte, seq, timestamp, ssrc, payload)`` of an RTP packet; the usual
    12-byte header is unpacked directly, CSRC lists, extensions and padding go through the full
    parser. Raises :class:`RtpError` for what is not RTP."""
    if len(data) >= 12 and data[0] == 0x80:     # the usual header: no CSRC, extension, padding
        _, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        return second, seq, ts, ssrc, data[12:]
    packet = RtpPacket.parse(data)
    return ((0x80 if packet.marker else 0) | packet.payload_type, packet.sequence_number,
            packet.timestamp, packet.ssrc, packet.payload)


def _g711_table(src: str, dst: str) -> bytes | None:
    """A 256-byte table mapping each code of one G.711 law to the other: exactly what decoding
    and re-encoding gives (built that way), at the cost of ``bytes.translate``."""
    if {src, dst} != {"pcmu", "pcma"}:
        return None
    codes = np.arange(256, dtype=np.uint8)
    pcm = ulaw_decode(codes) if src == "pcmu" else alaw_decode(codes)
    return (alaw_encode(pcm) if dst == "pcma" else ulaw_encode(pcm)).astype(np.uint8).tobytes()


class Transcoder:
    """Convert one direction's RTP packets from ``(in_codec, in_pt)`` to ``(out_codec, out_pt)``.

    ``convert(data) -> bytes | None``: None when the packet is dropped; ``drop_reason`` then
    says why (counted by the relay). One instance per direction: codec state is per stream.
    """

    def __init__(self, in_codec: Codec | str, in_pt: int, out_codec: Codec | str, out_pt: int,
                 in_dtmf_pt: int | None = None, out_dtmf_pt: int | None = None,
                 out_ssrc: int | None = None, rng: random.Random | None = None):
        self.in_codec, self.out_codec = get_codec(in_codec), get_codec(out_codec)
        self.in_pt, self.out_pt = in_pt, out_pt
        self.in_dtmf_pt, self.out_dtmf_pt = in_dtmf_pt, out_dtmf_pt
        rng = rng or random.Random()
        self.out_ssrc = rng.getrandbits(32) if out_ssrc is None else out_ssrc
        self._rng = rng
        self._decoder = self.in_codec.decoder()
        self._encoder = self.out_codec.encoder()
        self._table = _g711_table(self.in_codec.name, self.out_codec.name)
        rates = (self.in_codec.sample_rate, self.out_codec.sample_rate)
        self._resampler = Resampler(*rates) if rates[0] != rates[1] else None
        self.clock_ratio = Fraction(self.out_codec.clock_rate, self.in_codec.clock_rate)
        self._ratio = int(self.clock_ratio) if self.clock_ratio.denominator == 1 else 0
        self._in_ssrc: int | None = None
        self._seq_offset = 0
        self._in_ts0 = 0
        self._out_ts0 = 0
        self._last_out: tuple[int, int] | None = None   # (seq, ts) of the last packet sent
        self.converted = 0
        self.events = 0
        self.drop_reason = ""

    def _rebase(self, ssrc: int, seq: int, ts: int) -> None:
        """Start (or, on an SSRC change, continue) the out stream's numbering."""
        if self._last_out is None:
            out_seq, out_ts = self._rng.getrandbits(16), self._rng.getrandbits(32)
        else:
            step = self.out_codec.timestamp_increment(20)
            out_seq, out_ts = (self._last_out[0] + 1) & 0xFFFF, (self._last_out[1] + step) & 0xFFFFFFFF
        self._in_ssrc = ssrc
        self._seq_offset = (out_seq - seq) & 0xFFFF
        self._in_ts0, self._out_ts0 = ts, out_ts

    def _packet(self, second: int, seq: int, ts: int, ssrc: int, pt: int, payload: bytes) -> bytes:
        """The out leg's header (V=2, no CSRC/extension/padding; marker kept) + ``payload``."""
        if ssrc != self._in_ssrc:
            self._rebase(ssrc, seq, ts)
        seq = (seq + self._seq_offset) & 0xFFFF
        elapsed = (ts - self._in_ts0) & 0xFFFFFFFF
        ts = (self._out_ts0 + (elapsed * self._ratio if self._ratio else int(elapsed * self.clock_ratio))
              ) & 0xFFFFFFFF
        self._last_out = (seq, ts)
        return _HEADER.pack(0x80, (second & 0x80) | pt, seq, ts, self.out_ssrc) + payload

    def convert(self, data: bytes) -> bytes | None:
        """The packet to send on the out leg, or None (see ``drop_reason``)."""
        try:
            second, seq, ts, ssrc, payload = split_rtp(data)
        except RtpError as exc:
            self.drop_reason = f"malformed: {exc}"
            return None
        pt = second & 0x7F
        if pt == self.in_pt:
            if self._table is not None:         # μ-law <-> A-law: one byte table, like Asterisk's
                self.converted += 1
                return self._packet(second, seq, ts, ssrc, self.out_pt, payload.translate(self._table))
            try:
                pcm = self._decoder.decode(payload)
            except ValueError as exc:
                self.drop_reason = f"cannot decode {self.in_codec.name}: {exc}"
                return None
            if self._resampler is not None:
                pcm = self._resampler.process(pcm)
            self.converted += 1
            return self._packet(second, seq, ts, ssrc, self.out_pt, self._encoder.encode(pcm))
        if pt == self.in_dtmf_pt and self.in_dtmf_pt is not None:
            if self.out_dtmf_pt is None:
                self.drop_reason = "telephone-event not negotiated on the other leg"
                return None
            if len(payload) < 4:
                self.drop_reason = "telephone-event payload shorter than 4 bytes"
                return None
            if self.clock_ratio != 1:
                duration = min(0xFFFF, int(struct.unpack_from("!H", payload, 2)[0] * self.clock_ratio))
                payload = payload[:2] + struct.pack("!H", duration) + payload[4:]
            self.events += 1
            return self._packet(second, seq, ts, ssrc, self.out_dtmf_pt, payload)
        self.drop_reason = f"payload type {pt} not negotiated for this leg"
        return None

    def encode_pcm(self, pcm, second: int, seq: int, ts: int, ssrc: int) -> bytes:
        """``pcm`` (at the in codec's rate) as an out packet, numbered as if it had come in with
        this header: written by this stream's own encoder (and resampler), so their state stays
        whole -- what in-band DTMF (dtmf_inband.py) puts in place of the sender's audio."""
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return self._packet(second, seq, ts, ssrc, self.out_pt, self._encoder.encode(pcm))

    def absorb(self, data: bytes) -> None:
        """Decode an incoming audio packet that is not sent on (a tone replaces it), so the
        decoder keeps following the sender's encoder (G.722's ADPCM state, Opus's)."""
        if self._table is not None:
            return
        try:
            second, _, _, _, payload = split_rtp(data)
            if second & 0x7F == self.in_pt:
                self._decoder.decode(payload)
        except ValueError:                         # RtpError too: nothing to follow
            pass

    def __repr__(self) -> str:
        return (f"Transcoder({self.in_codec.name}/{self.in_pt} -> {self.out_codec.name}/{self.out_pt}, "
                f"dtmf {self.in_dtmf_pt} -> {self.out_dtmf_pt})")
