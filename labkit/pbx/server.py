"""The PBX server: a SIP endpoint plus the request router that later notebooks extend.

Introduced in notebook 02 as an OPTIONS responder; notebook 03 adds the registrar, 06 calls.
`PBX` has async `start()`/`stop()` and an `address`, so `labkit.lab.serve(PBX(config))` runs it
in a notebook and `python -m labkit.pbx` runs the same object on the main thread.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Callable

from ..events import EventBus
from ..sip.endpoint import ServerRequest, SipEndpoint
from ..sip.transaction import TimerValues
from .auth import Authenticator
from .callmedia import CallMedia
from .calls import ACCEPT, CallManager
from .config import Config, load, load_plan
from .location import LocationService
from .registrar import Registrar

log = logging.getLogger("labkit.pbx")

SUPPORTED = "path, outbound"
DB_NAME = "labkit.sqlite"
SOUNDS = Path(__file__).resolve().parents[2] / "data" / "audio"   # prompts made by the project

Handler = Callable[[ServerRequest], None]


class PBX:
    def __init__(self, config: Config | None = None, *, bus: EventBus | None = None,
                 wall_clock: Callable[[], float] = time.time, timers: TimerValues = TimerValues()):
        self.config = config or load()
        self.bus = bus or EventBus()
        self.wall_clock = wall_clock
        self.endpoint = SipEndpoint(self.on_request, bus=self.bus, user_agent=self.config.user_agent, timers=timers,
                                    on_ack=self.on_ack, on_stray_response=self.on_stray_response,
                                    on_timeout=self.on_timeout)
        self.calls: CallManager | None = None
        self.location: LocationService | None = None
        self.auth = Authenticator(self.config, bus=self.bus)
        self.registrar: Registrar | None = None
        self.handlers: dict[str, Handler] = {"OPTIONS": self.on_options}
        self.address: tuple[str, int] | None = None
        self._housekeeping: asyncio.Task | None = None
        self._allow: tuple[tuple, str] = ((), "")

    @property
    def transport(self):
        return self.endpoint.transport

    @property
    def allow(self) -> str:
        """The Allow header: what we handle, plus ACK (worked out again when handlers change)."""
        methods = tuple(self.handlers)
        if self._allow[0] != methods:
            self._allow = (methods, ", ".join(sorted(set(methods) | {"ACK"})))
        return self._allow[1]

    async def start(self) -> None:
        cfg = self.config
        self.location = LocationService(cfg.data_dir / DB_NAME, clock=self.wall_clock)
        self.registrar = Registrar(cfg, self.location, clock=self.wall_clock, bus=self.bus)
        self.handlers["REGISTER"] = self.on_register
        plan = cfg.plan or load_plan(cfg)
        media = CallMedia(cfg, bus=self.bus, sound_dirs=[cfg.data_dir / "sounds", SOUNDS])
        self.calls = CallManager(self, plan, media, clock=self.wall_clock)
        self.handlers.update({"INVITE": self.calls.on_invite, "BYE": self.calls.on_bye,
                              "CANCEL": self.calls.on_cancel, "INFO": self.calls.on_in_dialog,
                              "UPDATE": self.calls.on_in_dialog})
        self.address = await self.endpoint.listen(cfg.bind, cfg.port, cfg.transports)
        self._wake = asyncio.Event()
        self.bus.subscribe(lambda _event: self._wake.set(), "registrar.bound")
        self._housekeeping = asyncio.create_task(self._expire_loop())
        log.info("labkit PBX listening on %s:%s (%s), data in %s", *self.address,
                 "+".join(cfg.transports), cfg.data_dir)

    async def stop(self) -> None:
        if self._housekeeping:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        if self.calls:
            await self.calls.close()
        await self.endpoint.close()
        if self.location:
            self.location.close()

    async def _expire_loop(self) -> None:
        """Remove bindings when they expire (at the next expiry, at least every 5 s); let RTP
        port pairs parked too long go (PortAllocator.sweep)."""
        while True:
            now = self.wall_clock()
            for b in self.location.expire(now):
                log.info("registration expired: %s -> %s", b.aor, b.contact)
                self.bus.publish("registrar.expired", aor=b.aor, contact=b.contact)
            if self.calls is not None:
                self.calls.media.ports.sweep()
            nxt = self.location.next_expiry()
            delay = 5.0 if nxt is None else min(5.0, max(0.05, nxt - now + 0.01))
            self._wake.clear()
            try:  # a new, sooner binding wakes us early
                async with asyncio.timeout(delay):   # (wait_for can swallow a cancel on 3.11)
                    await self._wake.wait()
            except TimeoutError:
                pass

    # ---- routing ----------------------------------------------------------------------------
    def on_request(self, incoming: ServerRequest) -> None:
        handler = self.handlers.get(incoming.method)
        if handler is None:
            incoming.reply(501, "Not Implemented", [("Allow", self.allow)])
            return
        handler(incoming)

    def on_ack(self, request, peer) -> None:
        if self.calls:
            self.calls.on_ack(request, peer)

    def on_timeout(self, transaction, timer: str) -> None:
        if self.calls:
            self.calls.on_timeout(transaction, timer)

    def on_stray_response(self, response, peer) -> None:
        if self.calls:
            self.calls.on_stray_response(response, peer)

    def on_options(self, incoming: ServerRequest) -> None:
        """RFC 3261 §11: say what we can do."""
        incoming.reply(200, "OK", [("Allow", self.allow), ("Accept", ACCEPT), ("Supported", SUPPORTED)])

    def on_register(self, incoming: ServerRequest) -> None:
        user = self.auth.challenge_or_user(incoming, proxy=False)
        if user is None:
            return
        status, reason, headers = self.registrar.register(incoming.request, incoming.peer, user)
        incoming.reply(status, reason, headers)
