"""One direction of a call whose legs speak different codecs: RTP in, RTP out, sans-I/O.

When leg A negotiated PCMU and leg B PCMA (or G.722, Opus), the relay cannot pass packets
through. Per 20 ms packet it decodes with A's codec, resamples if the sample rates differ
(8 kHz G.711 <-> 16 kHz G.722 <-> 48 kHz Opus), encodes with B's codec and writes a new
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

from labkit.codecs import get_codec
from labkit.codecs.codec import Codec
from labkit.dsp.resample import Resampler
from labkit.rtp.packet import RtpError, RtpPacket

__all__ = ["Transcoder"]


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
        rates = (self.in_codec.sample_rate, self.out_codec.sample_rate)
        self._resampler = Resampler(*rates) if rates[0] != rates[1] else None
        self.clock_ratio = Fraction(self.out_codec.clock_rate, self.in_codec.clock_rate)
        self._in_ssrc: int | None = None
        self._seq_offset = 0
        self._in_ts0 = 0
        self._out_ts0 = 0
        self._last_out: tuple[int, int] | None = None   # (seq, ts) of the last packet sent
        self.converted = 0
        self.events = 0
        self.drop_reason = ""

    def _rebase(self, packet: RtpPacket) -> None:
        """Start (or, on an SSRC change, continue) the out stream's numbering."""
        if self._last_out is None:
            out_seq, out_ts = self._rng.getrandbits(16), self._rng.getrandbits(32)
        else:
            step = self.out_codec.timestamp_increment(20)
            out_seq, out_ts = (self._last_out[0] + 1) & 0xFFFF, (self._last_out[1] + step) & 0xFFFFFFFF
        self._in_ssrc = packet.ssrc
        self._seq_offset = (out_seq - packet.sequence_number) & 0xFFFF
        self._in_ts0, self._out_ts0 = packet.timestamp, out_ts

    def _header(self, packet: RtpPacket, pt: int, payload: bytes) -> bytes:
        if packet.ssrc != self._in_ssrc:
            self._rebase(packet)
        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        elapsed = (packet.timestamp - self._in_ts0) & 0xFFFFFFFF
        ts = (self._out_ts0 + int(elapsed * self.clock_ratio)) & 0xFFFFFFFF
        self._last_out = (seq, ts)
        return bytes(RtpPacket(pt, seq, ts, self.out_ssrc, payload, marker=packet.marker))

    def convert(self, data: bytes) -> bytes | None:
        """The packet to send on the out leg, or None (see ``drop_reason``)."""
        try:
            packet = RtpPacket.parse(data)
        except RtpError as exc:
            self.drop_reason = f"malformed: {exc}"
            return None
        pt = packet.payload_type
        if pt == self.in_pt:
            try:
                pcm = self._decoder.decode(packet.payload)
            except ValueError as exc:
                self.drop_reason = f"cannot decode {self.in_codec.name}: {exc}"
                return None
            if self._resampler is not None:
                pcm = self._resampler.process(pcm)
            self.converted += 1
            return self._header(packet, self.out_pt, self._encoder.encode(pcm))
        if pt == self.in_dtmf_pt and self.in_dtmf_pt is not None:
            if self.out_dtmf_pt is None:
                self.drop_reason = "telephone-event not negotiated on the other leg"
                return None
            if len(packet.payload) < 4:
                self.drop_reason = "telephone-event payload shorter than 4 bytes"
                return None
            payload = packet.payload
            if self.clock_ratio != 1:
                duration = min(0xFFFF, int(struct.unpack_from("!H", payload, 2)[0] * self.clock_ratio))
                payload = payload[:2] + struct.pack("!H", duration) + payload[4:]
            self.events += 1
            return self._header(packet, self.out_dtmf_pt, payload)
        self.drop_reason = f"payload type {pt} not negotiated for this leg"
        return None

    def __repr__(self) -> str:
        return (f"Transcoder({self.in_codec.name}/{self.in_pt} -> {self.out_codec.name}/{self.out_pt}, "
                f"dtmf {self.in_dtmf_pt} -> {self.out_dtmf_pt})")
