"""A latched leg's fast lane: a second socket on the leg's port, connect()ed to the phone.

Once a leg has latched (:mod:`labkit.pbx.media.latch`) every packet for its phone goes to one
address. A UDP socket connected to that address sends without one: no address conversion per
packet in the loop, and a route the kernel keeps on the socket instead of looking it up per
packet (``socket.send`` on a connected socket costs ~2.9 µs here against ~3.7 µs for the loop's
``transport.sendto(data, address)``: a fifth of the send).

The kernel then delivers the phone's packets to the connected socket (it matches exactly) and
everything else to the leg's own socket, which stays unconnected so that a new source is still
seen: latching, strict source and relatching are decided by the relay as before, on what either
socket receives. Two sockets on one port need SO_REUSEPORT; it is set only while the lane binds
and cleared on both right after, so no other socket can join the port later (another program
with SO_REUSEPORT could otherwise share the leg's packets). Linux only (elsewhere SO_REUSEPORT
means other things): without a lane the leg sends with ``sendto`` as before.

Introduced with the relay's capacity work (``benchmarks/bench_relay.py``).
"""
from __future__ import annotations

import asyncio
import socket
import sys
from typing import Callable

__all__ = ["Lane", "AVAILABLE"]

AVAILABLE = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


class _Protocol(asyncio.DatagramProtocol):
    """The lane socket's protocol: hands packets straight to the leg's own methods."""

    __slots__ = ("datagram_received", "error_received", "closed")

    def __init__(self, received: Callable, error: Callable, closed: asyncio.Future):
        self.datagram_received = received       # the leg's bound method: no extra call per packet
        self.error_received = error
        self.closed = closed

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class Lane:
    """The connected socket beside a leg's socket ``base``; packets it receives go to
    ``received(data, addr)``, errors (ICMP) to ``error(exc)``."""

    def __init__(self, base: socket.socket, received: Callable, error: Callable):
        self.base = base
        self.sock: socket.socket | None = None
        self.transport: asyncio.BaseTransport | None = None
        self._received, self._error = received, error
        self._opening: asyncio.Task | None = None
        self._closed: asyncio.Future | None = None

    def connect(self, address) -> socket.socket | None:
        """Point the lane at ``address`` (binding it the first time). Returns the socket to send
        on, or None if the lane could not be made (the leg then sends with sendto)."""
        try:
            if self.sock is None:
                self.sock = self._bind_beside(address)
                loop = asyncio.get_running_loop()
                self._closed = loop.create_future()
                self._opening = loop.create_task(self._receive(loop))
            else:
                self.sock.connect(address)
        except OSError:
            return None
        return self.sock

    def _bind_beside(self, address) -> socket.socket:
        base, option = self.base, socket.SO_REUSEPORT
        sock = socket.socket(base.family, socket.SOCK_DGRAM)
        try:
            base.setsockopt(socket.SOL_SOCKET, option, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, 1)
                sock.bind(base.getsockname())
                sock.connect(address)
            finally:
                base.setsockopt(socket.SOL_SOCKET, option, 0)
                sock.setsockopt(socket.SOL_SOCKET, option, 0)     # nobody else joins the port
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        protocol = _Protocol(self._received, self._error, self._closed)
        self.transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=self.sock)
        if getattr(self.transport, "max_size", 0) > 65536:     # asyncio's loop: as relay.py does
            self.transport.max_size = 65536

    async def close(self) -> None:
        """Close the lane's socket (and stop receiving on it)."""
        opening, self._opening = self._opening, None
        if opening is not None:
            try:
                await opening                      # a loop iteration or two at most
            except Exception:                      # never received: the socket is still ours
                pass
        if self.transport is not None:
            self.transport.close()
            await self._closed
        elif self.sock is not None:
            self.sock.close()
        self.sock = self.transport = None
        self._received = self._error = None
