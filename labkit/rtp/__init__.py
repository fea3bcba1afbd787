"""labkit.rtp: RTP/RTCP packets, RFC 3550 receiver statistics, the adaptive jitter buffer and the
asyncio media stream (notebooks 04 and 05).

    from labkit.rtp import RtpPacket, parse_rtcp, ReceiverStats, JitterBuffer, MediaStream
"""
from .jitter import AUDIO, CONCEAL, IDLE, JitterBuffer, Playout
from .packet import (
    Bye, ReceiverReport, ReportBlock, RtpError, RtpPacket, SenderReport, SourceDescription,
    TelephoneEvent, build_compound, is_rtcp, parse_rtcp,
)
from .stats import ReceiverStats, estimate_quality, mos_from_r, r_factor, round_trip_time
from .stream import DtmfEvent, MediaStream, RtcpTimer, RtpSender, SendClock

__all__ = [
    "RtpPacket", "RtpError", "SenderReport", "ReceiverReport", "ReportBlock", "SourceDescription",
    "Bye", "TelephoneEvent", "parse_rtcp", "build_compound", "is_rtcp",
    "ReceiverStats", "r_factor", "mos_from_r", "estimate_quality", "round_trip_time",
    "JitterBuffer", "Playout", "AUDIO", "CONCEAL", "IDLE",
    "MediaStream", "SendClock", "RtpSender", "RtcpTimer", "DtmfEvent",
]
