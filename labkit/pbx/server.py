"""The PBX server: transports + the request router that later notebooks extend.

Introduced in notebook 02 as an OPTIONS responder; notebook 03 adds the registrar, 06 calls.
`PBX` has async `start()`/`stop()` and an `address`, so `labkit.lab.serve(PBX(config))` runs it
in a notebook and `python -m labkit.pbx` runs the same object on the main thread.
"""
from __future__ import annotations

import logging
from typing import Callable

from ..events import EventBus
from ..sip.message import Request, Response
from ..sip.transport import Peer, TransportLayer
from .config import Config, load

log = logging.getLogger("labkit.pbx")

ACCEPT = "application/sdp"
SUPPORTED = "path, replaces, timer"

RequestHandler = Callable[[Request, Peer], None]


class PBX:
    def __init__(self, config: Config | None = None, *, bus: EventBus | None = None):
        self.config = config or load()
        self.bus = bus or EventBus()
        self.transport = TransportLayer(self.on_message, self.bus)
        self.handlers: dict[str, RequestHandler] = {"OPTIONS": self.on_options}
        self.address: tuple[str, int] | None = None

    @property
    def allow(self) -> str:
        return ", ".join(sorted(set(self.handlers) | {"ACK"}))

    async def start(self) -> None:
        cfg = self.config
        port = cfg.port
        if "udp" in cfg.transports:
            self.address = await self.transport.listen_udp(cfg.bind, port)
            port = self.address[1]          # port 0: TCP follows the port UDP was given
        if "tcp" in cfg.transports:
            address = await self.transport.listen_tcp(cfg.bind, port)
            self.address = self.address or address
        log.info("labkit PBX listening on %s (%s)", self.address, "+".join(cfg.transports))

    async def stop(self) -> None:
        await self.transport.close()

    # ---- routing ----------------------------------------------------------------------------
    def on_message(self, msg: Request | Response, peer: Peer) -> None:
        if isinstance(msg, Response):
            return  # no client transactions yet: stray responses are absorbed
        if msg.method == "ACK":
            return
        handler = self.handlers.get(msg.method)
        if handler is None:
            self.reply(msg, peer, 501, "Not Implemented")
            return
        handler(msg, peer)

    def reply(self, request: Request, peer: Peer, status: int, reason: str | None = None,
              headers: list[tuple[str, str]] = (), body: bytes = b"", to_tag: str | None = None) -> Response:
        response = request.make_response(status, reason, to_tag=to_tag)
        for name, value in headers:
            response.add(name, value)
        if status == 405 or status == 501 or 200 <= status < 300:
            if response.get("Allow") is None:
                response.add("Allow", self.allow)
        response.add("Server", self.config.user_agent)
        if body:
            response.body = body
        self.transport.send_response(response, peer)
        return response

    def on_options(self, request: Request, peer: Peer) -> None:
        """RFC 3261 §11: say what we can do."""
        self.reply(request, peer, 200, "OK", [("Accept", ACCEPT), ("Supported", SUPPORTED)])
