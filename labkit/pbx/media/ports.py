"""RTP port pairs for media anchored at the PBX: an even RTP port, the odd RTCP port above it.

RFC 3550 §11 asks for RTP on an even port and RTCP on the next (odd) one. The allocator
hands out pairs from the configured range (``[rtp] port_min``/``port_max`` in pbx.toml) as
already-bound UDP sockets, so the port a call is given is really its own: a pair another
program holds is skipped, not fought over. Released pairs go to the back of the queue, so a
port is reused as late as possible and a late packet of the previous call does not land in
the next one (what Asterisk and rtpengine do by picking ports round-robin).

Introduced in notebook 06 (the B2BUA anchors media); used by :class:`~labkit.pbx.media.relay.MediaRelay`.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
from collections import deque
from dataclasses import dataclass

__all__ = ["PortAllocator", "PortPair", "PortsExhausted"]


class PortsExhausted(RuntimeError):
    """No free RTP/RTCP pair is left in the configured range."""


@dataclass(eq=False)
class PortPair:
    """Two bound, non-blocking UDP sockets: ``rtp`` on the even ``port``, ``rtcp`` on ``port + 1``."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket

    @property
    def rtcp_port(self) -> int:
        return self.port + 1


class PortAllocator:
    """Hands out even/odd UDP port pairs from ``[port_min, port_max]`` on ``bind``.

    ``allocate()`` returns a :class:`PortPair` of bound sockets; ``release(pair)`` closes
    any socket still open and returns the port to the pool. ``in_use`` says how many
    pairs are out; after every call ended it is 0 again (the tests check this).
    """

    def __init__(self, bind: str = "127.0.0.1", port_min: int = 10000, port_max: int = 20000,
                 receive_buffer: int | None = None):
        try:
            address = ipaddress.ip_address(bind)
        except ValueError:
            raise ValueError(f"RTP bind address {bind!r} is not an IP address") from None
        for name, value in (("port_min", port_min), ("port_max", port_max)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise ValueError(f"{name} must be a port number 1..65535, got {value!r}")
        first = port_min + (port_min % 2)           # first even port in the range
        if first + 1 > port_max:
            raise ValueError(f"RTP port range {port_min}-{port_max} holds no even/odd pair")
        self.bind = str(address)
        self.family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        self.port_min, self.port_max = port_min, port_max
        self.receive_buffer = receive_buffer
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()

    @classmethod
    def from_config(cls, config) -> "PortAllocator":
        """The allocator a :class:`labkit.pbx.config.Config` describes (``[rtp]`` section)."""
        return cls(config.rtp_bind, config.rtp_port_min, config.rtp_port_max)

    @property
    def capacity(self) -> int:
        """Pairs in the range (some may be held by other programs)."""
        return len(self._free) + len(self._used)

    @property
    def in_use(self) -> int:
        return len(self._used)

    @property
    def free(self) -> int:
        return len(self._free)

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            if self.receive_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            sock.bind((self.bind, port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def allocate(self) -> PortPair:
        """Bind the next free pair; skip pairs someone else holds. Raise PortsExhausted if none is left."""
        for _ in range(len(self._free)):
            port = self._free.popleft()
            try:
                rtp = self._bind(port)
            except OSError as exc:
                self._free.append(port)
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            try:
                rtcp = self._bind(port + 1)
            except OSError as exc:
                rtp.close()
                self._free.append(port)
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            self._used.add(port)
            return PortPair(port, rtp, rtcp)
        raise PortsExhausted(
            f"no free RTP port pair in {self.bind}:{self.port_min}-{self.port_max} "
            f"({self.in_use} pairs in use by calls, the rest held by other programs)")

    def release(self, pair: PortPair | int) -> None:
        """Give a pair back (closing its sockets if still open). Releasing twice is an error."""
        port = pair if isinstance(pair, int) else pair.port
        if port not in self._used:
            raise ValueError(f"RTP port {port} is not allocated")
        if isinstance(pair, PortPair):
            pair.rtp.close()
            pair.rtcp.close()
        self._used.discard(port)
        self._free.append(port)

    def __repr__(self) -> str:
        return (f"PortAllocator({self.bind}:{self.port_min}-{self.port_max}, "
                f"{self.in_use} in use, {self.free} free)")
