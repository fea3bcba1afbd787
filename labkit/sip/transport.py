"""SIP over UDP and TCP on one asyncio loop: the thin I/O layer under the sans-I/O core.

Introduced in notebook 02. The transport layer only moves bytes: it frames them (a datagram is
one message; a TCP stream is cut by Content-Length), parses them, stamps `received`/`rport` on
the top Via of requests (RFC 3261 §18.2.1, RFC 3581), hands messages up, and sends responses
back the way RFC 3261 §18.2.2 says (the same connection if it is still open, else the address
in `received` and `rport`, else sent-by). Garbage is dropped with a log line; a request that
can be read far enough to answer gets a 400 with the reason. Nothing the peer sends can crash
the loop. TLS and WebSocket slot in as further `listen_*` methods sharing `_deliver`.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from dataclasses import dataclass
from typing import Callable

from ..events import EventBus
from .message import ParseError, Request, Response, frame_stream, parse

log = logging.getLogger("labkit.sip")

MAX_MESSAGE = 65535          # a SIP message larger than this is refused (UDP's own ceiling)
MAX_STREAM_BUFFER = 4 * MAX_MESSAGE
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}
REQUIRED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
MAX_REMEMBERED_DESTINATIONS = 4096   # response routes kept (top Via, peer) -> destination
#: Receive buffer asked for on UDP listeners. Linux's default (~208 KiB, a few hundred messages)
#: overflows when a burst meets a busy loop (a GC pass, a slow step): the kernel then drops
#: datagrams silently, e.g. the ACK to a 401, and the transaction retransmits into a call that
#: has moved on. SIP servers ask for more (Kamailio, Asterisk); the kernel caps the request at
#: net.core.rmem_max.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


@dataclass(frozen=True)
class Peer:
    """Where a message came from (or goes to): transport, remote address, and the connection if any."""

    transport: str
    host: str
    port: int
    connection: int | None = None

    def __str__(self) -> str:
        return f"{format_host(self.host)}:{self.port}"


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def summarize(msg: Request | Response) -> str:
    """One readable line for a message, like sngrep's list view."""
    if isinstance(msg, Request):
        first = f"{msg.method} {msg.uri}"
    else:
        first = f"{msg.status} {msg.reason}"
    call_id = msg.get("Call-ID") or "-"
    cseq = msg.get("CSeq") or "-"
    return f"{first} (Call-ID {call_id}, CSeq {cseq})"


def missing_header_reason(msg: Request) -> str | None:
    """RFC 3261 §8.1.1: the headers every request must carry, with values we can read."""
    for name in REQUIRED_HEADERS:
        if msg.get(name) is None:
            return f"Missing {name} header"
    try:
        msg.via, msg.from_, msg.to, msg.cseq  # noqa: B018 — parse the typed values now
    except ParseError as exc:
        return str(exc)
    if msg.cseq.method != msg.method:
        return f"CSeq method {msg.cseq.method} does not match request method {msg.method}"
    return None


def check_and_stamp(msg: Request, peer: Peer) -> str | None:
    """`missing_header_reason` and `stamp_received` in the order that parses each header once.

    Stamping rewrites the top Via, and any header change drops every typed value parsed so
    far; so the Via is read and stamped first, then From, To and CSeq are parsed and stay
    cached for the transaction layer and the TU. Returns the reason a request is refused."""
    for name in REQUIRED_HEADERS:
        if msg.get(name) is None:
            return f"Missing {name} header"
    try:
        stamp_received(msg, peer)
        msg.from_, msg.to, msg.cseq  # noqa: B018 — parse the typed values now
    except ParseError as exc:
        return str(exc)
    if msg.cseq.method != msg.method:
        return f"CSeq method {msg.cseq.method} does not match request method {msg.method}"
    return None


Handler = Callable[[Request | Response, Peer], None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, layer: "TransportLayer"):
        self.layer = layer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data: bytes, addr):
        self.layer._deliver(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc):  # ICMP port unreachable and friends: nothing to crash on
        log.debug("udp error: %s", exc)


class _Tcp(asyncio.Protocol):
    def __init__(self, layer: "TransportLayer"):
        self.layer = layer
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport):
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer("tcp", host, port, self.layer._register(self))

    def data_received(self, data: bytes):
        self.buffer += data
        try:
            messages = frame_stream(self.buffer)
        except ParseError as exc:
            self.layer._drop(self.peer, bytes(self.buffer[:200]), f"stream framing: {exc}")
            self.transport.close()
            return
        for raw in messages:
            self.layer._deliver(raw, self.peer)
        if len(self.buffer) > MAX_STREAM_BUFFER:
            self.layer._drop(self.peer, bytes(self.buffer[:200]), "stream buffer overflow")
            self.transport.close()

    def connection_lost(self, exc):
        if self.peer is not None:
            self.layer._unregister(self.peer.connection)


class TransportLayer:
    """Listens on UDP and TCP, delivers parsed messages to `handler(msg, peer)`, sends replies."""

    def __init__(self, handler: Handler, bus: EventBus | None = None):
        self.handler = handler
        self.bus = bus or EventBus()
        self._udp: dict[tuple[str, int], asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: dict[int, _Tcp] = {}
        self._by_address: dict[tuple[str, str, int], int] = {}
        self._ids = itertools.count(1)
        self.addresses: dict[str, tuple[str, int]] = {}
        self.dropped = 0
        self._destinations: dict[tuple[str | None, Peer], Peer] = {}   # see send_response

    # ---- listening -------------------------------------------------------------------------
    async def listen_udp(self, host: str = "127.0.0.1", port: int = 5060) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(host, port))
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        except OSError:          # a platform without it: the default buffer still works
            pass
        address = transport.get_extra_info("sockname")[:2]
        self._udp[address] = transport
        self.addresses.setdefault("udp", address)
        return address

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 5060) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Tcp(self), host, port, reuse_address=True)
        self._servers.append(server)
        address = server.sockets[0].getsockname()[:2]
        self.addresses.setdefault("tcp", address)
        return address

    async def close(self) -> None:
        for transport in self._udp.values():
            transport.close()
        self._udp.clear()
        for conn in list(self._connections.values()):
            conn.transport.close()
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()
        self.addresses.clear()

    # ---- connections ----------------------------------------------------------------------
    def _register(self, conn: _Tcp) -> int:
        cid = next(self._ids)
        self._connections[cid] = conn
        host, port = conn.transport.get_extra_info("peername")[:2]
        self._by_address[("tcp", host, port)] = cid
        return cid

    def _unregister(self, cid: int | None) -> None:
        conn = self._connections.pop(cid, None)
        if conn is not None and conn.peer is not None:
            self._by_address.pop(("tcp", conn.peer.host, conn.peer.port), None)

    # ---- receiving ------------------------------------------------------------------------
    def _drop(self, peer: Peer, data: bytes, why: str) -> None:
        self.dropped += 1
        log.warning("dropped %d bytes from %s %s: %s", len(data), peer.transport, peer, why)
        self.bus.publish("sip.drop", peer=peer, reason=why, data=data)

    def _deliver(self, data: bytes, peer: Peer) -> None:
        if not data.strip():          # CRLF keep-alive (RFC 5626 §3.5.1) — answer pings on streams
            if peer.transport != "udp" and data.startswith(b"\r\n\r\n"):
                self.send_bytes(b"\r\n", peer)
            return
        if len(data) > MAX_MESSAGE:
            self._drop(peer, data[:200], f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
            return
        try:
            msg = parse(data)
        except ParseError as exc:
            self._reject(exc, data, peer)
            return
        except Exception as exc:  # a parser bug must never take the loop down
            log.exception("parser failed on %d bytes from %s", len(data), peer)
            self._drop(peer, data[:200], f"internal parser error: {exc!r}")
            return
        if isinstance(msg, Request):
            reason = check_and_stamp(msg, peer)
            if reason is not None:
                if msg.method != "ACK" and msg.get("Via") and msg.get("Call-ID") and msg.get("CSeq"):
                    self._answer_bad(msg, reason, peer)
                else:
                    self._drop(peer, data[:200], reason)
                return
        if self.bus.wants("sip.in"):
            self.bus.publish("sip.in", message=msg, peer=peer, local=self.addresses.get(peer.transport))
        if log.isEnabledFor(logging.INFO):   # summarize() costs a URI format: only when it is shown
            log.info("<- %-3s %-21s %s", peer.transport, peer, summarize(msg))
        try:
            self.handler(msg, peer)
        except Exception:
            log.exception("handler failed on %s", summarize(msg))
            if isinstance(msg, Request) and msg.method != "ACK":
                self.send_response(msg.make_response(500, "Server Internal Error"), peer)

    def _reject(self, exc: ParseError, data: bytes, peer: Peer) -> None:
        """Answer a malformed request with 4xx + reason when its Via/Call-ID/CSeq could be read."""
        info = getattr(exc, "request_info", None)
        self._drop(peer, data[:200], str(exc))
        if not info:
            return
        if getattr(info, "method", None) == "ACK":
            return  # never answer an ACK
        try:
            stamp_received(info, peer)
            response = info.make_response(exc.status, reason_phrase(str(exc)))
            parse(bytes(response))   # never echo the peer's garbage back onto the wire
            self.send_response(response, peer)
        except Exception as salvage:  # the salvage itself failed: dropping is all that is left
            log.debug("could not answer malformed request: %r", salvage)

    def _answer_bad(self, msg: Request, reason: str, peer: Peer) -> None:
        try:
            stamp_received(msg, peer)
            self.send_response(msg.make_response(400, reason_phrase(reason)), peer)
        except (ParseError, IndexError):
            self._drop(peer, bytes(msg)[:200], reason)

    # ---- sending --------------------------------------------------------------------------
    def send_bytes(self, data: bytes, peer: Peer) -> bool:
        if peer.transport == "udp":
            transport = next(iter(self._udp.values()), None)
            if transport is None:
                return False
            transport.sendto(data, (peer.host, peer.port))
            return True
        cid = peer.connection or self._by_address.get((peer.transport, peer.host, peer.port))
        conn = self._connections.get(cid) if cid else None
        if conn is None or conn.transport.is_closing():
            return False
        conn.transport.write(data)
        return True

    def send(self, msg: Request | Response, peer: Peer) -> bool:
        ok = self.send_bytes(bytes(msg), peer)
        if ok:
            if self.bus.wants("sip.out"):
                self.bus.publish("sip.out", message=msg, peer=peer, local=self.addresses.get(peer.transport))
            if log.isEnabledFor(logging.INFO):
                log.info("-> %-3s %-21s %s", peer.transport, peer, summarize(msg))
        return ok

    def send_response(self, response: Response, peer: Peer) -> bool:
        """RFC 3261 §18.2.2 (+ RFC 3581): route a response by its top Via.

        Every response of a transaction carries the same top Via (copied from the request),
        so the destination is remembered by that Via's text and the peer: a 180, its 200 and
        the 200's retransmissions parse the Via once, not each time."""
        if peer.transport != "udp" and peer.connection is not None:
            return self.send(response, peer)
        key = (response.get("Via"), peer)
        destination = self._destinations.get(key)
        if destination is None:
            destination = response_destination(response, peer)
            if len(self._destinations) >= MAX_REMEMBERED_DESTINATIONS:
                self._destinations.clear()
            self._destinations[key] = destination
        return self.send(response, destination)

    async def connect(self, peer: Peer) -> Peer:
        """The peer with an open connection (reusing one to the same address) for stream transports."""
        if peer.transport == "udp":
            return peer
        cid = self._by_address.get((peer.transport, peer.host, peer.port))
        if cid is not None:
            return Peer(peer.transport, peer.host, peer.port, cid)
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Tcp(self), peer.host, peer.port)
        return conn.peer

    async def send_request(self, request: Request, peer: Peer) -> Peer:
        """Send a request statelessly (opening a TCP connection if needed); returns the peer used."""
        peer = await self.connect(peer)
        if not self.send(request, peer):
            raise ConnectionError(f"no {peer.transport} transport to {peer}")
        return peer


def stamp_received(msg: Request, peer: Peer) -> None:
    """RFC 3261 §18.2.1 and RFC 3581 §4: record where the request really came from.

    Most clients end the top Via with a valueless ``;rport`` (RFC 3581), which always gets
    both parameters: that Via is stamped as text (``rport=PORT;received=HOST`` appended) and
    parsed once, after; any other Via is parsed, stamped and written back (``Via.stamp``)."""
    text = msg.get("Via")
    low = text.lower() if text is not None else ""
    if low.endswith(";rport") and low.count(";rport") == 1 and "received" not in low:
        msg.headers.replace_first("Via", f"{text}={peer.port};received={peer.host}")
        msg.via  # noqa: B018 — parsed here, so a malformed Via is refused as before
        return
    top = msg.via[0]
    stamped = top.stamp(peer.host, peer.port)
    if stamped is not top:
        msg.headers.replace_first("Via", stamped)


def reason_phrase(text: str, limit: int = 120) -> str:
    """A parser's explanation made safe for a status line (printable, one line, bounded)."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def response_destination(response: Response, peer: Peer) -> Peer:
    """Where a response goes: the open connection, else received/rport, else sent-by."""
    if peer.transport != "udp" and peer.connection is not None:
        return peer
    via = response.via[0]
    host = via.params.get("received") or via.host.strip("[]")
    rport = via.params.get("rport")
    if rport:
        port = int(rport)
    elif via.params.get("received"):
        port = via.port or DEFAULT_PORTS.get(peer.transport, 5060)
    else:
        port = via.port or DEFAULT_PORTS.get(via.transport.lower(), 5060)
    return Peer(peer.transport, host, port, peer.connection)
