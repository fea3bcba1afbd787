"""The B2BUA's RTP relay: media anchored at the PBX, one socket pair per call leg.

A B2BUA that rewrites SDP so both phones send their media to the PBX (as Asterisk does by
default, and as Kamailio does with rtpengine beside it) can reach phones behind NAT, keep
media flowing through a transfer, hold, record or transcode. Per call leg the relay owns
an RTP socket (even port) and an RTCP socket (the odd port above) on the PBX::

    phone A  <-- RTP/RTCP -->  [leg a: 10000/10001]  relay  [leg b: 10002/10003]  <-- RTP/RTCP -->  phone B

Everything received on leg a goes out of leg b's socket to phone B, and back.

* **Symmetric RTP with latching** (:mod:`labkit.pbx.media.latch`): send to where a phone's
  packets really come from, not to the (maybe private) SDP address.
* **Pass-through** when both legs negotiated the same codec: the packet is sent on unchanged,
  or with only its payload-type byte rewritten when the legs numbered the codec or
  telephone-event differently (dynamic payload types).
* **Transcoding** when the codecs differ (:class:`~labkit.pbx.media.transcoder.Transcoder`);
  RTCP is then terminated at the relay, because its SSRCs and counts describe a stream the
  other side never sees, and the relay reports to each phone itself (SR about the stream it
  sends, a block about the one it receives, BYE at the end: :mod:`labkit.pbx.media.rtcp_reports`).
* **In-band DTMF** toward a phone that negotiated no telephone-event while the other one sends
  RFC 4733 events (:class:`~labkit.pbx.media.dtmf_inband.InbandDtmf`, as Asterisk's
  ``dtmf_mode=inband``): the events become DTMF tones in the audio, in that direction only
  (mode ``pass+dtmf-inband``, ``remap+dtmf-inband`` or ``transcode X->Y+dtmf-inband``; G.722
  to G.722 is then transcoded, so one encoder writes both speech and tones). Not toward an
  Opus-only phone (fixed frame sizes): events to it are still dropped.
* **Hold**: a leg's SDP direction (sendonly / recvonly / inactive) stops the held direction.
* **Taps**: ``add_tap(leg, fn)`` hands every accepted packet of a leg to ``fn`` (recording);
  ``add_dtmf_listener(leg, fn)`` reports RFC 4733 digits; with neither, the cost is nothing
  (the fast path tests one flag it tests anyway).

The per-packet path (``RelayLeg.datagram_received``) checks the RTP version and size, compares
the source with the latched one and sends from the other leg: through its lane once that leg
has latched (a socket on its port connected to its phone, :mod:`labkit.pbx.media.lane`: no
address per packet), else ``sendto`` on its transport; no parsing, no allocation, no logging.
Run it on uvloop (:mod:`labkit.pbx.loop`).

Introduced in notebook 06; measured by ``benchmarks/bench_relay.py``.
"""
from __future__ import annotations

import asyncio
import socket
import time
import weakref
from dataclasses import dataclass
from typing import Callable

from labkit.codecs import get_codec
from labkit.codecs.codec import Codec
from labkit.rtp.packet import RtpPacket, TelephoneEvent

from .dtmf_inband import InbandDtmf, tones_need_transcoder
from .lane import AVAILABLE as LANE, Lane
from .latch import Latch
from .ports import PortAllocator, PortPair
from .rtcp_reports import LegReports
from .transcoder import Transcoder

__all__ = ["MediaRelay", "RelayLeg", "LegStats", "DIRECTIONS"]

#: SDP directions (RFC 3264 §5.1) as (the phone sends, the phone receives).
DIRECTIONS = {
    "sendrecv": (True, True),
    "sendonly": (True, False),
    "recvonly": (False, True),
    "inactive": (False, False),
}

Address = tuple
Tap = Callable[[bytes], None]
_DROP = 255     # in a payload-type table: no such payload type on the other leg
_KEEP = object()  # configure(): argument not given
# asyncio's selector transport reads into a fresh 256 KiB buffer per datagram, which glibc serves
# with mmap + mremap + munmap: three syscalls per packet. 64 KiB holds any UDP datagram and
# comes from the heap. (uvloop reads into a buffer it reuses and has no max_size.)
_MAX_DATAGRAM = 65536
_STUN_COOKIE = b"\x21\x12\xa4\x42"   # RFC 5389's magic cookie, bytes 4-7 of every STUN message
RTCP_TICK = 1.0        # seconds between checks whether a leg's own RTCP report is due (rtcp_reports.py)


@dataclass(frozen=True)
class LegStats:
    """Counters of one leg, as seen from the PBX. ``rx_*``: from the phone; ``tx_*``: to it."""

    rx_packets: int
    rx_bytes: int
    tx_packets: int
    tx_bytes: int
    dropped: int        # valid RTP/RTCP not forwarded: foreign source, held, unknown payload type
    malformed: int      # not RTP/RTCP at all (wrong version, too short)
    foreign: int        # dropped because it came from another address than the latched one
    rtcp_rx: int
    rtcp_tx: int
    send_errors: int
    source: Address | None   # latched address (None while learning)
    ssrc: int | None
    relatches: int
    stun: int = 0       # of the malformed: STUN messages (RFC 7983 demultiplexing), e.g. a phone's
                        # ICE checks or keepalives; not answered (the PBX offers no ICE candidates)


class RelayLeg(asyncio.DatagramProtocol):
    """One leg of a relayed call: the RTP socket toward one phone, and that phone's settings.

    The object is the RTP socket's protocol, so the per-packet path reads its own slots.
    Configure it with :meth:`configure` (from the phone's SDP) and :meth:`set_direction`.
    """

    __slots__ = (
        # what the per-packet path touches first, so it shares a cache line or two
        "rx_packets", "rx_bytes", "source", "plain", "peer", "conn", "transport", "remote",
        "malformed", "dropped", "unsent",
        # the rest
        "name", "_relay", "rtcp", "latch", "port", "forward", "rewrite", "tap", "_taps",
        "sdp_remote", "codec", "payload_type", "dtmf_payload_type", "rx_payload_type",
        "rx_dtmf_payload_type", "direction", "dropped_bytes", "malformed_bytes", "stun",
        "foreign", "unsent_bytes", "resized", "send_errors", "_sock", "_lane",
        "reports", "_report_in", "_report_out",
    )

    def __init__(self, name: str, relay: "MediaRelay", relatch_after: float):
        self.name = name
        # weak: the relay owns its legs, a leg only refers back (no cycle to leave behind)
        self._relay = weakref.ref(relay) if relay is not None else _no_relay
        self.peer: RelayLeg | _Counts | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.conn: socket.socket | None = None  # connected to ``remote`` once latched (lane.py)
        self._sock: socket.socket | None = None  # the RTP socket (the lane binds beside it)
        self._lane: Lane | None = None
        self.rtcp = _RtcpPort(self)
        self.latch = Latch(relatch_after)
        self.port = 0
        self.remote: Address | None = None      # where packets for this phone go
        self.source: Address | None = None      # latched source (the fast path compares with it)
        self.forward = False                    # may packets from this phone go to the peer?
        self.plain = False                      # forward, and no tap or rewrite: the fast path
        self.rewrite: Callable[[bytes], bytes | bytearray | None] | None = None
        self.tap: Tap | None = None
        self._taps: list[Tap] = []
        self.sdp_remote: Address | None = None
        self.codec: Codec | None = None
        self.payload_type: int | None = None          # PT the phone expects from us
        self.dtmf_payload_type: int | None = None
        self.rx_payload_type: int | None = None       # PT the phone sends us
        self.rx_dtmf_payload_type: int | None = None
        self.direction = "sendrecv"
        self.rx_packets = self.rx_bytes = 0
        self.dropped = self.dropped_bytes = self.malformed = self.malformed_bytes = self.stun = 0
        self.foreign = self.unsent = self.unsent_bytes = self.resized = 0
        self.send_errors = 0            # ICMP errors reported on this leg's socket
        #: RTCP the relay itself exchanges with this phone while media to or from it is
        #: transcoded (rtcp_reports.py); None otherwise. ``_report_in``: this phone's reports
        #: object when the direction from it is transcoded; ``_report_out``: the peer's, likewise.
        self.reports: LegReports | None = None
        self._report_in: LegReports | None = None
        self._report_out: LegReports | None = None

    @property
    def relay(self) -> "MediaRelay | None":
        """The relay this leg belongs to (None once that relay is gone)."""
        return self._relay()

    # ----------------------------------------------------------------- the per-packet path

    def datagram_received(self, data: bytes, addr: Address) -> None:
        # Only this leg's own counters move here; what the peer sent out is derived from them
        # in stats() (received - malformed - dropped - unsent), which saves two updates a packet.
        size = len(data)
        self.rx_packets += 1
        self.rx_bytes += size
        if size < 12 or data[0] & 0xC0 != 0x80:
            self.malformed += 1
            self.malformed_bytes += size
            if size >= 20 and data[0] < 2 and data[4:8] == _STUN_COOKIE:
                self.stun += 1
            return
        if addr != self.source and not self._new_source(data, addr):
            self.dropped += 1
            self.dropped_bytes += size
            return
        if not self.plain:                 # a tap, a rewrite, or not forwarding
            self._forward_slow(data, size)
            return
        # The send below is _forward_slow's, written out here on purpose: a method call per
        # packet would cost this path more than everything else it does in Python.
        peer = self.peer
        try:
            conn = peer.conn
            if conn is None:
                peer.transport.sendto(data, peer.remote)
            else:
                conn.send(data)                 # latched: the connected lane, no address
        except (OSError, ValueError, AttributeError):   # closing, or an unusable address
            self.unsent += 1
            self.unsent_bytes += size

    def _forward_slow(self, data: bytes, size: int) -> None:
        if self.tap is not None:
            self.tap(data)
        if not self.forward:
            self.dropped += 1
            self.dropped_bytes += size
            return
        if self.rewrite is not None:
            report_in = self._report_in
            if report_in is not None:            # transcoded: the relay is this stream's receiver
                now = self.relay.clock()
                report_in.from_phone(data, now, self.codec.clock_rate,
                                     (data[1] & 0x7F) != self.rx_dtmf_payload_type)
            data = self.rewrite(data)
            if data is None:
                self.dropped += 1
                self.dropped_bytes += size
                return
            self.resized += len(data) - size     # transcoding changes sizes
            if report_in is not None:            # ... and the sender of the transcoded one
                self._report_out.to_phone(data, now, self.peer.codec.clock_rate)
        peer = self.peer
        try:
            conn = peer.conn
            if conn is None:
                peer.transport.sendto(data, peer.remote)
            else:
                conn.send(data)
        except (OSError, ValueError, AttributeError):
            self.unsent += 1
            self.unsent_bytes += len(data)

    def _update_plain(self) -> None:
        """The fast path applies when forwarding with no tap and no rewrite."""
        self.plain = self.forward and self.tap is None and self.rewrite is None

    def _new_source(self, data: bytes, addr: Address) -> bool:
        """A valid packet from an address other than the latched one: latch onto it?"""
        latch = self.latch
        if latch.source is None and (data[1] & 0x7F) not in (self.rx_payload_type, self.rx_dtmf_payload_type):
            if self.codec is not None:           # learn only from a negotiated payload type
                self.foreign += 1
                return False
        accepted = self.rx_packets - self.malformed - self.foreign
        was = latch.source
        if latch.offer(addr, int.from_bytes(data[8:12], "big"), self.relay.clock(), accepted):
            self.source = self.remote = addr
            self._connect(addr)
            self.rtcp.source = None              # RTCP re-learns from the new source
            self.relay._update_forwarding()
            self.relay._publish("media.relatched" if was is not None else "media.latched",
                                leg=self.name, address=addr, ssrc=latch.ssrc)
            return True
        self.foreign += 1
        return False

    def _connect(self, addr: Address) -> None:
        """Latched to ``addr``: send through a socket connected to it (lane.py), if one can be had."""
        relay = self.relay
        if relay is None or relay.state != "open":      # closing: no new socket
            return
        if self._lane is None:
            if not LANE or self._sock is None:
                return
            self._lane = Lane(self._sock, self.datagram_received, self.error_received)
        self.conn = self._lane.connect(addr)

    # --------------------------------------------------------------------- asyncio hooks

    def connection_made(self, transport) -> None:
        self.transport = transport

    def error_received(self, exc: Exception) -> None:
        self.send_errors += 1          # ICMP port unreachable from a phone that went away

    # ----------------------------------------------------------------------- configuration

    def configure(self, remote: Address | None = None, codec: Codec | str | None = None,
                  payload_type: int | None = None, dtmf_payload_type: int | None | object = _KEEP,
                  rtcp_remote: Address | None = None, direction: str | None = None,
                  rx_payload_type: int | None = None,
                  rx_dtmf_payload_type: int | None | object = _KEEP) -> None:
        """Apply what this leg's phone put in SDP: media address, codec, payload types, direction.

        ``remote`` is the SDP ``c=``/``m=`` address; replies go there until the phone's own
        packets latch its real address (a host *name* there is not looked up, per packet or
        at all: the leg waits for the phone's packets). A *changed* address (re-INVITE) re-learns.
        ``codec=None`` relays whatever comes, unchanged. ``rtcp_remote`` defaults to the RTP
        port + 1 (or ``a=rtcp``, RFC 3605, when the caller passes it).
        ``payload_type`` / ``dtmf_payload_type`` are the numbers the phone expects in what it
        receives; ``rx_*`` the numbers it sends (the same unless the PBX offered and the phone
        answered with other numbers; default: the same). Arguments left out keep their value;
        ``dtmf_payload_type=None`` means no telephone-event on this leg.
        """
        if codec is not None:
            new_codec = get_codec(codec)
            if payload_type is None:
                payload_type = new_codec.payload_type
            if payload_type is None:
                raise ValueError(f"{new_codec.name} has no static payload type: pass payload_type "
                                 "(the number from the SDP a=rtpmap line)")
        if dtmf_payload_type is _KEEP:
            dtmf_payload_type = self.dtmf_payload_type
        if rx_dtmf_payload_type is _KEEP:
            rx_dtmf_payload_type = (dtmf_payload_type if dtmf_payload_type != self.dtmf_payload_type
                                    else self.rx_dtmf_payload_type)
        for name, pt in (("payload_type", payload_type), ("dtmf_payload_type", dtmf_payload_type),
                         ("rx_payload_type", rx_payload_type), ("rx_dtmf_payload_type", rx_dtmf_payload_type)):
            if pt is not None and (isinstance(pt, bool) or not isinstance(pt, int) or not 0 <= pt <= 127):
                raise ValueError(f"{name} must be an RTP payload type 0..127, got {pt!r}")
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"unknown SDP direction {direction!r}; known: {', '.join(DIRECTIONS)}")
        if remote is not None:
            remote = _check_address(remote, "remote")
            rtcp = (_check_address(rtcp_remote, "rtcp_remote") if rtcp_remote
                    else (remote[0], remote[1] + 1, *remote[2:]))
            if remote != self.sdp_remote:
                self.latch.reset()
                self.source = self.conn = None   # the lane stays bound; its packets are checked as any
                self.rtcp.source = None
            self.sdp_remote = remote
            self.remote = self.source or _numeric(remote)
            self.rtcp.sdp_remote = rtcp
            self.rtcp.remote = self.rtcp.source or _numeric(rtcp)
            self.latch.arm()
        if codec is not None:
            self.codec = new_codec
        if payload_type is not None:
            self.payload_type = payload_type
            self.rx_payload_type = payload_type if rx_payload_type is None else rx_payload_type
        elif rx_payload_type is not None:
            self.rx_payload_type = rx_payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self.rx_dtmf_payload_type = rx_dtmf_payload_type
        if direction is not None:
            self.direction = direction
        self.relay._plan()

    def configure_from(self, media) -> None:
        """Configure from a :class:`labkit.sip.offer_answer.NegotiatedMedia` of this leg's
        phone (what the B2BUA agreed with it). Its ``direction`` is the PBX's; the phone's is
        the mirror image (we receive = the phone sends). A held phone (c=0.0.0.0 or port 0)
        keeps its latched address and just stops receiving."""
        phone_sends, phone_receives = media.receives, media.sends
        direction = {(True, True): "sendrecv", (True, False): "sendonly",
                     (False, True): "recvonly", (False, False): "inactive"}[(phone_sends, phone_receives)]
        placeholder = media.remote_port == 0 or media.remote_address in ("0.0.0.0", "::")
        remote = None if placeholder else (media.remote_address, media.remote_port)
        rtcp = None
        if remote is not None and media.remote_rtcp_port:
            rtcp = (media.remote_address, media.remote_rtcp_port)
        self.configure(remote=remote, codec=media.codec, payload_type=media.payload_type,
                       rx_payload_type=media.local_payload_type,
                       dtmf_payload_type=media.telephone_event_pt,
                       rx_dtmf_payload_type=media.local_telephone_event_pt,
                       rtcp_remote=rtcp, direction=direction)

    def set_direction(self, direction: str) -> None:
        """Hold and resume: the direction this leg's phone asked for in SDP."""
        self._set_direction(direction)
        self.relay._update_forwarding()

    def _set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown SDP direction {direction!r}; known: {', '.join(DIRECTIONS)}")
        self.direction = direction

    def _set_taps(self, taps: list[Tap]) -> None:
        self._taps = taps
        if not taps:
            self.tap = None
        elif len(taps) == 1:
            self.tap = taps[0]
        else:
            frozen = tuple(taps)

            def fan_out(data: bytes) -> None:
                for tap in frozen:
                    tap(data)
            self.tap = fan_out
        self._update_plain()

    @property
    def local(self) -> Address:
        """The PBX address and RTP port to write in the SDP sent to this leg's phone."""
        return (self.relay.ports.bind, self.port)

    def stats(self) -> LegStats:
        r = self.rtcp
        p = self.peer
        return LegStats(self.rx_packets, self.rx_bytes, self.tx_packets, self.tx_bytes, self.dropped + r.dropped,
                        self.malformed + r.malformed, self.foreign, r.rx_packets, r.tx_packets,
                        self.send_errors + p.unsent, self.latch.source, self.latch.ssrc, self.latch.relatches,
                        self.stun)

    @property
    def tx_packets(self) -> int:
        """Packets sent to this leg's phone: what the peer received and forwarded."""
        p = self.peer
        return p.rx_packets - p.malformed - p.dropped - p.unsent

    @property
    def tx_bytes(self) -> int:
        p = self.peer
        return p.rx_bytes - p.malformed_bytes - p.dropped_bytes - p.unsent_bytes + p.resized

    def __repr__(self) -> str:
        codec = f"{self.codec.name}/{self.payload_type}" if self.codec else "any codec"
        return f"<RelayLeg {self.name} :{self.port} -> {self.remote} {codec} {self.direction}>"


class _RtcpPort(asyncio.DatagramProtocol):
    """The odd-port RTCP socket of a leg: relayed to the peer's RTCP, latched like RTP."""

    __slots__ = ("leg", "transport", "source", "remote", "sdp_remote", "forward",
                 "rx_packets", "tx_packets", "malformed", "dropped")

    def __init__(self, leg: RelayLeg):
        self.leg = leg
        self.transport = None
        self.source = self.remote = self.sdp_remote = None
        self.forward = False
        self.rx_packets = self.tx_packets = self.malformed = self.dropped = 0

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.rx_packets += 1
        if len(data) < 8 or data[0] & 0xC0 != 0x80 or not 192 <= data[1] <= 223:
            self.malformed += 1
            return
        leg = self.leg
        if addr != self.source:
            if not leg.latch.armed or self.source is not None:
                self.dropped += 1                # strict source once learned
                return
            self.source = self.remote = addr
        if not self.forward:                     # terminated here (transcoding) or no peer yet
            if leg.reports is not None:
                leg.reports.from_phone_rtcp(data, leg.relay.clock(), time.time())
            return
        if not leg.peer.rtcp.send(data):
            leg.send_errors += 1

    def send(self, data: bytes) -> bool:
        """Send to this leg's phone's RTCP port; False when that cannot be done (closing, no
        address yet, an unusable one)."""
        try:
            self.transport.sendto(data, self.remote)
        except (OSError, ValueError, AttributeError):
            return False
        self.tx_packets += 1
        return True

    def connection_made(self, transport) -> None:
        self.transport = transport

    def error_received(self, exc: Exception) -> None:
        self.leg.send_errors += 1


class _Counts:
    """A closed leg's final counters, standing in as its peer's ``peer``: the peer's tx_* and
    stats() still read them, without the two legs referring to each other (a cycle)."""

    __slots__ = ("rx_packets", "rx_bytes", "malformed", "malformed_bytes", "dropped", "dropped_bytes",
                 "unsent", "unsent_bytes", "resized")

    def __init__(self, leg: RelayLeg):
        for name in self.__slots__:
            setattr(self, name, getattr(leg, name))


def _no_relay() -> None:
    return None


def _numeric(address: Address) -> Address | None:
    """``address`` if its host is an IP address; None for a host name (asyncio's loop would
    resolve it on every packet, blocking; uvloop refuses to send there at all)."""
    host = address[0]
    for family in (socket.AF_INET, socket.AF_INET6):      # inet_pton: ~15x quicker than ipaddress
        try:
            socket.inet_pton(family, host.partition("%")[0])
            return address
        except (OSError, ValueError):
            pass
    return None


def _check_address(address, what: str) -> Address:
    if (not isinstance(address, tuple) or len(address) < 2 or not isinstance(address[0], str)
            or isinstance(address[1], bool) or not isinstance(address[1], int)
            or not 0 < address[1] < 65535):
        raise ValueError(f"{what} must be a (host, port) tuple with port 1..65534, got {address!r}")
    return address


def _pt_remapper(table: bytes) -> Callable[[bytes], bytes | bytearray | None]:
    """Rewrite only the payload-type byte, by ``table`` (255: drop)."""
    def remap(data: bytes):
        second = data[1]
        pt = second & 0x7F
        new = table[pt]
        if new == pt:
            return data
        if new == _DROP:
            return None
        out = bytearray(data)
        out[1] = (second & 0x80) | new
        return out
    return remap


class MediaRelay:
    """Media of one call through the PBX: two :class:`RelayLeg`\\ s, ``a`` and ``b``.

    ::

        relay = await MediaRelay(ports).open()
        relay.a.configure(remote=("192.168.1.20", 4000), codec="pcmu", dtmf_payload_type=101)
        relay.b.configure(remote=("10.0.0.7", 5004), codec="pcma", dtmf_payload_type=96)
        # SDP to phone A names relay.a.local, SDP to phone B names relay.b.local
        relay.a.set_direction("sendonly")        # A put the call on hold
        await relay.close()                      # sockets closed, ports back in the pool

    Must be used from the loop it was opened on. ``events`` (a :class:`labkit.events.EventBus`)
    receives ``media.latched`` / ``media.relatched``; ``clock`` (default: the loop's) is what
    the latching silence timer reads.
    """

    def __init__(self, ports: PortAllocator, *, relatch_after: float = 0.5, events=None,
                 clock: Callable[[], float] | None = None, name: str = ""):
        self.ports = ports
        self.name = name
        self.events = events
        self.a = RelayLeg("a", self, relatch_after)
        self.b = RelayLeg("b", self, relatch_after)
        self.a.peer, self.b.peer = self.b, self.a
        self.clock = clock or (lambda: 0.0)
        self._clock_given = clock is not None
        self._pairs: list[PortPair] = []
        self._transcoders: dict[str, Transcoder] = {}
        self._inband: dict[str, InbandDtmf] = {}
        self.modes = {"a->b": "pass", "b->a": "pass"}
        self.state = "new"
        self.cname = f"labkit-relay-{id(self):x}@{ports.bind}"   # SDES CNAME of our own reports
        self._rtcp_handle: asyncio.TimerHandle | None = None

    async def open(self) -> "MediaRelay":
        """Bind a port pair per leg and start receiving."""
        if self.state != "new":
            raise RuntimeError(f"MediaRelay.open() on a relay that is {self.state}")
        loop = asyncio.get_running_loop()
        if not self._clock_given:
            self.clock = loop.time
        self.state = "opening"
        try:
            for leg in (self.a, self.b):
                pair = self.ports.allocate()
                self._pairs.append(pair)
                leg.port, leg._sock = pair.port, pair.rtp
                protocols = (leg, leg.rtcp)
                if pair.transports is not None:      # a parked pair: its transports come along
                    for protocol, transport in zip(protocols, pair.transports):
                        transport.set_protocol(protocol)
                        protocol.connection_made(transport)
                    continue
                transports = []
                try:
                    for protocol, sock in zip(protocols, (pair.rtp, pair.rtcp)):
                        transport, _ = await loop.create_datagram_endpoint(lambda p=protocol: p, sock=sock)
                        if getattr(transport, "max_size", 0) > _MAX_DATAGRAM:
                            transport.max_size = _MAX_DATAGRAM
                        transports.append(transport)
                finally:                             # half open (cancelled): closed on release
                    pair.transports = tuple(transports)
        except BaseException:
            await self.close()
            raise
        self.state = "open"
        self._update_forwarding()
        return self

    async def close(self) -> None:
        """Stop relaying, close all four sockets and give the ports back. Idempotent."""
        if self.state == "closed":
            return
        if self.state == "open" and self.a.reports is not None:
            self.send_rtcp(self.clock(), time.time(), bye=True)    # RFC 3550 §6.6: we leave
        if self._rtcp_handle is not None:
            self._rtcp_handle.cancel()
            self._rtcp_handle = None
        self.state = "closed"
        self._update_forwarding()
        for leg in (self.a, self.b):
            leg.conn = None
            if leg._lane is not None:
                await leg._lane.close()
        pairs, self._pairs = self._pairs, []
        for pair in pairs:              # parked, transports open, for a later call (ports.py)
            self.ports.release(pair)
        self._unlink()

    def _unlink(self) -> None:
        """Drop the references that form cycles once the call is over (leg a <-> b, leg <-> its
        RTCP port, taps naming the leg or the call's media), so the call is freed by reference
        counting, not left to the cyclic GC; forget the closed transports. Counters stay."""
        a, b = self.a, self.b
        for leg in (a, b):
            leg._set_taps([])
            leg.transport = leg.rtcp.transport = leg._sock = leg._lane = None
            leg.rtcp.leg = None
        a.peer, b.peer = _Counts(b), _Counts(a)

    async def __aenter__(self) -> "MediaRelay":
        return await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---------------------------------------------------------------------------- planning

    def _plan(self) -> None:
        """Choose pass-through, payload-type remap or transcoding for each direction, plus in-band
        DTMF where the receiver has no telephone-event and the sender has (a rewrite: that
        direction leaves the fast path)."""
        for src, dst, key in ((self.a, self.b, "a->b"), (self.b, self.a, "b->a")):
            src.rewrite, mode = None, "pass"
            via = None      # in-band DTMF: None (no), False (in the sender's codec), True (transcoder)
            if (src.codec is not None and dst.codec is not None and dst.dtmf_payload_type is None
                    and src.rx_dtmf_payload_type is not None):
                via = tones_need_transcoder(src.codec, dst.codec)
            inband = via is not None
            if src.codec is not None and dst.codec is not None:
                if src.codec.name == dst.codec.name and not via:
                    table = bytearray(range(128))
                    table[src.rx_payload_type] = dst.payload_type
                    if src.rx_dtmf_payload_type is not None and not inband:
                        table[src.rx_dtmf_payload_type] = (_DROP if dst.dtmf_payload_type is None
                                                           else dst.dtmf_payload_type)
                    if table != bytearray(range(128)):
                        src.rewrite, mode = _pt_remapper(bytes(table)), "remap"
                    self._transcoders.pop(key, None)
                else:
                    params = (src.codec.name, src.rx_payload_type, dst.codec.name, dst.payload_type,
                              src.rx_dtmf_payload_type, dst.dtmf_payload_type)
                    tc = self._transcoders.get(key)
                    if tc is None or (tc.in_codec.name, tc.in_pt, tc.out_codec.name, tc.out_pt,
                                      tc.in_dtmf_pt, tc.out_dtmf_pt) != params:
                        tc = self._transcoders[key] = Transcoder(
                            src.codec, src.rx_payload_type, dst.codec, dst.payload_type,
                            src.rx_dtmf_payload_type, dst.dtmf_payload_type)
                    src.rewrite = tc.convert
                    mode = f"transcode {src.codec.name}->{dst.codec.name}"
            if inband:
                tc = self._transcoders.get(key) if via else None
                params = (src.codec.name, src.rx_payload_type, src.rx_dtmf_payload_type, tc)
                gen = self._inband.get(key)
                if gen is None or (gen.codec.name, gen.payload_type, gen.event_pt, gen.transcoder) != params:
                    gen = self._inband[key] = InbandDtmf(*params[:3], transcoder=tc)   # else: kept
                gen.audio = src.rewrite
                src.rewrite, mode = gen.convert, mode + "+dtmf-inband"
            else:
                self._inband.pop(key, None)
            self.modes[key] = mode
        self._update_forwarding()

    def _update_forwarding(self) -> None:
        open_ = self.state == "open"
        terminated = {key: mode.startswith("transcode") for key, mode in self.modes.items()}
        reporting = any(terminated.values())  # our own RTCP with phones whose media we transcode
        for leg in (self.a, self.b):
            leg.reports = (leg.reports or LegReports(self.cname)) if reporting else None
        for src, dst in ((self.a, self.b), (self.b, self.a)):
            sends = DIRECTIONS[src.direction][0]
            receives = DIRECTIONS[dst.direction][1]
            src.forward = open_ and sends and receives and dst.remote is not None
            terminate = terminated["a->b" if src is self.a else "b->a"]
            src.rtcp.forward = open_ and not terminate and dst.rtcp.remote is not None
            src._report_in, src._report_out = (src.reports, dst.reports) if terminate else (None, None)
            src._update_plain()
        if open_ and self.a.reports is not None and self._rtcp_handle is None:
            self._rtcp_handle = asyncio.get_running_loop().call_later(RTCP_TICK, self._rtcp_tick)

    # ------------------------------------------------------------------ our own RTCP reports

    def _rtcp_tick(self) -> None:
        self._rtcp_handle = None
        if self.state != "open" or self.a.reports is None:
            return
        self.send_rtcp(self.clock(), time.time())
        self._rtcp_handle = asyncio.get_running_loop().call_later(RTCP_TICK, self._rtcp_tick)

    def send_rtcp(self, now: float, wallclock: float, bye: bool = False) -> int:
        """Send each phone whose media is transcoded the report that is due (rtcp_reports.py):
        the loop calls this every RTCP_TICK; ``bye`` sends every leg's last one, with BYE, now.
        Returns how many went out."""
        sent = 0
        for leg in (self.a, self.b):
            reports, port = leg.reports, leg.rtcp
            if reports is None or not (bye or reports.due(now)):
                continue
            data = reports.report(now, wallclock, bye)
            if data is None or port.remote is None:
                continue
            if port.send(data):
                sent += 1
            else:
                leg.send_errors += 1
        return sent

    # --------------------------------------------------------------------------- features

    def add_tap(self, leg: str, tap: Tap) -> Callable[[], None]:
        """Call ``tap(packet_bytes)`` for every RTP packet accepted from leg ``'a'`` or ``'b'``
        (before any rewrite; also while held). Returns a function that removes the tap.
        Taps run on the loop, per packet: keep them short (copy, enqueue)."""
        target = self._leg(leg)
        target._set_taps([*target._taps, tap])

        def remove() -> None:
            taps = list(target._taps)
            if tap in taps:
                taps.remove(tap)
                target._set_taps(taps)
        return remove

    def add_dtmf_listener(self, leg: str, listener: Callable[[str, int], None]) -> Callable[[], None]:
        """Call ``listener(digit, duration_ms)`` once per RFC 4733 DTMF event phone ``leg`` sends
        (on its end packet; the end is sent three times, reported once). The packets still pass
        to the other leg. A tap filtered on the leg's telephone-event payload type; returns the
        remover. For the IVR and for features such as DTMF-triggered transfer."""
        target = self._leg(leg)
        done: list[tuple[int, int]] = []                 # (ssrc, event timestamp) already reported

        def on_packet(data: bytes) -> None:
            if (data[1] & 0x7F) != target.rx_dtmf_payload_type or target.rx_dtmf_payload_type is None:
                return
            try:
                packet = RtpPacket.parse(data)
                event = TelephoneEvent.parse(packet.payload)
            except ValueError:
                return
            key = (packet.ssrc, packet.timestamp)
            if not event.end or key in done or event.digit is None:
                return
            done.append(key)
            del done[:-8]
            rate = target.codec.clock_rate if target.codec else 8000
            listener(event.digit, round(event.duration * 1000 / rate))
        return self.add_tap(leg, on_packet)

    def _leg(self, name: str) -> RelayLeg:
        if name == "a":
            return self.a
        if name == "b":
            return self.b
        raise ValueError(f"a relay has legs 'a' and 'b', not {name!r}")

    def transcoder(self, direction: str) -> Transcoder | None:
        """The transcoder of ``'a->b'`` or ``'b->a'`` (None when passing through)."""
        return self._transcoders.get(direction)

    def inband_dtmf(self, direction: str) -> InbandDtmf | None:
        """The in-band DTMF generator of ``'a->b'`` or ``'b->a'`` (None unless its mode says
        ``+dtmf-inband``); its ``tones`` and ``suppressed`` count packets."""
        return self._inband.get(direction)

    def stats(self) -> dict[str, LegStats]:
        return {"a": self.a.stats(), "b": self.b.stats()}

    def _publish(self, kind: str, **data) -> None:
        if self.events is not None:
            self.events.publish(kind, relay=self.name, **data)

    def __repr__(self) -> str:
        return (f"<MediaRelay {self.name or id(self):} {self.state} a=:{self.a.port} b=:{self.b.port} "
                f"{self.modes['a->b']} / {self.modes['b->a']}>")
