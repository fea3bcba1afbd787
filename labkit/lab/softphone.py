"""A small softphone: registers, calls, answers, sends and records RTP — for notebooks and tests.

Introduced in notebook 06. Built from the same pieces the PBX uses (`SipEndpoint`, `Dialog`,
`SdpNegotiator`, G.711 from `labkit.codecs`), so a call between two of these through the PBX
exercises the real thing over loopback: digest auth, INVITE/180/200/ACK, the B2BUA, the
media relay, BYE.

    phone = Softphone("100", "labkit100")
    await phone.start(); await phone.register(pbx_address)
    call = await phone.call(pbx_address, "101")        # returns once answered (or failed)
    await call.send_audio(pcm)                          # 20 ms PCMU packets to the PBX
    await call.hangup()
"""
from __future__ import annotations

import asyncio
import random
import struct
from dataclasses import dataclass, field

import numpy as np

from ..codecs import get_codec
from ..rtp.packet import TelephoneEvent
from ..sip.dialog import Dialog
from ..sip.endpoint import ServerRequest, new_tag
from ..sip.message import Request, Response
from ..sip.offer_answer import TELEPHONE_EVENT, SdpNegotiator
from ..sip.transport import Peer, format_host
from ..sip.uac import UserAgent, make_request


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, call: "Call"):
        self.call = call
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.call._on_rtp(data, addr)


@dataclass
class Call:
    """One call of a softphone: its dialog, its SDP negotiator and its RTP socket."""

    phone: "Softphone"
    peer: Peer
    call_id: str
    local_tag: str
    negotiator: SdpNegotiator
    rtp: _Rtp | None = None
    dialog: Dialog | None = None
    invite: Request | None = None
    incoming: ServerRequest | None = None
    status: int | None = None
    state: str = "new"
    received: list[tuple[float, bytes]] = field(default_factory=list)
    rtp_sources: set = field(default_factory=set)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    remote_hangup: bool = False
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = 0
    timestamp: int = 0
    echo: bool = False
    transaction: object = None

    @property
    def media(self):
        current = self.negotiator.current
        return current.audio if current else None

    def _on_rtp(self, data: bytes, addr) -> None:
        loop = asyncio.get_running_loop()
        self.received.append((loop.time(), data))
        self.rtp_sources.add(addr)
        if self.echo and self.rtp and self.rtp.transport:
            self.rtp.transport.sendto(data, addr)

    def received_audio(self) -> np.ndarray:
        """Decode what arrived (voice payload type only), in arrival order."""
        media = self.media
        if media is None:
            return np.zeros(0, np.int16)
        decoder = get_codec(media.codec).decoder()
        frames = []
        for _, data in self.received:
            if len(data) > 12 and data[1] & 0x7F == media.local_payload_type:
                frames.append(decoder.decode(data[12 + 4 * (data[0] & 0x0F):]))
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def _packet(self, payload: bytes, pt: int, marker: bool = False, advance: int = 0) -> bytes:
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, self.timestamp, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + advance) & 0xFFFFFFFF
        return header + payload

    def _send(self, data: bytes) -> None:
        media = self.media
        if self.rtp and self.rtp.transport and media and media.remote_port:
            self.rtp.transport.sendto(data, (media.remote_address, media.remote_port))

    async def send_audio(self, pcm: np.ndarray, rate: int = 8000) -> int:
        """Send audio as 20 ms packets on an absolute schedule; returns the packets sent."""
        media = self.media
        codec = get_codec(media.codec)
        if rate != codec.sample_rate:
            from ..dsp.resample import resample
            pcm = resample(pcm, rate, codec.sample_rate)
        encoder = codec.encoder()
        step = codec.samples_per_frame(20)
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        for i in range(0, len(pcm) - step + 1, step):
            if self.ended.is_set():
                break
            self._send(self._packet(encoder.encode(pcm[i:i + step]), media.payload_type, marker=sent == 0,
                                    advance=codec.timestamp_increment(20)))
            sent += 1
            delay = start + sent * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        return sent

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """RFC 4733 events: three packets per digit (start, continuation, end ×3 as phones do)."""
        media = self.media
        pt = media.telephone_event_pt
        if pt is None:
            raise RuntimeError("the call did not negotiate telephone-event")
        samples = duration_ms * 8
        for digit in digits:
            for n, (dur, end) in enumerate([(160, False), (samples // 2, False), (samples, True), (samples, True),
                                            (samples, True)]):
                ev = TelephoneEvent.for_digit(digit, end=end, duration=dur)
                self._send(self._packet(bytes(ev), pt, marker=n == 0))
                await asyncio.sleep(0.02)
            self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF

    async def reinvite(self, hold: bool) -> Response:
        """Put the call on hold (a=sendonly) or resume it with a re-INVITE (RFC 3264 §8.4)."""
        if hold:
            self.negotiator.hold()
        else:
            self.negotiator.resume()
        offer = bytes(self.negotiator.create_offer())
        request = self.dialog.create_request("INVITE", offer)
        response = await self.phone.endpoint.request(request, self.peer)
        self.dialog.receive_response(response)
        if 200 <= response.status < 300:
            self.phone.endpoint.send_stateless(self.dialog.create_ack(request.cseq.seq), self.peer)
            self.negotiator.receive_answer(response.body)
        else:
            self.negotiator.cancel_offer()
        return response

    async def hangup(self) -> Response | None:
        """BYE an answered call, CANCEL one still ringing."""
        if self.ended.is_set():
            return None
        if self.state == "up" and self.dialog is not None:
            bye = self.dialog.create_request("BYE")
            self.state = "ending"
            response = await self.phone.endpoint.request(bye, self.peer)
            self._end()
            return response
        if self.state == "calling" and self.transaction is not None:
            self.phone.endpoint.cancel(self.transaction)
            return None
        if self.incoming is not None and self.state == "ringing":
            self.incoming.reply(486, "Busy Here", to_tag=self.local_tag)
            self._end()
        return None

    def _end(self) -> None:
        self.state = "ended"
        if self.rtp and self.rtp.transport:
            self.rtp.transport.close()
        self.ended.set()
        self.phone.calls.pop(self.call_id, None)


class Softphone(UserAgent):
    """A UserAgent that makes and takes calls. `answer` says what to do with incoming calls:
    'answer' (ring `ring_seconds`, then 200), 'busy' (486), 'ring' (180 until cancelled)."""

    def __init__(self, user: str, password: str | None = None, *, answer: str = "answer",
                 ring_seconds: float = 0.05, echo: bool = False, codecs=("pcmu", "pcma"), **kw):
        super().__init__(user, password, **kw)
        self.answer_mode = answer
        self.ring_seconds = ring_seconds
        self.echo = echo
        self.codecs = tuple(codecs) + (TELEPHONE_EVENT,)
        self.calls: dict[str, Call] = {}
        self.incoming_calls: asyncio.Queue[Call] = asyncio.Queue()
        self.endpoint.on_ack = self._on_ack

    async def _open_rtp(self, call: Call) -> None:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(lambda: _Rtp(call), local_addr=(self.bind, 0))
        call.rtp = proto
        call.negotiator.set_local(port=transport.get_extra_info("sockname")[1])

    def _new_call(self, peer: Peer, call_id: str, tag: str) -> Call:
        negotiator = SdpNegotiator(self.bind, 9, self.codecs)
        call = Call(self, peer, call_id, tag, negotiator, echo=self.echo)
        self.calls[call_id] = call
        return call

    # ---- outgoing -------------------------------------------------------------------------
    async def call(self, server: tuple[str, int], target: str, timeout: float = 10.0) -> Call:
        """INVITE `target` at the PBX; returns the Call once answered or failed (see .status)."""
        from ..sip.uac import new_call_id
        peer = Peer(self.transport, server[0], server[1])
        call = self._new_call(peer, new_call_id(self.bind), new_tag())
        await self._open_rtp(call)
        offer = bytes(call.negotiator.create_offer())
        self.cseq += 1
        host = format_host(server[0])
        request = make_request("INVITE", f"sip:{target}@{host}:{server[1]}", local=self.address,
                               transport=self.transport, from_uri=self.aor, to_uri=f"sip:{target}@{host}",
                               from_tag=call.local_tag, call_id=call.call_id, cseq=self.cseq,
                               contact=self.contact, body=offer)
        call.state = "calling"
        response = await self._invite(call, request)
        if response.status in (401, 407) and self.credentials is not None:
            header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            value = self.credentials.answer(response.headers.lines(header), "INVITE", str(request.uri), request.body)
            from ..sip.uac import rebranch
            self.cseq += 1
            request.set("CSeq", f"{self.cseq} INVITE")
            request.set("Authorization" if response.status == 401 else "Proxy-Authorization", value)
            rebranch(request)
            response = await self._invite(call, request)
        call.status = response.status
        if 200 <= response.status < 300:
            call.dialog = Dialog.from_uac(request, response)
            self.endpoint.send_stateless(call.dialog.create_ack(request.cseq.seq), peer)
            call.negotiator.receive_answer(response.body)
            call.state = "up"
            call.answered.set()
        else:
            call._end()
        return call

    async def _invite(self, call: Call, request: Request) -> Response:
        call.invite = request
        call.transaction, future = await self.endpoint.start_request(request, call.peer, lambda r: None)
        response = await future
        call.transaction = None
        return response

    # ---- incoming -------------------------------------------------------------------------
    def on_request(self, incoming: ServerRequest) -> None:
        request = incoming.request
        call = self.calls.get(request.call_id)
        if incoming.method == "INVITE" and call is None:
            asyncio.ensure_future(self._on_invite(incoming))
        elif incoming.method == "BYE" and call is not None:
            incoming.reply(200, "OK")
            call.remote_hangup = True
            call._end()
        elif incoming.method == "CANCEL":
            self.endpoint._execute(self.endpoint.transactions.answer_cancel(
                incoming.transaction, incoming.cancels, self.endpoint.now(),
                to_tag=call.local_tag if call else None))
            if call is not None:
                call.remote_hangup = True
                call._end()
        elif incoming.method == "INVITE" and call is not None:   # re-INVITE: answer from our negotiator
            refusal = call.dialog.receive_request(request) if call.dialog else None
            if refusal is not None:
                incoming.send(refusal)
                return
            negotiation = call.negotiator.answer(request.body)
            response = incoming.response(200, to_tag=call.local_tag)
            response.add("Contact", self.contact)
            response.set("Content-Type", "application/sdp")
            response.body = bytes(negotiation.sdp)
            call.dialog.response_sent(response)
            incoming.send(response)
        else:
            super().on_request(incoming)

    async def _on_invite(self, incoming: ServerRequest) -> None:
        request = incoming.request
        call = self._new_call(incoming.peer, request.call_id, new_tag())
        call.incoming = incoming
        call.state = "ringing"
        await self.incoming_calls.put(call)
        if self.answer_mode == "busy":
            incoming.reply(486, "Busy Here", to_tag=call.local_tag)
            call._end()
            return
        ringing = incoming.response(180, "Ringing", to_tag=call.local_tag)
        ringing.add("Contact", self.contact)
        incoming.send(ringing)
        if self.answer_mode == "ring":
            return
        await asyncio.sleep(self.ring_seconds)
        if call.ended.is_set():
            return
        await self._open_rtp(call)
        negotiation = call.negotiator.answer(request.body)
        response = incoming.response(200, "OK", to_tag=call.local_tag)
        response.add("Contact", self.contact)
        response.set("Content-Type", "application/sdp")
        response.body = bytes(negotiation.sdp)
        call.dialog = Dialog.from_uas(request, response)
        incoming.send(response)
        call.state = "up"
        call.answered.set()

    def _on_ack(self, request: Request, peer: Peer) -> None:
        pass
