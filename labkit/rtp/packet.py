"""RTP and RTCP packets (RFC 3550) and the telephone-event payload (RFC 4733).

Pure functions over bytes: ``RtpPacket.parse(data)`` / ``bytes(packet)``, ``parse_rtcp(data)`` for a
compound RTCP packet, ``bytes(report)`` for each RTCP packet type. Anything malformed raises
:class:`RtpError` with a message that says what is wrong, so a stream can count it and carry on.

Introduced in notebook 04 (the header bit by bit) and used by the stream, the PBX and the IVR.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTP_HEADER_SIZE = 12

# RTCP packet types (RFC 3550 §12.1)
RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

# SDES item types (RFC 3550 §12.2)
SDES_CNAME = 1
SDES_NAME = 2
SDES_TOOL = 6

# Seconds between the NTP epoch (1900) and the Unix epoch (1970).
NTP_EPOCH_OFFSET = 2_208_988_800


class RtpError(ValueError):
    """The peer sent an RTP/RTCP packet we cannot use; the message says why."""


# --------------------------------------------------------------------------------------- RTP


@dataclass
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1). ``payload`` excludes padding; ``extension`` is
    ``(profile, data)`` or None."""

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension: tuple[int, bytes] | None = None
    padding: int = 0  # number of padding octets to append when serialised (0 = no P bit)

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} outside 0..127")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence number {self.sequence_number} outside 0..65535")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp {self.timestamp} outside 32 bits")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise ValueError(f"SSRC {self.ssrc} outside 32 bits")
        if len(self.csrc) > 15:
            raise ValueError(f"at most 15 CSRCs fit in the header, got {len(self.csrc)}")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding {self.padding} outside 0..255")

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket":
        """Parse one RTP packet; raise :class:`RtpError` on anything malformed."""
        if len(data) < RTP_HEADER_SIZE:
            raise RtpError(f"RTP packet too short: {len(data)} bytes, header needs 12")
        first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpError(f"RTP version {version}, expected 2")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        cc = first & 0x0F
        pos = RTP_HEADER_SIZE
        if len(data) < pos + 4 * cc:
            raise RtpError("RTP packet has truncated CSRC list")
        csrc = list(struct.unpack_from(f"!{cc}I", data, pos))
        pos += 4 * cc
        extension = None
        if has_extension:
            if len(data) < pos + 4:
                raise RtpError("RTP packet has truncated extension header")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise RtpError("RTP packet has truncated extension")
            extension = (profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words
        end = len(data)
        padding = 0
        if has_padding:
            padding = data[-1]
            if padding == 0:
                raise RtpError("RTP packet has padding bit set but padding length 0")
            if end - padding < pos:
                raise RtpError("RTP packet padding longer than payload")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | self.payload_type
        out = [struct.pack("!BBHII", first, second, self.sequence_number, self.timestamp, self.ssrc)]
        out += [struct.pack("!I", c) for c in self.csrc]
        if self.extension is not None:
            profile, ext = self.extension
            if len(ext) % 4:
                raise ValueError("RTP header extension length must be a multiple of 4 bytes")
            out.append(struct.pack("!HH", profile, len(ext) // 4) + ext)
        out.append(self.payload)
        if self.padding:
            out.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(out)


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4 demultiplexing: second byte 192..223 means RTCP (payload types 64..95 are unused)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


# -------------------------------------------------------------------------------------- RTCP


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) for a Unix time in seconds."""
    value = seconds + NTP_EPOCH_OFFSET
    whole = int(value)
    frac = int((value - whole) * (1 << 32)) & 0xFFFFFFFF
    return ((whole & 0xFFFFFFFF) << 32) | frac


def unix_from_ntp(ntp: int) -> float:
    """Inverse of :func:`ntp_from_unix`."""
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as carried in LSR (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass
class ReportBlock:
    """Reception report about one source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int = 0  # fixed point /256
    cumulative_lost: int = 0  # signed 24 bit
    highest_sequence: int = 0  # extended highest sequence number received
    jitter: int = 0  # timestamp units
    lsr: int = 0  # middle 32 bits of the last SR's NTP timestamp
    dlsr: int = 0  # delay since that SR, units of 1/65536 s

    SIZE = 24

    def __bytes__(self) -> bytes:
        lost = max(-0x800000, min(0x7FFFFF, self.cumulative_lost)) & 0xFFFFFF
        return struct.pack(
            "!IIIIII",
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )

    @classmethod
    def parse(cls, data: bytes, pos: int) -> "ReportBlock":
        ssrc, word, high, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, pos)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, word >> 24, lost, high, jitter, lsr, dlsr)


def _header(count: int, packet_type: int, body_len: int, padding: bool = False) -> bytes:
    if body_len % 4:
        raise ValueError("RTCP body must be a multiple of 4 bytes")
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, packet_type, body_len // 4)


@dataclass
class SenderReport:
    """RTCP SR (RFC 3550 §6.4.1): what a sender has sent, plus reception reports."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)

    def __bytes__(self) -> bytes:
        body = struct.pack(
            "!IQIII",
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp & 0xFFFFFFFF,
            self.packet_count & 0xFFFFFFFF,
            self.octet_count & 0xFFFFFFFF,
        ) + b"".join(bytes(r) for r in self.reports)
        return _header(len(self.reports), RTCP_SR, len(body)) + body


@dataclass
class ReceiverReport:
    """RTCP RR (RFC 3550 §6.4.2): reception reports from a participant that is not sending."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(r) for r in self.reports)
        return _header(len(self.reports), RTCP_RR, len(body)) + body


@dataclass
class SourceDescription:
    """RTCP SDES (RFC 3550 §6.5): ``chunks`` maps SSRC -> list of (item type, text)."""

    chunks: list[tuple[int, list[tuple[int, str]]]] = field(default_factory=list)

    def __bytes__(self) -> bytes:
        body = b""
        for ssrc, items in self.chunks:
            chunk = struct.pack("!I", ssrc)
            for kind, text in items:
                raw = text.encode()
                if len(raw) > 255:
                    raise ValueError("SDES item longer than 255 bytes")
                chunk += bytes([kind, len(raw)]) + raw
            chunk += b"\x00"  # end of item list
            chunk += bytes(-len(chunk) % 4)
            body += chunk
        return _header(len(self.chunks), RTCP_SDES, len(body)) + body

    def cname(self, ssrc: int) -> str | None:
        for s, items in self.chunks:
            if s == ssrc:
                for kind, text in items:
                    if kind == SDES_CNAME:
                        return text
        return None


@dataclass
class Bye:
    """RTCP BYE (RFC 3550 §6.6): these sources are leaving."""

    sources: list[int] = field(default_factory=list)
    reason: str = ""

    def __bytes__(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason:
            raw = self.reason.encode()[:255]
            body += bytes([len(raw)]) + raw
            body += bytes(-len(body) % 4)
        return _header(len(self.sources), RTCP_BYE, len(body)) + body


@dataclass
class UnknownRtcp:
    """An RTCP packet of a type we do not interpret (APP, XR, feedback…), kept raw."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _header(self.count, self.packet_type, len(self.body)) + self.body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def build_compound(packets: list[RtcpPacket]) -> bytes:
    """Concatenate RTCP packets into one compound datagram (RFC 3550 §6.1: SR or RR first)."""
    if packets and not isinstance(packets[0], (SenderReport, ReceiverReport)):
        raise ValueError("a compound RTCP packet must start with an SR or RR")
    return b"".join(bytes(p) for p in packets)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram into its packets; raise :class:`RtpError` if malformed."""
    if len(data) < 4:
        raise RtpError(f"RTCP packet too short: {len(data)} bytes")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtpError("RTCP compound packet has trailing bytes")
        first, ptype, words = struct.unpack_from("!BBH", data, pos)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTCP version {first >> 6}, expected 2")
        count = first & 0x1F
        length = 4 * (words + 1)
        if pos + length > len(data):
            raise RtpError(f"RTCP packet type {ptype} length {length} exceeds datagram")
        end = pos + length
        if first & 0x20:
            pad = data[end - 1]
            if pad == 0 or pad > length - 4:
                raise RtpError("RTCP packet has invalid padding")
            end -= pad
        body = bytes(data[pos + 4 : end])
        packets.append(_parse_one(ptype, count, body))
        pos += length
    return packets


def _parse_blocks(body: bytes, pos: int, count: int, what: str) -> list[ReportBlock]:
    if len(body) < pos + count * ReportBlock.SIZE:
        raise RtpError(f"RTCP {what} has truncated report blocks")
    return [ReportBlock.parse(body, pos + i * ReportBlock.SIZE) for i in range(count)]


def _parse_one(ptype: int, count: int, body: bytes) -> RtcpPacket:
    if ptype == RTCP_SR:
        if len(body) < 24:
            raise RtpError("RTCP SR too short for sender info")
        ssrc, ntp, rtp_ts, pkts, octets = struct.unpack_from("!IQIII", body)
        return SenderReport(ssrc, ntp, rtp_ts, pkts, octets, _parse_blocks(body, 24, count, "SR"))
    if ptype == RTCP_RR:
        if len(body) < 4:
            raise RtpError("RTCP RR too short for SSRC")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _parse_blocks(body, 4, count, "RR"))
    if ptype == RTCP_SDES:
        chunks = []
        pos = 0
        for _ in range(count):
            if len(body) < pos + 4:
                raise RtpError("RTCP SDES has truncated chunk")
            (ssrc,) = struct.unpack_from("!I", body, pos)
            pos += 4
            items = []
            while True:
                if pos >= len(body):
                    raise RtpError("RTCP SDES chunk not terminated")
                kind = body[pos]
                if kind == 0:
                    pos += 1
                    pos += -pos % 4
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise RtpError("RTCP SDES item truncated")
                size = body[pos + 1]
                items.append((kind, body[pos + 2 : pos + 2 + size].decode("utf-8", "replace")))
                pos += 2 + size
            chunks.append((ssrc, items))
        return SourceDescription(chunks)
    if ptype == RTCP_BYE:
        if len(body) < 4 * count:
            raise RtpError("RTCP BYE has truncated source list")
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = ""
        pos = 4 * count
        if pos < len(body):
            size = body[pos]
            if pos + 1 + size > len(body):
                raise RtpError("RTCP BYE reason truncated")
            reason = body[pos + 1 : pos + 1 + size].decode("utf-8", "replace")
        return Bye(sources, reason)
    return UnknownRtcp(ptype, count, body)


# ---------------------------------------------------------------------- RFC 4733 DTMF events

DTMF_EVENTS = "0123456789*#ABCD"


@dataclass
class TelephoneEvent:
    """An RFC 4733 §2.3 named-event payload: DTMF 0-9 * # A-D are events 0..15.

    ``volume`` is the power level in -dBm0 (0..63); ``duration`` in timestamp units since the
    event began (the RTP timestamp stays at the event start). The IVR (notebook 09) uses this.
    """

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    SIZE = 4

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event {self.event} outside 0..255")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} outside 0..63")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"duration {self.duration} outside 16 bits")

    @property
    def digit(self) -> str | None:
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else None

    @classmethod
    def for_digit(cls, digit: str, **kw) -> "TelephoneEvent":
        index = DTMF_EVENTS.find(digit.upper())
        if index < 0 or len(digit) != 1:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        return cls(index, **kw)

    @classmethod
    def parse(cls, payload: bytes) -> "TelephoneEvent":
        if len(payload) < cls.SIZE:
            raise RtpError(f"telephone-event payload too short: {len(payload)} bytes, needs 4")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | self.volume, self.duration)
