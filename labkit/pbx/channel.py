"""A call leg — Asterisk's *channel* — over SIP and RTP.

Introduced in notebook 06. Every call through the PBX is two (or more) channels: the caller's
inbound leg (we are its UAS) and one outbound leg per phone we ring (we are their UAC). The
dialplan drives an inbound channel through the `labkit.dialplan.Channel` interface
(`answer`, `play`, `dial`, …); `dial` creates outbound channels, forks to every contact, keeps
the first that answers, CANCELs the rest and bridges the media of the two legs at the PBX.

Signalling state lives here; media lives in the leg's `media` object (an RTP port of the PBX:
symmetric RTP with latching, echo, playback, bridging — `labkit.pbx.media`).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from ..dialplan.channel import DialTarget
from ..sip.dialog import Dialog
from ..sip.endpoint import ServerRequest, new_tag
from ..sip.message import Request
from ..sip.transport import Peer
from . import causes

if TYPE_CHECKING:
    from .calls import CallManager

log = logging.getLogger("labkit.calls")
_ids = itertools.count(1)


class SipChannel:
    """One call leg. `direction` is 'in' (a phone called us) or 'out' (we called a phone)."""

    def __init__(self, manager: "CallManager", *, direction: str, peer_name: str, call_id: str):
        self.manager = manager
        self.direction = direction
        self.name = f"PJSIP/{peer_name}-{next(_ids):08x}"
        self.call_id = call_id
        self.variables: dict[str, str] = {}
        self.caller_id_num = ""
        self.caller_id_name = ""
        self.exten = "s"
        self.context = "default"
        self.priority = 1
        self.state = "Down"
        self.hung_up = False
        self.hangup_cause: int | None = None
        self.dialog: Dialog | None = None
        self.media = None
        self.negotiated = None
        self.bridged_with: SipChannel | None = None
        self.ended = asyncio.Event()
        self._gone: list[asyncio.Future] = []   # see gone()
        self.answered_at: float | None = None
        self.created_at = manager.clock()
        # inbound only
        self.invite: ServerRequest | None = None
        self.local_tag = new_tag()
        self.acked = False
        self._final_sent = False
        # outbound only
        self.peer: Peer | None = None
        self.invite_tx = None

    def __repr__(self) -> str:
        return f"<SipChannel {self.name} {self.state}{' hung up' if self.hung_up else ''}>"

    # ---- events -----------------------------------------------------------------------------
    def _event(self, kind: str, **data) -> None:
        self.manager.bus.publish(f"call.{kind}", channel=self.name, call_id=self.call_id, **data)

    # ---- inbound signalling (we are the UAS) --------------------------------------------------
    def _provisional(self, status: int, reason: str, with_sdp: bool = False) -> None:
        if self.hung_up or self._final_sent or self.invite is None:
            return
        response = self.invite.response(status, reason, to_tag=self.local_tag)
        response.add("Contact", self.manager.contact)
        if with_sdp and self.answer_sdp:
            response.set("Content-Type", "application/sdp")
            response.body = self.answer_sdp
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.invite.request, response, contact=self.manager.contact_address)
        self.invite.send(response)

    @property
    def answer_sdp(self) -> bytes | None:
        return self.manager.media.local_sdp(self) if self.media is not None else None

    async def ringing(self) -> None:
        self.ring()

    def ring(self) -> None:
        """180 Ringing to the caller (once ringing is known: a Dial() leg's own 180/183)."""
        if self.state == "Ring":
            self._provisional(180, "Ringing")
            self._event("ringing")

    def gone(self) -> asyncio.Future:
        """A future done when this channel has ended: one that costs no task to wait on
        (asyncio.wait on ``ended.wait()`` would need one per Dial())."""
        future = asyncio.get_running_loop().create_future()
        if self.ended.is_set():
            future.set_result(None)
        else:
            self._gone.append(future)
        return future

    async def progress(self) -> None:
        self._provisional(183, "Session Progress", with_sdp=True)

    async def answer(self) -> None:
        if self.hung_up or self.state == "Up" or self.direction != "in":
            return
        response = self.invite.response(200, "OK", to_tag=self.local_tag)
        response.add("Contact", self.manager.contact)
        response.add("Allow", self.manager.allow)
        body = self.answer_sdp
        if body:
            response.set("Content-Type", "application/sdp")
            response.body = body
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.invite.request, response, contact=self.manager.contact_address)
        else:
            self.dialog.response_sent(response)
        self._final_sent = True
        self.invite.send(response)
        self.state = "Up"
        self.answered_at = self.manager.clock()
        self._event("answered")
        # The INVITE server transaction resends this 2xx until the ACK (RFC 3261 §13.3.1.4)
        # and reports Timer L if none comes: CallManager.on_timeout then hangs up.

    def on_ack(self, request: Request) -> None:
        """The caller confirmed our 2xx (the transaction layer stopped resending it)."""
        self.acked = True

    async def hangup(self, cause: int = causes.NORMAL_CLEARING) -> None:
        if self.hung_up:
            return
        self.hung_up = True
        self.hangup_cause = cause
        was = self.state
        self.state = "Down"
        if self.direction == "in" and not self._final_sent and self.invite is not None:
            status, reason = causes.sip_for_cause(cause)
            self._final_sent = True
            try:
                self.invite.reply(status, reason, to_tag=self.local_tag)
            except Exception as exc:  # e.g. the transaction already ended (CANCEL answered it)
                log.debug("%s: final response not sent: %s", self.name, exc)
        elif self.direction == "out" and was != "Up":
            if self.invite_tx is not None:
                self.manager.endpoint.cancel(self.invite_tx)
        elif self.dialog is not None:
            asyncio.create_task(self._send_bye())
        await self._cleanup()

    async def _send_bye(self) -> None:
        try:
            bye = self.dialog.create_request("BYE")
            await self.manager.endpoint.request(bye, self._dialog_peer())
        except Exception as exc:
            log.info("%s: BYE failed: %s", self.name, exc)

    def _dialog_peer(self) -> Peer:
        if self.direction == "in":
            return self.invite.peer
        return self.peer

    async def remote_hangup(self, cause: int = causes.NORMAL_CLEARING) -> None:
        """The phone ended the call (BYE, CANCEL): no signalling back, just tear down."""
        if self.hung_up:
            return
        self.hung_up = True
        self.hangup_cause = cause
        self.state = "Down"
        await self._cleanup()

    async def _cleanup(self) -> None:
        other, self.bridged_with = self.bridged_with, None
        if self.media is not None:
            await self.manager.media.release(self)
        self._event("hangup", cause=self.hangup_cause,
                    duration=None if self.answered_at is None else self.manager.clock() - self.answered_at)
        self.ended.set()
        for future in self._gone:
            if not future.done():
                future.set_result(None)
        self._gone.clear()
        self.manager.forget(self)
        if other is not None and not other.hung_up:
            other.bridged_with = None
            await other.hangup(self.hangup_cause or causes.NORMAL_CLEARING)

    async def busy(self) -> None:
        if self.state != "Up":
            await self.hangup(causes.USER_BUSY)
        else:
            await self.manager.media.play_tone(self, "busy", 5.0)

    async def congestion(self) -> None:
        if self.state != "Up":
            await self.hangup(causes.CONGESTION)
        else:
            await self.manager.media.play_tone(self, "congestion", 5.0)

    # ---- media applications -------------------------------------------------------------------
    async def play(self, prompt: str) -> None:
        if not self.hung_up:
            await self.manager.media.play_prompt(self, prompt)

    async def echo(self, seconds: float | None = None) -> None:
        if not self.hung_up:
            await self.manager.media.echo(self, seconds)

    async def wait(self, seconds: float) -> None:
        if self.hung_up:
            return
        try:
            await asyncio.wait_for(self.ended.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def read_digits(self, max_digits: int = 0, timeout: float = 5.0, terminator: str = "#",
                          prompt: str | None = None) -> str:
        if prompt:
            await self.play(prompt)
        return await self.manager.media.read_digits(self, max_digits, timeout, terminator)

    # ---- Dial ---------------------------------------------------------------------------------
    async def dial(self, targets: list[DialTarget], timeout: float | None, options: str) -> str:
        return await self.manager.dial(self, targets, timeout, options)
