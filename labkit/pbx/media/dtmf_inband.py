"""RFC 4733 digits toward a phone without telephone-event: play them as in-band tones.

A phone whose SDP has no ``a=rtpmap:N telephone-event/8000`` hears DTMF only as audio. When
the other phone sends RFC 4733 events, the relay does what Asterisk (``dtmf_mode=inband``
toward such a phone) and FreeSWITCH do: each event packet becomes an audio packet carrying the
key's two ITU-T Q.23 tones, encoded in the *sender's* audio codec and payload type, so it then
goes the direction's usual way (pass, payload-type remap or transcoding) as if the phone had
sent the tone itself. That needs a sender codec without state (G.711, L16; the receiver's may
be anything the transcoder writes); see :func:`can_write_tones`. Sans-I/O:
``convert(packet) -> packet | None``, one object per direction.

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

from .transcoder import split_rtp

__all__ = ["InbandDtmf", "can_write_tones", "STALE_MS", "MAX_STEP_MS"]

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
    """Can in-band DTMF be written into a stream of ``codec``? Only a codec without state and
    with frames of any length: G.711 and L16. A G.722 frame encoded here would be decoded with
    ADPCM state adapted to the sender's own encoder (measured: the first ~95 ms of tone come
    out garbled, too much for a 100 ms key press), and Opus takes fixed frame sizes only."""
    return get_codec(codec).name in _STATELESS


class InbandDtmf:
    """One direction's RFC 4733 events (``event_pt``) turned into tones in ``codec``/``payload_type``
    (the sender's audio); every other packet goes to ``audio`` (the direction's pass/remap/transcode
    function; None: unchanged). ``drop_reason`` says why ``convert`` returned None."""

    def __init__(self, codec: Codec | str, payload_type: int, event_pt: int,
                 audio: Callable[[bytes], bytes | bytearray | None] | None = None):
        self.codec = get_codec(codec)
        if not can_write_tones(self.codec):
            raise ValueError(f"in-band DTMF cannot be written into {self.codec.name}: it needs a "
                             "codec without state or fixed frames (G.711, L16)")
        self.payload_type, self.event_pt, self.audio = payload_type, event_pt, audio
        self._encoder = self.codec.encoder()
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
        """The packet to send on (then through ``audio``), or None."""
        second, seq, ts, ssrc = _HEADER.unpack_from(data)[1:]
        if second & 0x7F == self.event_pt:
            out = self._on_event(data, second, seq, ts, ssrc)
        else:
            out = self._on_audio(data, ts, ssrc)
        if out is None:
            self._shift += 1
            return None
        if self._shift:
            out = bytearray(out)
            out[2:4] = ((seq - self._shift) & 0xFFFF).to_bytes(2, "big")
        return out if self.audio is None else self.audio(out)

    def _on_audio(self, data: bytes, ts: int, ssrc: int) -> bytes | None:
        if self._event is None or self._event[0] != ssrc:
            return data
        since = (ts - self._event[1]) & 0xFFFFFFFF
        if since >= 0x80000000:                       # from before the event began
            return data
        if since < self._played or (not self._ended and since < self._played + self._stale):
            self.suppressed += 1
            self.drop_reason = "audio during an in-band DTMF tone"
            return None
        self._ended = True                            # audio resumed: the event is over
        return data

    def _on_event(self, data: bytes, second: int, seq: int, ts: int, ssrc: int) -> bytes | None:
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
        pcm = self._tone.read(int(new * self._per_tick))
        out = _HEADER.pack(0x80, (second & 0x80) | self.payload_type, seq,
                           (ts + self._played) & 0xFFFFFFFF, ssrc) + self._encoder.encode(pcm)
        self._played = duration
        self.tones += 1
        return out

    def __repr__(self) -> str:
        return (f"InbandDtmf(events {self.event_pt} -> {self.codec.name}/{self.payload_type}, "
                f"{self.tones} tone packets, {self.suppressed} suppressed)")
