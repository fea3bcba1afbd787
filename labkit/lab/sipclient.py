"""A small blocking SIP client for notebook cells, and an OPTIONS load generator.

Introduced in notebook 02. `SipClient` owns one socket (UDP, or a TCP connection) and does one
thing at a time: build a request (`labkit.sip.uac.make_request` fills the mandatory headers),
send it, wait for the answer — so a cell can show every byte and every step by hand, where
`labkit.sip.uac.UserAgent` hides them. It is a teaching tool, not a user agent: no
retransmissions (loopback does not lose datagrams), no transactions.

`options_load` measures how many OPTIONS a server answers per second with N clients each
keeping one request in flight (closed loop, like `sipp -sn uac` with a call limit). It runs
its own event loop in a worker thread, so it works from a notebook whose kernel already has one.
"""
from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..sip.message import Request, Response, frame_stream, parse
from ..sip.transport import format_host
from ..sip.uac import make_request

__all__ = ["SipClient", "LoadResult", "options_load", "run_in_thread"]


class SipClient:
    """Blocking request/response over one socket.

        with SipClient(pbx.address) as c:
            reply = c.exchange(c.request("OPTIONS"))
    """

    def __init__(self, server: tuple[str, int], transport: str = "udp", *, bind: str = "127.0.0.1",
                 timeout: float = 2.0, user: str = "notebook"):
        transport = transport.lower()
        if transport not in ("udp", "tcp"):
            raise ValueError(f"unsupported transport {transport!r} (use 'udp' or 'tcp')")
        self.server = (server[0], int(server[1]))
        self.transport = transport
        self.timeout = timeout
        self.user = user
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(family, kind)
        self._buffer = bytearray()
        self._pending: list[bytes] = []
        self.cseq = 0
        self.call_id = f"{secrets.token_hex(6)}@{bind}"
        try:
            self.sock.bind((bind, 0))
            self.sock.settimeout(timeout)
            if transport == "tcp":
                self.sock.connect(self.server)
        except OSError:
            self.sock.close()
            raise

    @property
    def local(self) -> tuple[str, int]:
        """Our (host, port): what goes into Via and Contact."""
        return self.sock.getsockname()[:2]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SipClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- building ------------------------------------------------------------------------
    def request(self, method: str, uri: str | None = None, *, user: str | None = None,
                headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                new_call: bool = False, contact: bool | str = False) -> Request:
        """A request from `user` (default the client's) with a fresh branch and the next CSeq.

        Requests from one client share a Call-ID (like a phone's REGISTERs) unless `new_call`.
        `contact=True` adds a Contact pointing at this socket.
        """
        host, port = self.server
        user = user or self.user
        self.cseq += 1
        if new_call:
            self.call_id = f"{secrets.token_hex(6)}@{self.local[0]}"
        where = f"{format_host(host)}:{port}"
        if contact is True:
            contact = f"<sip:{user}@{format_host(self.local[0])}:{self.local[1]};transport={self.transport}>"
        return make_request(
            method, uri or f"sip:{where}", local=self.local, transport=self.transport,
            from_uri=f"sip:{user}@{where}", to_uri=f"sip:{user}@{where}" if method == "REGISTER" else None,
            call_id=self.call_id, cseq=self.cseq, contact=contact or None, headers=list(headers), body=body,
        )

    # ---- wire ----------------------------------------------------------------------------
    def send(self, message: Request | Response | bytes) -> None:
        data = message if isinstance(message, (bytes, bytearray)) else bytes(message)
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The next whole message as bytes (a datagram, or one Content-Length-framed message)."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            if self.transport == "udp":
                data, _ = self.sock.recvfrom(65535)
                return data
            while not self._pending:
                chunk = self.sock.recv(65535)
                if not chunk:
                    raise ConnectionError(f"the server at {self.server[0]}:{self.server[1]} closed the connection")
                self._buffer += chunk
                self._pending += frame_stream(self._buffer)
            return self._pending.pop(0)
        except socket.timeout:
            raise TimeoutError(f"no answer from {self.server[0]}:{self.server[1]} within "
                               f"{self.sock.gettimeout():g} s") from None

    def receive(self, timeout: float | None = None) -> Request | Response:
        return parse(self.receive_bytes(timeout))

    def exchange(self, request: Request | bytes, timeout: float | None = None) -> Response:
        """Send and return the final response (provisional ones are skipped, strays ignored)."""
        if isinstance(request, (bytes, bytearray)):
            request = parse(bytes(request))
        branch = request.via[0].branch
        self.send(request)
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                message = self.receive(left)
            except TimeoutError:
                raise TimeoutError(f"no final response to {request.method} from "
                                   f"{self.server[0]}:{self.server[1]} within {wait:g} s") from None
            if isinstance(message, Response) and message.status >= 200 and message.via[0].branch == branch:
                return message


# ---- load generator ------------------------------------------------------------------------

@dataclass
class LoadResult:
    """What one load run measured."""

    clients: int
    seconds: float
    answered: int
    timeouts: int
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return self.answered / self.seconds if self.seconds else 0.0

    def latency_ms(self, quantile: float = 0.5) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def _options_template(server: tuple[str, int], transport: str) -> str:
    where = f"{format_host(server[0])}:{server[1]}"
    return (
        f"OPTIONS sip:{where} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {{local}};branch=z9hG4bK{{tag}};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:load@{where}>;tag={{tag}}\r\nTo: <sip:{where}>\r\n"
        f"Call-ID: {{tag}}@load\r\nCSeq: {{seq}} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self):
        self.waiter: asyncio.Future | None = None

    def datagram_received(self, data, addr):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)


async def _udp_worker(server, template, stop_at, timeout, result: LoadResult, prefix: str) -> None:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    transport, proto = await loop.create_datagram_endpoint(_UdpClient, remote_addr=server, family=family)
    host, port = transport.get_extra_info("sockname")[:2]
    local = f"{format_host(host)}:{port}"
    seq = 0
    try:
        while loop.time() < stop_at:
            seq += 1
            proto.waiter = loop.create_future()
            sent = loop.time()
            transport.sendto(template.format(local=local, tag=f"{prefix}{seq}", seq=seq).encode())
            try:
                await asyncio.wait_for(proto.waiter, timeout)
            except asyncio.TimeoutError:
                result.timeouts += 1
                continue
            result.answered += 1
            result.latencies.append(loop.time() - sent)
    finally:
        transport.close()


async def _tcp_worker(server, template, stop_at, timeout, result: LoadResult, prefix: str) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(*server)
    host, port = writer.get_extra_info("sockname")[:2]
    local = f"{format_host(host)}:{port}"
    buffer = bytearray()
    seq = 0
    try:
        while loop.time() < stop_at:
            seq += 1
            sent = loop.time()
            writer.write(template.format(local=local, tag=f"{prefix}{seq}", seq=seq).encode())
            try:
                while not frame_stream(buffer):
                    chunk = await asyncio.wait_for(reader.read(65535), timeout)
                    if not chunk:
                        return
                    buffer += chunk
            except asyncio.TimeoutError:
                result.timeouts += 1
                return  # a stream that stalls is not worth waiting for in a short run
            result.answered += 1
            result.latencies.append(loop.time() - sent)
    finally:
        writer.close()


async def _run_load(server, clients: int, duration: float, transport: str, timeout: float) -> LoadResult:
    loop = asyncio.get_running_loop()
    template = _options_template(server, transport)
    result = LoadResult(clients, duration, 0, 0)
    worker = _udp_worker if transport == "udp" else _tcp_worker
    started = loop.time()
    stop_at = started + duration
    await asyncio.gather(*(worker(server, template, stop_at, timeout, result, f"{i}x{secrets.token_hex(3)}-")
                           for i in range(clients)))
    result.seconds = loop.time() - started
    return result


def run_in_thread(coro: Any, timeout: float | None = 60.0) -> Any:
    """Run a coroutine on a fresh event loop in a worker thread and return its result
    (notebook cells cannot `asyncio.run` while the kernel's own loop is running)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="labkit-client", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the client loop did not finish within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def options_load(server: tuple[str, int], clients: int = 1, duration: float = 0.5, *,
                 transport: str = "udp", timeout: float = 0.5) -> LoadResult:
    """Closed-loop OPTIONS load: `clients` sockets, each sends, waits for the answer, repeats,
    for `duration` seconds. Returns answered count, rate and per-request latencies."""
    if clients < 1:
        raise ValueError("clients must be at least 1")
    if not 0 < duration <= 60:
        raise ValueError("duration must be in (0, 60] seconds")
    transport = transport.lower()
    if transport not in ("udp", "tcp"):
        raise ValueError(f"unsupported transport {transport!r} (use 'udp' or 'tcp')")
    return run_in_thread(_run_load((server[0], int(server[1])), clients, duration, transport, timeout),
                         timeout=duration + timeout + 30)
