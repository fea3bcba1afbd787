"""The UA core: transports below, transactions in the middle, the TU (PBX, softphone) above.

Introduced in notebook 03. This is the only place where the sans-I/O transaction layer meets
the clock and the sockets: every message from the transport goes through
`TransactionLayer.receive`, every output is executed here (`Send` → transport, events → the
TU), and one `loop.call_at` timer is kept on the layer's next deadline. The TU sees
`ServerRequest`s (a request plus a way to answer it) and awaits `request()` for its own.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

from ..events import EventBus
from .message import Request, Response
from .randomness import random_hex
from .transaction import (
    AckReceived,
    ClientTransaction,
    Dropped,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerTransaction,
    StrayResponse,
    TimerValues,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
)
from .transport import Peer, TransportLayer, summarize

log = logging.getLogger("labkit.sip")

#: The loop timer wakes the transaction layer on this grid (seconds): every transaction due in
#: the same 10 ms is handled in one wake-up. A busy server has thousands of transaction timers
#: a second (RFC 3261 keeps each transaction up to 32 s, then ends it on a timer); one loop
#: timer per deadline was one callback, one TimerHandle and one re-arm each. 10 ms late is
#: nothing next to T1 = 500 ms.
TIMER_TICK = 0.01


def new_tag() -> str:
    return random_hex(6)


@dataclass
class ServerRequest:
    """An incoming request and the transaction that answers it."""

    endpoint: "SipEndpoint"
    request: Request
    peer: Peer
    transaction: ServerTransaction | None
    cancels: ServerTransaction | None = None
    answered: bool = False

    @property
    def method(self) -> str:
        return self.request.method

    def response(self, status: int, reason: str | None = None, to_tag: str | None = None) -> Response:
        """A response to this request with the endpoint's standard headers, not sent yet.
        Every response but 100 carries a To tag (RFC 3261 §8.2.6.2): a fresh one unless
        ``to_tag`` is given or the request's To has one already."""
        if to_tag is None and status != 100:
            to_tag = new_tag()
        response = self.request.make_response(status, reason, to_tag=to_tag)
        response.add("Server", self.endpoint.user_agent)
        return response

    def send(self, response: Response) -> None:
        if response.status >= 200:
            self.answered = True
        self.endpoint.respond(self, response)

    def reply(self, status: int, reason: str | None = None, headers=(), body: bytes = b"",
              content_type: str | None = None, to_tag: str | None = None) -> Response:
        response = self.response(status, reason, to_tag=to_tag)
        for name, value in headers:
            response.add(name, value)
        if body:
            response.set("Content-Type", content_type or "application/sdp")
            response.body = body
        self.send(response)
        return response


RequestHandler = Callable[[ServerRequest], None]


class SipEndpoint:
    """Transport + transaction layer on one asyncio loop, driving a TU callback."""

    def __init__(self, on_request: RequestHandler, *, bus: EventBus | None = None,
                 timers: TimerValues = TimerValues(), user_agent: str = "labkit",
                 on_ack: Callable[[Request, Peer], None] | None = None,
                 on_stray_response: Callable[[Response, Peer], None] | None = None,
                 on_timeout: Callable[[object, str], None] | None = None):
        self.on_request = on_request
        self.on_ack = on_ack
        self.on_stray_response = on_stray_response
        self.on_timeout = on_timeout
        self.user_agent = user_agent
        self.bus = bus or EventBus()
        self.transport = TransportLayer(self._on_message, self.bus)
        self.transactions = TransactionLayer(timers)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pending: dict[int, tuple[asyncio.Future, Callable[[Response], None] | None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- clock ------------------------------------------------------------------------------
    def now(self) -> float:
        return self._loop.time() if self._loop else time.monotonic()

    async def listen(self, host: str, port: int, transports=("udp", "tcp")) -> tuple[str, int]:
        """Listen on every transport at one port. With port 0 the first transport picks a free
        port and the others follow it; if that number is taken for them (e.g. a TCP socket in
        TIME_WAIT), start again with a new one."""
        self._loop = asyncio.get_running_loop()
        for attempt in range(1 if port else 20):
            address, chosen = None, port
            try:
                for name in transports:
                    got = await getattr(self.transport, f"listen_{name}")(host, chosen)
                    address = address or got
                    chosen = got[1]
                return address
            except OSError:
                if port or attempt == 19:
                    raise
                await self.transport.close()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        for future, _ in self._pending.values():
            if not future.done():
                future.cancel()
        await self.transport.close()

    # ---- executing the layer's outputs ---------------------------------------------------
    def _on_message(self, msg: Request | Response, peer: Peer) -> None:
        self._loop = self._loop or asyncio.get_running_loop()
        outputs = self.transactions.receive(msg, peer, self.now(), reliable=peer.transport != "udp")
        self._execute(outputs)

    def _execute(self, outputs: list) -> None:
        dispatch = self._DISPATCH
        for out in outputs:
            act = dispatch.get(type(out))
            if act is not None:      # TransactionTerminated and the like: nothing to do here
                act(self, out)
        self._arm_timer()

    # one method per output type, looked up by type (a dict probe, not a chain of isinstance)
    def _do_send(self, out: Send) -> None:
        self._send(out.message, out.destination)

    def _do_request(self, out: RequestReceived) -> None:
        self.on_request(ServerRequest(self, out.request, out.transaction.destination, out.transaction,
                                      out.cancels))

    def _do_ack(self, out: AckReceived) -> None:
        if self.on_ack:
            self.on_ack(out.request, out.source)

    def _do_response(self, out: ResponseReceived) -> None:
        self._resolve(out.transaction, out.response)

    def _do_timeout(self, out: TransactionTimeout) -> None:
        if out.response is not None:
            self._resolve(out.transaction, out.response)
        elif self.on_timeout:   # server side: no ACK came (Timer H or L)
            self.on_timeout(out.transaction, out.timer)

    def _do_transport_failed(self, out: TransportFailed) -> None:
        self._resolve(out.transaction, out.transaction.request.make_response(503, "Transport Failed"))

    def _do_stray(self, out: StrayResponse) -> None:
        if self.on_stray_response:
            self.on_stray_response(out.response, out.source)

    def _do_dropped(self, out: Dropped) -> None:
        self.bus.publish("sip.drop", message=out.message, reason=out.reason)
        log.debug("transaction layer dropped %s: %s", summarize(out.message), out.reason)

    _DISPATCH = {Send: _do_send, RequestReceived: _do_request, AckReceived: _do_ack,
                 ResponseReceived: _do_response, TransactionTimeout: _do_timeout,
                 TransportFailed: _do_transport_failed, StrayResponse: _do_stray, Dropped: _do_dropped}

    def _send(self, message: Request | Response, destination: Peer) -> None:
        if isinstance(message, Response):
            self.transport.send_response(message, destination)
        else:
            self.transport.send(message, destination)

    def _arm_timer(self) -> None:
        deadline = self.transactions.next_deadline()
        if deadline is not None:
            deadline = math.ceil(deadline / TIMER_TICK) * TIMER_TICK   # see TIMER_TICK
        if deadline == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._execute(self.transactions.handle_timer(self.now()))

    # ---- TU API ---------------------------------------------------------------------------
    def respond(self, incoming: ServerRequest, response: Response) -> None:
        if incoming.transaction is None:  # e.g. a request answered statelessly
            self.transport.send_response(response, incoming.peer)
            return
        self._execute(self.transactions.respond(incoming.transaction, response, self.now()))

    async def start_request(self, request: Request, peer: Peer,
                            on_provisional: Callable[[Response], None] | None = None
                            ) -> tuple[ClientTransaction, asyncio.Future]:
        """Send `request` in a client transaction; returns it and a future of the final response
        (a synthetic 408 on timeout), so the caller can CANCEL an INVITE meanwhile."""
        self._loop = self._loop or asyncio.get_running_loop()
        if peer.transport != "udp" and peer.connection is None:
            peer = await self.transport.connect(peer)
        tx, outputs = self.transactions.send_request(request, peer, self.now(), reliable=peer.transport != "udp")
        future = self._loop.create_future()
        self._pending[tx.id] = (future, on_provisional)
        future.add_done_callback(lambda _f, key=tx.id: self._pending.pop(key, None))
        self._execute(outputs)
        return tx, future

    async def request(self, request: Request, peer: Peer,
                      on_provisional: Callable[[Response], None] | None = None) -> Response:
        """Send `request` in a client transaction; return its final response (408 on timeout)."""
        _, future = await self.start_request(request, peer, on_provisional)
        return await future

    def cancel(self, transaction: ClientTransaction) -> None:
        """CANCEL a pending INVITE (sent once the INVITE has had a provisional response)."""
        self._execute(self.transactions.cancel(transaction, self.now()))

    def _resolve(self, tx: ClientTransaction, response: Response) -> None:
        entry = self._pending.get(tx.id)
        if entry is None:
            return
        future, on_provisional = entry
        if response.status < 200:
            if on_provisional:
                on_provisional(response)
        elif not future.done():
            future.set_result(response)

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        """ACK for a 2xx and other messages that live outside transactions."""
        self._send(message, peer)
