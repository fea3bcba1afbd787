"""The bare reference relay that benchmarks/bench_relay.py measures labkit's MediaRelay against.

It is the least a Python RTP relay can do: per call two UDP sockets, and each datagram that
arrives on one is sent from the other to a fixed address (static forwarding: no latching,
no validity check, no counters, no RTCP). Run on uvloop it is the ceiling for an asyncio
relay on this machine; run on asyncio's default loop it shows what uvloop buys.
"""
from __future__ import annotations

import asyncio
import socket

__all__ = ["BareLeg", "BareCall"]


class BareLeg(asyncio.DatagramProtocol):
    """Forward everything received to ``destination`` through the peer leg's socket."""

    __slots__ = ("transport", "peer", "destination")

    def __init__(self):
        self.transport = None
        self.peer = None
        self.destination = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.peer.transport.sendto(data, self.destination)


class BareCall:
    """Two bare legs: what arrives on ``a`` goes to ``to_b``, what arrives on ``b`` to ``to_a``."""

    def __init__(self, bind: str, to_a: tuple, to_b: tuple, first_port: int = 0, rtcp: bool = False):
        self.bind, self.to_a, self.to_b = bind, to_a, to_b
        self.first_port = first_port        # try ports from here (like labkit's range), else any
        self.rtcp = rtcp                    # also hold the (idle) odd RTCP ports, as a real relay must
        self._idle: list[asyncio.BaseTransport] = []
        self.a, self.b = BareLeg(), BareLeg()
        self.a.peer, self.b.peer = self.b, self.a
        self.a.destination, self.b.destination = to_b, to_a
        self.ports: tuple[int, int] = (0, 0)

    async def open(self) -> "BareCall":
        loop = asyncio.get_running_loop()
        ports = []
        port = self.first_port
        for leg in (self.a, self.b):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            while True:
                try:
                    sock.bind((self.bind, port))
                    break
                except OSError:
                    if not port or port > 65533:
                        sock.close()
                        raise
                    port += 2
            port += 2 if port else 0
            sock.setblocking(False)
            await loop.create_datagram_endpoint(lambda leg=leg: leg, sock=sock)
            ports.append(sock.getsockname()[1])
            if self.rtcp:
                extra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    extra.bind((self.bind, ports[-1] + 1))
                except OSError:
                    extra.close()
                    continue
                extra.setblocking(False)
                transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=extra)
                self._idle.append(transport)
        self.ports = (ports[0], ports[1])
        return self

    def close(self) -> None:
        for leg in (self.a, self.b):
            if leg.transport is not None:
                leg.transport.close()
        for transport in self._idle:
            transport.close()
