"""RFC 4733 digits toward a phone without telephone-event: play them as in-band tones.

A phone whose SDP has no ``a=rtpmap:N telephone-event/8000`` hears DTMF only as audio. When
the other phone sends RFC 4733 events, the relay does what Asterisk (``dtmf_mode=inband``
toward such a phone) and FreeSWITCH do: each event packet becomes an audio packet carrying the
key's two ITU-T Q.23 tones. Between legs of one stateless codec (G.711, L16) the tone is
encoded here in the sender's codec and payload type and then passed or remapped as if the
phone had sent it; otherwise (other codecs, or G.722 whose ADPCM state a frame encoded apart
would break) the direction's transcoder writes it with its own encoder, so the receiver's
decoder state stays whole. Receivers taking only fixed frame sizes (Opus) get no tones.
Sans-I/O: ``convert(packet) -> packet | None``, one object per direction.

RTP timing. The packets of one event all carry the event's start timestamp and a growing
duration; each update becomes audio for the new part only, stamped ``start + (tone already
played)`` -- for the usual 20 ms updates one frame at ``start + duration - 160``. End-of-event
retransmissions add no duration, so they add no tone. The sender's audio packets whose
timestamps fall in the event are dropped (the tone replaces them, unchopped), and sequence
numbers are closed up over every packet dropped here, so the receiver sees one unbroken
stream. An event whose end packets were all lost stops suppressing audio once the sender's
audio runs ``STALE_MS`` past the tone.
"""
from __future__ import annotations

import struct
from fractions import Fraction
from typing import Callable

from labkit.codecs import get_codec
from labkit.codecs.codec import Codec
from labkit.dsp.dtmf import COLS, KEYPAD, ROWS
from labkit.dsp.tones import ToneGenerator, TonePlan
from labkit.rtp.packet import DTMF_EVENTS, RtpError

from .transcoder import Transcoder, split_rtp

__all__ = ["InbandDtmf", "can_write_tones", "tones_need_transcoder", "STALE_MS", "MAX_STEP_MS"]

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
#: audio this long past the tone ends an event whose end packets never came
STALE_MS = 120
#: the most tone one update may add (updates lost in a row): beyond it the gap stays silent
MAX_STEP_MS = 200
#: dBm0 -> dBFS for G.711 (a 0 dBm0 sine peaks 3.14 dB below full scale, ITU-T G.711)
_DBM0_TO_DBFS = -3.14
#: codecs coded sample by sample, without state (see can_write_tones)
_STATELESS = frozenset({"pcmu", "pcma", "l16", "l16-16k", "l16-44k"})
#: quietest level used, whatever the event's volume says: a Q.24 receiver must still hear it
_QUIETEST_DBM0 = 30


def _key_plan(event: int, volume: int) -> TonePlan:
    """The two Q.23 tones of DTMF event 0..15, each at half the event's power (-dBm0)."""
    key = DTMF_EVENTS[event]
    row = next(r for r, keys in enumerate(KEYPAD) if key in keys)
    level = _DBM0_TO_DBFS - min(volume, _QUIETEST_DBM0) - 3.01
    return TonePlan((ROWS[row], COLS[KEYPAD[row].index(key)]), level_dbfs=level)


def can_write_tones(codec: Codec | str) -> bool:
    """Can a tone be encoded into a stream of ``codec`` by an encoder of its own? Only for a
    codec without state: G.711, L16. A G.722 frame encoded apart is decoded with ADPCM state
    adapted to the sender's encoder (measured: the first ~95 ms of tone came out garbled)."""
    return get_codec(codec).name in _STATELESS


def tones_need_transcoder(src: Codec | str, dst: Codec | str) -> bool | None:
    """How a direction from ``src`` to ``dst`` can carry in-band DTMF: False -- tones encoded
    in the sender's (stateless) codec, then passed or remapped; True -- through the direction's
    :class:`Transcoder` (a G.722 sender gets one even toward G.722), whose own encoder writes
    them; None -- not at all (``dst`` takes only fixed frame sizes, as Opus does)."""
    src, dst = get_codec(src), get_codec(dst)
    if src.name == dst.name and can_write_tones(src):
        return False
    return True if dst.ptimes_ms is None else None


class InbandDtmf:
    """One direction's RFC 4733 events (``event_pt``) turned into tones. Other packets go to
    ``audio`` (the direction's pass/remap/transcode function; None: unchanged). Without a
    ``transcoder`` the tones are encoded here in ``codec``/``payload_type`` (the sender's audio,
    stateless) and then go through ``audio`` too; with one, its encoder writes them, and the
    sender's audio they replace still goes through its decoder. ``drop_reason`` says why
    ``convert`` returned None."""

    def __init__(self, codec: Codec | str, payload_type: int, event_pt: int,
                 audio: Callable[[bytes], bytes | bytearray | None] | None = None,
                 transcoder: Transcoder | None = None):
        self.codec = get_codec(codec)
        self.payload_type, self.event_pt, self.audio = payload_type, event_pt, audio
        self.transcoder = transcoder
        if transcoder is None:
            if not can_write_tones(self.codec):
                raise ValueError(f"in-band DTMF cannot be encoded apart into {self.codec.name} "
                                 "(it has state): pass the direction's transcoder")
            self._encoder = self.codec.encoder()
        elif transcoder.out_codec.ptimes_ms is not None:
            raise ValueError(f"in-band DTMF cannot be written into {transcoder.out_codec.name}: "
                             "it takes fixed frame sizes only")
        self._per_tick = Fraction(self.codec.sample_rate, self.codec.clock_rate)   # G.722: 2
        self._stale = self.codec.clock_rate * STALE_MS // 1000
        self._max_step = self.codec.clock_rate * MAX_STEP_MS // 1000
        self._event: tuple[int, int] | None = None    # (ssrc, start timestamp) of the last event
        self._played = 0                              # ticks of its tone sent so far
        self._ended = False
        self._tone: ToneGenerator | None = None
        self._shift = 0                               # packets dropped here: taken off seq numbers
        self.tones = 0                                # audio packets generated
        self.suppressed = 0                           # sender audio packets replaced by tone
        self.drop_reason = ""

    def convert(self, data: bytes) -> bytes | bytearray | None:
        """The packet to send on, or None."""
        second, seq, ts, ssrc = _HEADER.unpack_from(data)[1:]
        if second & 0x7F == self.event_pt:
            tone = self._on_event(data, ts, ssrc)
            if tone is None:
                self._shift += 1
                return None
            pcm, ts = tone
            second = (second & 0x80) | self.payload_type
            seq = (seq - self._shift) & 0xFFFF
            self.tones += 1
            if self.transcoder is not None:
                return self.transcoder.encode_pcm(pcm, second, seq, ts, ssrc)
            data = _HEADER.pack(0x80, second, seq, ts, ssrc) + self._encoder.encode(pcm)
        elif self._suppress(ts, ssrc):
            self._shift += 1
            if self.transcoder is not None:
                self.transcoder.absorb(data)
            return None
        elif self._shift:
            data = bytearray(data)
            data[2:4] = ((seq - self._shift) & 0xFFFF).to_bytes(2, "big")
        return data if self.audio is None else self.audio(data)

    def _suppress(self, ts: int, ssrc: int) -> bool:
        """Is this audio packet of the sender's within the tone (to be replaced by it)?"""
        if self._event is None or self._event[0] != ssrc:
            return False
        since = (ts - self._event[1]) & 0xFFFFFFFF
        if since >= 0x80000000:                       # from before the event began
            return False
        if since < self._played or (not self._ended and since < self._played + self._stale):
            self.suppressed += 1
            self.drop_reason = "audio during an in-band DTMF tone"
            return True
        self._ended = True                            # audio resumed: the event is over
        return False

    def _on_event(self, data: bytes, ts: int, ssrc: int):
        """``(pcm, timestamp)`` of the tone this event packet adds, or None."""
        try:
            payload = split_rtp(data)[4]
        except RtpError as exc:
            self.drop_reason = f"malformed: {exc}"
            return None
        if len(payload) < _EVENT.size:
            self.drop_reason = "telephone-event payload shorter than 4 bytes"
            return None
        event, flags, duration = _EVENT.unpack_from(payload)
        if event >= len(DTMF_EVENTS):
            self.drop_reason = f"event {event} is not a DTMF key"
            return None
        key = (ssrc, ts)
        if key != self._event:
            if (self._event is not None and self._event[0] == ssrc
                    and (ts - self._event[1]) & 0xFFFFFFFF >= 0x80000000):
                self.drop_reason = "an update of an earlier event"
                return None
            self._event, self._played, self._ended = key, 0, False
            self._tone = ToneGenerator(_key_plan(event, flags & 0x3F), rate=self.codec.sample_rate)
        if flags & 0x80:
            self._ended = True
        new = duration - self._played
        if new <= 0:
            self.drop_reason = "no new duration (an end retransmission)"
            return None
        if new > self._max_step:                      # updates were lost: leave the gap silent
            self._tone.position += int((new - self._max_step) * self._per_tick)
            self._played, new = duration - self._max_step, self._max_step
        start = (ts + self._played) & 0xFFFFFFFF
        self._played = duration
        return self._tone.read(int(new * self._per_tick)), start

    def __repr__(self) -> str:
        return (f"InbandDtmf(events {self.event_pt} -> {self.codec.name}/{self.payload_type}, "
                f"{self.tones} tone packets, {self.suppressed} suppressed)")
