"""Read SIP out of a capture file without Wireshark: a small pcap reader (Introduced in notebook 01).

The classic pcap format (what ``tshark -F pcap`` and tcpdump write) is a 24-byte file header
followed by records of ``(seconds, fraction, captured length, original length)`` + frame bytes.
This reader unpacks the link layer (Ethernet, Linux cooked v1/v2, raw IP, BSD loopback), IPv4 or
IPv6, then UDP (every datagram is one SIP message) or TCP (payload bytes as they come; fine for
loopback captures where each segment holds whole messages).  pcapng files are recognised and
refused with a clear message (``tshark -F pcap`` converts them).

    for packet, msg in sip_messages("data/pcaps/sipp_uac_uas.pcap"):
        print(summary_line(packet, msg))
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from labkit.sip import ParseError, Request, parse

__all__ = ["Packet", "PcapError", "read_pcap", "sip_messages", "summary_line"]

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),   # microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),   # nanoseconds
}
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = \
    0, 1, 101, 113, 276


class PcapError(ValueError):
    """The file is not a capture this reader understands (says why)."""


@dataclass(frozen=True)
class Packet:
    """One UDP datagram or TCP segment payload, with its addresses and capture time."""

    time: float          # seconds since the epoch
    src: str
    sport: int
    dst: str
    dport: int
    transport: str       # 'UDP' or 'TCP'
    payload: bytes

    @property
    def clock(self) -> str:
        """Capture time as HH:MM:SS.mmm (UTC)."""
        return datetime.fromtimestamp(self.time, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def read_pcap(path: str | Path) -> Iterator[Packet]:
    """Yield the UDP/TCP payloads of a classic pcap file, in capture order (others skipped)."""
    data = Path(path).read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        raise PcapError(f"{path} is pcapng; convert it with: tshark -r IN -F pcap -w OUT.pcap")
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise PcapError(f"{path} is not a pcap file (magic {data[:4].hex()})")
    endian, tick = _MAGIC[data[:4]]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        seconds, fraction, caplen, _ = record.unpack_from(data, pos)
        pos += 16
        if pos + caplen > len(data):
            raise PcapError(f"{path}: record at byte {pos - 16} is cut short")
        frame = data[pos:pos + caplen]
        pos += caplen
        packet = _decode(frame, linktype, seconds + fraction * tick)
        if packet is not None:
            yield packet


def _decode(frame: bytes, linktype: int, when: float) -> Packet | None:
    if linktype == LINKTYPE_ETHERNET:
        offset, ethertype = 14, frame[12:14]
        while ethertype == b"\x81\x00" and len(frame) >= offset + 4:   # 802.1Q VLAN tags
            ethertype, offset = frame[offset + 2:offset + 4], offset + 4
    elif linktype == LINKTYPE_LINUX_SLL:
        offset, ethertype = 16, frame[14:16]
    elif linktype == LINKTYPE_LINUX_SLL2:
        offset, ethertype = 20, frame[0:2]
    elif linktype == LINKTYPE_RAW:
        offset = 0
        ethertype = b"\x08\x00" if frame[:1] and frame[0] >> 4 == 4 else b"\x86\xdd"
    elif linktype == LINKTYPE_NULL:
        family = int.from_bytes(frame[:4], "little")
        offset, ethertype = 4, (b"\x08\x00" if family == 2 else b"\x86\xdd")
    else:
        raise PcapError(f"link type {linktype} is not supported (Ethernet, Linux cooked, raw IP, loopback are)")
    ip = frame[offset:]
    if ethertype == b"\x08\x00" and len(ip) >= 20:
        header_len = (ip[0] & 0x0F) * 4
        total = int.from_bytes(ip[2:4], "big")
        protocol = ip[9]
        src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
        if int.from_bytes(ip[6:8], "big") & 0x1FFF:
            return None   # a later IP fragment; reassembly is out of scope
        segment = ip[header_len:total]
    elif ethertype == b"\x86\xdd" and len(ip) >= 40:
        protocol = ip[6]
        src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
        segment = ip[40:40 + int.from_bytes(ip[4:6], "big")]
    else:
        return None
    if protocol == 17 and len(segment) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", segment)
        return Packet(when, src, sport, dst, dport, "UDP", segment[8:length])
    if protocol == 6 and len(segment) >= 20:
        sport, dport = struct.unpack_from("!HH", segment)
        payload = segment[(segment[12] >> 4) * 4:]
        return Packet(when, src, sport, dst, dport, "TCP", payload) if payload else None
    return None


def sip_messages(path: str | Path, ports: set[int] | None = None):
    """Yield ``(packet, message)`` for each payload that looks like SIP; ``message`` is the
    parsed Request/Response, or the ParseError when it is malformed.  Keep-alives are skipped."""
    for packet in read_pcap(path):
        if ports and packet.sport not in ports and packet.dport not in ports:
            continue
        if not packet.payload.strip(b"\r\n"):
            continue
        try:
            yield packet, parse(packet.payload)
        except ParseError as err:
            yield packet, err


def summary_line(packet: Packet, msg) -> str:
    """``10:00:01.123 127.0.0.1:5061 -> 127.0.0.1:5060 INVITE sip:service@127.0.0.1
    (Call-ID ..., CSeq 1 INVITE)`` — one line per message, like Wireshark's packet list."""
    where = f"{packet.clock} {_hostport(packet.src, packet.sport)} -> {_hostport(packet.dst, packet.dport)}"
    if isinstance(msg, ParseError):
        return f"{where} malformed: {msg}"
    first = f"{msg.method} {msg.uri}" if isinstance(msg, Request) else f"{msg.status} {msg.reason}"
    try:
        return f"{where} {first} (Call-ID {msg.call_id}, CSeq {msg.cseq})"
    except ParseError as err:
        return f"{where} {first} ({err})"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
