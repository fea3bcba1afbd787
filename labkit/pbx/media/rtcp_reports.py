"""RTCP the relay sends a phone itself, while the media to and from that phone is transcoded.

Passed through unchanged, a phone's RTCP describes packets the other phone never sees: a
transcoding relay renumbers the stream (its own SSRC, sequence numbers and timestamps, maybe
another clock rate), so the reports would name unknown sources (RFC 3550 §7: a translator that
changes the payload must not forward reports about it as they are). The relay therefore ends
RTCP on a transcoded direction and, like Asterisk, FreeSWITCH and rtpengine when they
transcode, reports on its own: to each phone an SR about the stream the relay sends it and a
reception-report block about the stream it receives from it (loss and jitter per RFC 3550
A.3/A.8, LSR/DLSR from the phone's SRs), SDES CNAME, and BYE when the call ends.

:class:`LegReports` is sans-I/O: RTP headers, RTCP datagrams and times in, report bytes out;
:class:`~labkit.pbx.media.relay.MediaRelay` feeds it and sends what it returns.
"""
from __future__ import annotations

import random

from ...rtp.packet import RtpError, parse_rtcp
from ...rtp.stats import ReceiverStats
from ...rtp.stream import PeerReports, RtcpTimer, RtpSender, read_rtcp, rtcp_compound

__all__ = ["LegReports"]


class LegReports:
    """What the relay says in RTCP to one phone, and learns from the phone's RTCP."""

    def __init__(self, cname: str, interval: float = 5.0, rng: random.Random | None = None):
        self.cname = cname
        self._rng = rng or random.Random()
        self.timer = RtcpTimer(interval, self._rng)
        self.sender: RtpSender | None = None      # the stream the relay sends this phone
        self.clock_rate = 8000                    # that stream's RTP clock
        self.stats: ReceiverStats | None = None   # the stream this phone sends the relay
        self.heard = PeerReports()                # the phone's reports about our stream
        self.sent = self.received = self.malformed = 0

    # ---- RTP (headers only: the relay has the bytes in hand) ------------------------------
    def from_phone(self, data: bytes, now: float, clock_rate: int, audio: bool = True) -> None:
        """A packet the phone sent (before transcoding). ``audio=False`` for RFC 4733 events,
        whose repeated timestamps are not jitter."""
        ssrc = int.from_bytes(data[8:12], "big")
        stats = self.stats
        if stats is None or stats.ssrc != ssrc:      # first packet, or the phone restarted
            stats = self.stats = ReceiverStats(ssrc, clock_rate)
        stats.update_fields(int.from_bytes(data[2:4], "big"), int.from_bytes(data[4:8], "big"), now, audio)

    def to_phone(self, data: bytes, now: float, clock_rate: int) -> None:
        """A packet the relay sent the phone (after transcoding): counted for our SR."""
        ssrc = int.from_bytes(data[8:12], "big")
        sender = self.sender
        if sender is None or sender.ssrc != ssrc:
            sender = self.sender = RtpSender(data[1] & 0x7F, ssrc, self._rng)
        self.clock_rate = clock_rate
        sender.packets_sent += 1
        sender.octets_sent += len(data) - 12 - 4 * (data[0] & 0x0F)   # payload octets (§6.4.1)
        sender.last_send = (now, int.from_bytes(data[4:8], "big"))

    # ---- RTCP ----------------------------------------------------------------------------
    def from_phone_rtcp(self, data: bytes, now: float, wallclock: float) -> None:
        try:
            packets = parse_rtcp(data)
        except RtpError:
            self.malformed += 1
            return
        self.received += 1
        read_rtcp(packets, self.stats, None if self.sender is None else self.sender.ssrc,
                  now, wallclock, self.heard)

    def due(self, now: float) -> bool:
        """True when the randomised interval (RFC 3550 §6.3) has passed; the first call starts it."""
        return self.timer.due(now)

    def report(self, now: float, wallclock: float, bye: bool = False) -> bytes | None:
        """Our compound report for the phone, or None while no media has moved either way."""
        if self.sender is None and self.stats is None:
            return None
        if self.sender is None:                  # only receiving: an RR from an SSRC of our own
            self.sender = RtpSender(0, None, self._rng)
        self.sent += 1
        return rtcp_compound(self.sender, self.stats, self.clock_rate, self.cname, now, wallclock, bye)
