"""Call control: the B2BUA that turns an INVITE into channels, dialplan runs and bridges.

Introduced in notebook 06. For each new INVITE the PBX:

1. authenticates the caller (401 with digest, like REGISTER) — an unauthenticated INVITE never
   reaches the dialplan, and an authenticated one runs only in its endpoint's `context`;
2. creates the inbound channel, negotiates media (RFC 3264) on a PBX RTP port, and runs the
   dialplan from (context, Request-URI user, 1) as an asyncio task;
3. on `Dial()`, looks the callee up in the location service, sends one INVITE per contact
   (forking, each leg with its own Call-ID, From tag and SDP offer from its own RTP port),
   relays 180 Ringing back, takes the first 2xx, CANCELs the other forks, answers the caller
   and bridges the two legs' media at the PBX;
4. ends both legs when either side sends BYE (or CANCEL before the answer → 487).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Callable

from ..dialplan.channel import DialTarget
from ..dialplan.engine import run as run_dialplan
from ..sip.dialog import Dialog
from ..sip.endpoint import ServerRequest
from ..sip.headers import NameAddr
from ..sip.message import ParseError, Request, Response
from ..sip.multipart import handling, session_body, unsupported_required
from ..sip.transport import Peer, format_host
from ..sip.uac import make_request, new_call_id
from . import causes
from .callmedia import MediaError
from .channel import SipChannel

if TYPE_CHECKING:
    from .server import PBX

log = logging.getLogger("labkit.calls")


class CallManager:
    def __init__(self, pbx: "PBX", plan, media, clock: Callable[[], float] = time.time):
        self.pbx = pbx
        self.plan = plan
        self.media = media
        self.clock = clock
        self.bus = pbx.bus
        self.endpoint = pbx.endpoint
        self.timers = pbx.endpoint.transactions.timers
        self.channels: dict[tuple, SipChannel] = {}   # dialog key → channel
        self.by_call_id: dict[str, list[SipChannel]] = {}
        self.tasks: set[asyncio.Task] = set()
        self._contact: tuple | None = None   # (address, Contact text, parsed): see contact

    # ---- bookkeeping ------------------------------------------------------------------------
    @property
    def contact(self) -> str:
        """Our Contact, the same for every call: worked out once per listening address."""
        address = self.pbx.address
        cached = self._contact
        if cached is None or cached[0] != address:
            host, port = address
            text = f"<sip:labkit@{format_host(host)}:{port}>"
            cached = self._contact = (address, text, NameAddr.parse(text))
        return cached[1]

    @property
    def contact_address(self) -> NameAddr:
        """``contact`` parsed (a dialog's local Contact and Via come from it)."""
        self.contact  # noqa: B018 — refresh if the address changed
        return self._contact[2]

    @property
    def allow(self) -> str:
        return self.pbx.allow

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def remember(self, channel: SipChannel) -> None:
        self.by_call_id.setdefault(channel.call_id, []).append(channel)

    def forget(self, channel: SipChannel) -> None:
        chans = self.by_call_id.get(channel.call_id)
        if chans and channel in chans:
            chans.remove(channel)
            if not chans:
                del self.by_call_id[channel.call_id]

    def find(self, message: Request | Response, *, local_is_to: bool) -> SipChannel | None:
        """The channel a message belongs to: same Call-ID, and our tag on the right side."""
        try:
            ours = message.to.tag if local_is_to else message.from_.tag
        except (ParseError, AttributeError):
            return None
        for chan in self.by_call_id.get(message.call_id, []):
            if chan.local_tag == ours:
                return chan
        return None

    @property
    def active(self) -> list[SipChannel]:
        return [c for chans in self.by_call_id.values() for c in chans]

    async def close(self) -> None:
        for chan in list(self.active):
            await chan.hangup(causes.TEMPORARY_FAILURE)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.media.ports.aclose()      # the pooled and parked RTP ports are unbound too

    # ---- incoming requests ------------------------------------------------------------------
    def on_invite(self, incoming: ServerRequest) -> None:
        request = incoming.request
        if request.to.tag:
            chan = self.find(request, local_is_to=True)
            if chan is None:
                incoming.reply(481, "Call/Transaction Does Not Exist")
            else:
                self._spawn(self.on_reinvite(chan, incoming))
            return
        user = self.pbx.auth.challenge_or_user(incoming)
        if user is None:
            return
        endpoint = self.pbx.config.endpoints[user]
        chan = SipChannel(self, direction="in", peer_name=user, call_id=request.call_id)
        chan.invite = incoming
        chan.state = "Ring"
        chan.context = endpoint.context
        chan.exten = getattr(request.uri, "user", None) or "s"
        name, num = _split_callerid(endpoint.callerid, user)
        chan.caller_id_name, chan.caller_id_num = name, num
        chan.variables["ENDPOINT"] = user
        self.remember(chan)
        self._spawn(self._start_call(chan, incoming))

    async def _start_call(self, chan: SipChannel, incoming: ServerRequest) -> None:
        try:
            await self.media.setup_inbound(chan, _sdp_of(incoming.request, answerable=True))
        except MediaError as exc:
            chan._final_sent = True
            incoming.reply(exc.status, exc.reason, _accept_for(exc.status), to_tag=chan.local_tag)
            self.forget(chan)
            return
        chan._event("new", caller=chan.caller_id_num, exten=chan.exten, context=chan.context,
                    peer=str(incoming.peer))
        log.info("%s: new call from %s to %s in [%s]", chan.name, chan.caller_id_num, chan.exten, chan.context)
        await self._run_dialplan(chan)

    async def _run_dialplan(self, chan: SipChannel) -> None:
        try:
            result = await run_dialplan(self.plan, chan, chan.context, chan.exten,
                               on_log=lambda line: log.info("%s: %s", chan.name, line))
            if result.error:
                log.warning("%s: dialplan error: %s", chan.name, result.error)
        except Exception:
            log.exception("%s: dialplan failed", chan.name)
        finally:
            if not chan.hung_up:
                await chan.hangup(causes.NORMAL_CLEARING)

    def on_cancel(self, incoming: ServerRequest) -> None:
        invite_tx = incoming.cancels
        self.endpoint._execute(self.endpoint.transactions.answer_cancel(
            incoming.transaction, invite_tx, self.endpoint.now(),
            to_tag=None if invite_tx is None else self._tag_of(invite_tx)))
        if invite_tx is None:
            return
        for chan in list(self.by_call_id.get(incoming.request.call_id, [])):
            if chan.direction == "in" and chan.invite and chan.invite.transaction is invite_tx:
                chan._final_sent = True
                self._spawn(chan.remote_hangup(causes.ORIGINATOR_CANCEL))

    def _tag_of(self, invite_tx) -> str | None:
        for chan in self.active:
            if chan.invite and chan.invite.transaction is invite_tx:
                return chan.local_tag
        return None

    def on_ack(self, request: Request, peer: Peer) -> None:
        chan = self.find(request, local_is_to=True)
        if chan is not None:
            chan.on_ack(request)
            if request.body:
                self.media.update_remote(chan, _sdp_of(request))

    def on_timeout(self, transaction, timer: str) -> None:
        """Our 2xx (Timer L) or error response (Timer H) was never ACKed: the phone is gone."""
        for chan in self.active:
            if chan.invite is not None and chan.invite.transaction is transaction and not chan.hung_up:
                log.warning("%s: no ACK (Timer %s); hanging up", chan.name, timer)
                self._spawn(chan.hangup(causes.TEMPORARY_FAILURE))

    def on_stray_response(self, response: Response, peer: Peer) -> None:
        """A 2xx to our INVITE came again (our ACK was lost): send the same ACK again."""
        if response.status < 200 or response.status >= 300 or response.cseq.method != "INVITE":
            return
        chan = self.find(response, local_is_to=False)
        if chan is not None and chan.dialog is not None and chan.dialog.ack is not None:
            self.endpoint.send_stateless(chan.dialog.ack, chan.peer)

    def on_bye(self, incoming: ServerRequest) -> None:
        chan = self.find(incoming.request, local_is_to=True)
        if chan is None:
            incoming.reply(481, "Call/Transaction Does Not Exist")
            return
        if chan.dialog is not None:
            refusal = chan.dialog.receive_request(incoming.request)
            if refusal is not None:
                incoming.send(refusal)
                return
        incoming.reply(200, "OK")
        log.info("%s: BYE from the phone", chan.name)
        self._spawn(chan.remote_hangup(causes.NORMAL_CLEARING))

    def on_in_dialog(self, incoming: ServerRequest) -> None:
        """INFO, OPTIONS, UPDATE, … inside a call: acknowledge what we understand."""
        chan = self.find(incoming.request, local_is_to=True)
        if chan is None:
            incoming.reply(481, "Call/Transaction Does Not Exist")
            return
        if incoming.method == "INFO":
            self.media.on_info(chan, incoming.request)
        incoming.reply(200, "OK")

    async def on_reinvite(self, chan: SipChannel, incoming: ServerRequest) -> None:
        """Target refresh and hold/resume (RFC 3264 §8.4): answer from the same RTP port."""
        if chan.dialog is not None:
            refusal = chan.dialog.receive_request(incoming.request)   # CSeq order, glare (491/500)
            if refusal is not None:
                incoming.send(refusal)
                return
        try:
            self.media.update_remote(chan, _sdp_of(incoming.request, answerable=True))
        except MediaError as exc:
            response = incoming.response(exc.status, exc.reason, to_tag=chan.local_tag)
            for name, value in _accept_for(exc.status):
                response.add(name, value)
        else:
            response = incoming.response(200, "OK", to_tag=chan.local_tag)
            response.add("Contact", self.contact)
            body = self.media.local_sdp(chan)
            if body:
                response.set("Content-Type", "application/sdp")
                response.body = body
        if chan.dialog is not None:
            chan.dialog.response_sent(response)
        incoming.send(response)

    # ---- Dial: outbound legs ----------------------------------------------------------------
    async def dial(self, caller: SipChannel, targets: list[DialTarget], timeout: float | None,
                   options: str) -> str:
        contacts = []
        for target in targets:
            name = target.endpoint
            if name is None or name not in self.pbx.config.endpoints:
                log.info("%s: Dial target %s is not a local endpoint", caller.name, target)
                continue
            for binding in self.pbx.location.lookup(name):
                contacts.append((name, binding))
        if not contacts:
            return "CHANUNAVAIL"
        if caller.hung_up:
            return "CANCEL"
        legs = [self._originate(caller, name, binding) for name, binding in contacts]
        statuses: list[int] = []
        winner: SipChannel | None = None
        # future -> its leg; the future's result is only the status, so a finished leg is not a
        # reference cycle (leg -> future -> (leg, status)): refcounting frees it and its channel
        # at once instead of the cyclic GC, whose full passes stall the loop (bench_calls.py).
        leg_of = {leg.result: leg for leg in legs}
        pending = set(leg_of)
        caller_gone = caller.gone()
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        timed_out = False
        try:
            while pending and winner is None:
                remaining = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
                done, _ = await asyncio.wait(pending | {caller_gone}, timeout=remaining,
                                             return_when=asyncio.FIRST_COMPLETED)
                if caller_gone in done or caller.hung_up:
                    break
                if not done:
                    timed_out = True
                    break
                for fut in done:
                    pending.discard(fut)
                    leg, status = leg_of[fut], fut.result()
                    statuses.append(status)
                    if 200 <= status < 300 and winner is None:
                        winner = leg.channel
        finally:
            caller_gone.cancel()
        for leg in legs:
            if leg.channel is not winner:
                await leg.channel.hangup(causes.ORIGINATOR_CANCEL)
        if winner is None:
            return causes.dial_status(statuses, timed_out, caller.hung_up)
        if caller.hung_up:
            await winner.hangup(causes.NORMAL_CLEARING)
            return "CANCEL"
        await caller.answer()
        self.media.bridge(caller, winner)
        caller.bridged_with, winner.bridged_with = winner, caller
        caller._event("bridged", other=winner.name)
        caller.variables["DIALEDPEERNAME"] = winner.name
        await caller.ended.wait()
        return "ANSWER"

    def _originate(self, caller: SipChannel, name: str, binding) -> "OutboundLeg":
        leg = OutboundLeg(self, caller, name, binding)
        leg.start()
        return leg


class OutboundLeg:
    """One fork of a Dial(): an INVITE to one contact, with its own Call-ID and RTP port."""

    def __init__(self, manager: CallManager, caller: SipChannel, name: str, binding):
        self.manager = manager
        self.caller = caller
        self.binding = binding
        self.channel = SipChannel(manager, direction="out", peer_name=name, call_id=new_call_id())
        self.channel.caller_id_num, self.channel.caller_id_name = caller.caller_id_num, caller.caller_id_name
        self.channel.exten = name
        self.result: asyncio.Future = asyncio.get_running_loop().create_future()   # final SIP status

    def start(self) -> None:
        self.manager._spawn(self._run())

    def _peer(self) -> Peer:
        transport, _, rest = self.binding.source.partition(":")
        host, _, port = rest.rpartition(":")
        return Peer(transport, host.strip("[]"), int(port))

    async def _run(self) -> None:
        m, chan, caller = self.manager, self.channel, self.caller
        try:
            offer = m.media.setup_outbound(chan, like=caller)
        except MediaError as exc:
            self.result.set_result(exc.status)
            return
        host, port = m.pbx.address
        display = caller.caller_id_name or None
        headers = [("Contact", m.contact), ("Allow", m.allow)]
        headers += [("Route", p) for p in self.binding.path]
        peer = self._peer()
        request = make_request(
            "INVITE", self.binding.contact, local=(host, port), transport=peer.transport,
            from_uri=f"sip:{caller.caller_id_num or 'anonymous'}@{format_host(host)}",
            to_uri=f"sip:{chan.exten}@{format_host(host)}", from_tag=chan.local_tag,
            call_id=chan.call_id, headers=headers, body=offer, display=display,
        )
        chan.peer = peer
        chan.state = "Ringing"
        m.remember(chan)
        chan._event("new", caller=caller.caller_id_num, exten=chan.exten, direction="out", peer=str(peer))

        def provisional(response: Response) -> None:
            if response.status in (180, 183) and not caller.hung_up:
                caller.ring()

        try:
            chan.invite_tx, future = await m.endpoint.start_request(request, peer, provisional)
            response = await future
        except (OSError, ConnectionError) as exc:
            log.info("%s: cannot reach %s: %s", chan.name, peer, exc)
            await chan.remote_hangup(causes.TEMPORARY_FAILURE)
            self.result.set_result(503)
            return
        chan.invite_tx = None
        if 200 <= response.status < 300:
            chan.dialog = Dialog.from_uac(request, response)
            ack = chan.dialog.create_ack(request.cseq.seq)
            m.endpoint.send_stateless(ack, peer)
            if chan.hung_up or caller.hung_up or self.result.done():
                # answered after we gave up on it (a race with CANCEL): say goodbye properly
                chan.hung_up = False
                chan.state = "Up"
                await chan.hangup(causes.NORMAL_CLEARING)
                if not self.result.done():
                    self.result.set_result(487)
                return
            try:
                m.media.update_remote(chan, _sdp_of(response))
            except MediaError as exc:
                chan.state = "Up"
                await chan.hangup(causes.TEMPORARY_FAILURE)
                self.result.set_result(exc.status)
                return
            chan.state = "Up"
            chan.answered_at = m.clock()
            chan._event("answered")
            self.result.set_result(response.status)
        else:
            await chan.remote_hangup(causes.cause_for_sip(response.status))
            if not self.result.done():
                self.result.set_result(response.status)


def _split_callerid(callerid: str | None, fallback: str) -> tuple[str, str]:
    """'Alice <100>' → ('Alice', '100')."""
    if not callerid:
        return "", fallback
    if "<" in callerid and callerid.rstrip().endswith(">"):
        name, _, num = callerid.rpartition("<")
        return name.strip().strip('"'), num.rstrip(">").strip()
    return "", callerid.strip()


_UNDERSTOOD = frozenset(("application/sdp",))   # body types the PBX acts on
#: What the PBX accepts in a request body (OPTIONS answers and 415s say so): SDP, also inside MIME
ACCEPT = "application/sdp, multipart/mixed, multipart/alternative"


def _sdp_of(message, answerable: bool = False) -> bytes:
    """The SDP a message carries for offer/answer: its body, or the session part of a multipart
    body (SIP-I/SIP-T, RFC 5621); a malformed multipart body is a 400, like a malformed SDP.
    For a request we answer (``answerable``), a body or body part we do not understand whose
    handling is required (the default) is a 415 (RFC 3261 §8.2.3, §20.11; RFC 5621 §5); one
    marked ``handling=optional`` is ignored."""
    try:
        if answerable and message.body:
            media = message.content_type or "application/sdp"
            if media.startswith("multipart/"):
                if unsupported_required(message.parts, _UNDERSTOOD) is not None:
                    raise MediaError(415, "Unsupported Media Type")
            elif media not in _UNDERSTOOD:
                if handling(message.get("Content-Disposition")) == "required":
                    raise MediaError(415, "Unsupported Media Type")
                return b""                          # optional: as if there were no body
        return session_body(message)
    except ParseError as exc:
        raise MediaError(400, f"Bad Request: {exc}"[:120]) from None


def _accept_for(status: int) -> list[tuple[str, str]]:
    """A 415 says what the PBX does accept (RFC 3261 §21.4.16)."""
    return [("Accept", ACCEPT)] if status == 415 else []
