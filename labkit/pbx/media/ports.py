"""RTP port pairs for media anchored at the PBX: an even RTP port, the odd RTCP port above it.

RFC 3550 §11 asks for RTP on an even port and RTCP on the next (odd) one. The allocator
hands out pairs from the configured range (``[rtp] port_min``/``port_max`` in pbx.toml) as
already-bound UDP sockets, so the port a call is given is really its own: a pair another
program holds is skipped, not fought over. Released pairs are closed (a late packet of the
call dies with its socket) and their port goes to the back of the queue, so a port is reused
as late as possible and a late packet of the previous call does not land in the next one
(what Asterisk and rtpengine do by picking ports round-robin).

Pairs are bound ahead in blocks (``pool`` pairs at a time): a call's set-up takes a ready pair
instead of making four socket()/bind() calls, and within a block the RTP sockets are created
first and the (mostly idle) RTCP sockets after them, so the sockets every packet touches are
not interleaved in memory with ones it does not. A pooled socket is emptied when handed out:
whatever reached it before its call began is not the call's.

A pair whose call opened event-loop transports on it (the relay does) is *parked* when released:
sockets and transports stay open, switched to a protocol that discards what arrives, and the
pair waits out a ``quarantine`` (2 s: a hung-up phone's last packets are long gone) before a
later call gets it, transports and all. Opening and closing the four transports of a call was
about a tenth of the PBX's CPU per call (``benchmarks/bench_calls.py``). At most ``park`` pairs
wait, none longer than a minute past its quarantine (checked when a pair is released and by
:meth:`PortAllocator.sweep`, which the PBX's housekeeping calls); beyond that the oldest is closed
and its port goes back to the round-robin queue.

Introduced in notebook 06 (the B2BUA anchors media); used by :class:`~labkit.pbx.media.relay.MediaRelay`.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

try:                                     # the queued-bytes probe of _empty (Linux, BSD, macOS)
    from fcntl import ioctl
    from termios import FIONREAD
except ImportError:                      # Windows
    ioctl = None

__all__ = ["PortAllocator", "PortPair", "PortsExhausted"]

_BUSY = (errno.EADDRINUSE, errno.EACCES)     # held by another program (or not ours to bind)
PARKED_IDLE = 60.0     # seconds a parked pair out of quarantine may wait for a call before it closes


class PortsExhausted(RuntimeError):
    """No free RTP/RTCP pair is left in the configured range."""


@dataclass(eq=False)
class PortPair:
    """Two bound, non-blocking UDP sockets: ``rtp`` on the even ``port``, ``rtcp`` on ``port + 1``.

    ``transports`` are the event-loop transports a user opened on them (RTP's, RTCP's), kept
    with the pair so that the next call can reuse them (see the module docstring)."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket
    transports: tuple | None = None
    parking: "_Parking | None" = field(default=None, repr=False)

    @property
    def rtcp_port(self) -> int:
        return self.port + 1

    def close(self) -> None:
        """Close the sockets, or the transports that own them (they close at the loop's next turn)."""
        transports, self.transports = self.transports or (), None
        try:
            for transport in transports:     # RTP's first: a half-opened pair has only that one
                transport.close()
        except RuntimeError:                 # the loop is closed already: close the sockets here
            transports = ()
        for sock in (self.rtp, self.rtcp)[len(transports):]:
            sock.close()


class _Parking(asyncio.DatagramProtocol):
    """The protocol of a parked pair's transports: counts and drops what arrives."""

    __slots__ = ("strays", "open", "_waiter")

    def __init__(self):
        self.strays = 0
        self.open = 2                     # transports not yet closed
        self._waiter: asyncio.Future | None = None

    def datagram_received(self, data: bytes, addr) -> None:
        self.strays += 1

    def error_received(self, exc: Exception) -> None:
        pass

    def connection_lost(self, exc) -> None:
        self.open -= 1
        if not self.open and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def closed(self) -> None:
        if self.open:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter


class PortAllocator:
    """Hands out even/odd UDP port pairs from ``[port_min, port_max]`` on ``bind``.

    ``allocate()`` returns a :class:`PortPair` of bound sockets; ``release(pair)`` closes
    any socket still open and returns the port to the back of the queue. ``in_use`` says how
    many pairs are out; after every call ended it is 0 again (the tests check this). Up to
    ``pool`` free pairs are held bound, ready (``pooled``), and up to ``park`` released pairs
    with their transports (``parked``, each for at least ``quarantine`` seconds of ``clock``);
    :meth:`close` (or :meth:`aclose`, which also waits for the transports) unbinds them all.
    """

    def __init__(self, bind: str = "127.0.0.1", port_min: int = 10000, port_max: int = 20000,
                 receive_buffer: int | None = None, pool: int = 32, park: int = 2048,
                 quarantine: float = 2.0, clock: Callable[[], float] = time.monotonic):
        try:
            address = ipaddress.ip_address(bind)
        except ValueError:
            raise ValueError(f"RTP bind address {bind!r} is not an IP address") from None
        for name, value in (("port_min", port_min), ("port_max", port_max)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise ValueError(f"{name} must be a port number 1..65535, got {value!r}")
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool must be a number of pairs >= 1, got {pool!r}")
        if isinstance(park, bool) or not isinstance(park, int) or park < 0:
            raise ValueError(f"park must be a number of pairs >= 0, got {park!r}")
        first = port_min + (port_min % 2)           # first even port in the range
        if first + 1 > port_max:
            raise ValueError(f"RTP port range {port_min}-{port_max} holds no even/odd pair")
        self.bind = str(address)
        self.family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        self.port_min, self.port_max = port_min, port_max
        self.receive_buffer = receive_buffer
        self.pool = pool
        self.park = park
        self.quarantine = quarantine
        self.clock = clock
        self._free: deque[int] = deque(range(first, port_max, 2))   # not bound by us, oldest first
        self._ready: deque[PortPair] = deque()                     # bound ahead, never used
        self._parked: deque[tuple[float, PortPair]] = deque()      # (usable from, pair), oldest first
        self._used: set[int] = set()
        # an allocator dropped with pairs still pooled closes them (no ResourceWarning, no leak)
        weakref.finalize(self, _close_all, self._ready, self._parked)

    @classmethod
    def from_config(cls, config) -> "PortAllocator":
        """The allocator a :class:`labkit.pbx.config.Config` describes (``[rtp]`` section).
        The PBX's: it also lifts the process's open-file limit so the whole range can be used."""
        ports = cls(config.rtp_bind, config.rtp_port_min, config.rtp_port_max)
        raise_open_file_limit(3 * ports.capacity + 1024)     # RTP, RTCP and a latched leg's lane
        return ports

    @property
    def capacity(self) -> int:
        """Pairs in the range (some may be held by other programs)."""
        return len(self._free) + len(self._ready) + len(self._parked) + len(self._used)

    @property
    def in_use(self) -> int:
        return len(self._used)

    @property
    def free(self) -> int:
        """Pairs not in use by a call (pooled and parked ones included)."""
        return len(self._free) + len(self._ready) + len(self._parked)

    @property
    def pooled(self) -> int:
        """Free pairs held bound, ready for the next calls."""
        return len(self._ready)

    @property
    def parked(self) -> int:
        """Released pairs kept open with their transports (in quarantine or ready for reuse)."""
        return len(self._parked)

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
        """A parked pair out of quarantine (its transports still open: ``pair.transports``), else
        a ready one (binding the next block if none is). Raise PortsExhausted if none is left."""
        parked = self._parked
        if parked and parked[0][0] <= self.clock():
            pair = parked.popleft()[1]
        else:
            if not self._ready:
                self.refill()
                if not self._ready:
                    if parked:                       # the range is short: quarantine gives way
                        return self._hand_out(parked.popleft()[1])
                    raise PortsExhausted(
                        f"no free RTP port pair in {self.bind}:{self.port_min}-{self.port_max} "
                        f"({self.in_use} pairs in use by calls, the rest held by other programs)")
            pair = self._ready.popleft()
        return self._hand_out(pair)

    def _hand_out(self, pair: PortPair) -> PortPair:
        _empty(pair.rtp)
        _empty(pair.rtcp)
        self._used.add(pair.port)
        return pair

    def refill(self) -> int:
        """Bind up to ``pool`` more free pairs, oldest ports first: all RTP sockets, then their
        RTCP sockets. Pairs another program holds go to the back of the queue. Out of file
        descriptors part-way, the block's last RTP sockets give theirs up to pair the first
        ones; the error is raised only when not one pair is ready. Returns how many are."""
        bound: list[tuple[int, socket.socket]] = []
        failure: OSError | None = None
        for _ in range(len(self._free)):
            if len(bound) + len(self._ready) >= self.pool:
                break
            port = self._free.popleft()
            try:
                bound.append((port, self._bind(port)))
            except OSError as exc:
                if exc.errno in _BUSY:
                    self._free.append(port)
                    continue
                self._free.appendleft(port)
                failure = exc
                break
        k, end = 0, len(bound)
        while k < end:
            port, rtp = bound[k]
            try:
                rtcp = self._bind(port + 1)
            except OSError as exc:
                if exc.errno in _BUSY:
                    rtp.close()
                    self._free.append(port)
                    k += 1
                    continue
                failure = exc
                end -= 1
                bound[end][1].close()        # the last unpaired RTP socket frees a descriptor
                continue                     # (when that was this one, k == end: done)
            self._ready.append(PortPair(port, rtp, rtcp))
            k += 1
        self._free.extendleft(reversed([port for port, _ in bound[end:]]))   # oldest: first in line
        if failure is not None and not self._ready:
            raise failure
        return len(self._ready)

    def release(self, pair: PortPair | int) -> None:
        """Give a pair back: parked with its transports if it has some (see the module
        docstring), else its sockets are closed. Releasing twice is an error."""
        port = pair if isinstance(pair, int) else pair.port
        if port not in self._used:
            raise ValueError(f"RTP port {port} is not allocated")
        self._used.discard(port)
        if isinstance(pair, PortPair):
            if pair.transports is not None and len(pair.transports) == 2 and self.park:
                parking = pair.parking = pair.parking or _Parking()
                for transport in pair.transports:
                    transport.set_protocol(parking)
                now = self.clock()
                self._parked.append((now + self.quarantine, pair))
                self._trim(now)
                return
            pair.close()
        self._free.append(port)

    def sweep(self) -> int:
        """Close the parked pairs unused for ``PARKED_IDLE`` seconds past their quarantine (the
        PBX calls this from its housekeeping, so a quiet PBX lets its ports go). Returns how many."""
        return self._trim(self.clock())

    def _trim(self, now: float) -> int:
        """Close parked pairs beyond ``park`` or idle too long, oldest first; their ports go back
        to the round-robin queue."""
        parked, closed = self._parked, 0
        while parked and (len(parked) > self.park or parked[0][0] + PARKED_IDLE < now):
            oldest = parked.popleft()[1]
            oldest.close()
            self._free.append(oldest.port)
            closed += 1
        return closed

    def close(self) -> None:
        """Unbind the pooled and parked pairs (the PBX stops, or a test wants every free port
        unbound); parked transports close at the event loop's next turn (:meth:`aclose` waits).
        Pairs in use are the calls' to release. The allocator binds again when next asked."""
        ports = [pair.port for pair in self._ready] + [pair.port for _, pair in self._parked]
        _close_all(self._ready, self._parked)
        self._free.extendleft(reversed(ports))

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the parked pairs' transports have let their sockets go."""
        closing = [pair.parking for _, pair in self._parked]
        self.close()
        for parking in closing:
            await parking.closed()

    def __repr__(self) -> str:
        return (f"PortAllocator({self.bind}:{self.port_min}-{self.port_max}, "
                f"{self.in_use} in use, {self.free} free, {self.pooled} bound ahead)")


def raise_open_file_limit(wanted: int) -> int:
    """Lift the soft RLIMIT_NOFILE toward ``wanted`` (up to the hard limit; many systems start
    processes at a soft 1024, which 400 relayed calls use up). Returns the soft limit now."""
    try:
        import resource
    except ImportError:                          # Windows: no such limit
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if new > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError):
            return soft
    return new


def _empty(sock: socket.socket) -> None:
    """Discard datagrams that reached a pooled socket before its call (bounded: a flood ends too)."""
    if ioctl is not None:
        try:
            if ioctl(sock.fileno(), FIONREAD, _NOTHING_QUEUED) == _NOTHING_QUEUED:
                return                   # the usual case, without raising BlockingIOError
        except OSError:
            pass
    for _ in range(256):
        try:
            sock.recv(1)
        except BlockingIOError:
            return
        except OSError:          # an ICMP error queued on the socket: read it and go on
            continue


_NOTHING_QUEUED = bytes(4)           # FIONREAD's int: bytes waiting (UDP: the next datagram's size)


def _close_all(ready: deque, parked: deque) -> None:
    while ready:
        ready.popleft().close()
    while parked:
        parked.popleft()[1].close()
