"""Media for call legs: SDP for each leg, the RTP relay between them, and the PBX's own voice.

Introduced in notebook 06. Every inbound call gets one `MediaRelay` (two RTP/RTCP port pairs
of the PBX): leg `a` faces the caller, leg `b` faces whichever phone `Dial()` reaches. Before a
bridge the PBX itself talks on leg `a` — prompts (`Playback`), tones, the echo test, DTMF
collection (RFC 4733 events) — and when the callee answers, configuring leg `b` with the
callee's SDP starts the relay in both directions (pass-through when the codecs match,
transcoding when they differ). Hold is a direction on the leg.
"""
from __future__ import annotations

import asyncio
import logging
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..codecs import get_codec
from ..rtp.packet import RtpError, TelephoneEvent
from ..sip import offer_answer as oa
from .media.ports import PortAllocator, PortsExhausted
from .media.relay import MediaRelay

log = logging.getLogger("labkit.media")

#: What the PBX offers and accepts, in order of preference (transcoding covers the rest).
CODECS = ("pcmu", "pcma", "g722", "opus")
FRAME_MS = 20
#: our direction in the negotiation → what the relay calls the phone's direction
PHONE_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


@dataclass
class LegMedia:
    """A channel's view of its relay: which leg is its phone, and what was negotiated."""

    relay: MediaRelay
    leg: str                      # 'a' (caller side) or 'b' (callee side)
    owner: bool                   # the inbound channel owns (and closes) the relay
    session: oa.SdpNegotiator | None = None
    negotiated: oa.NegotiatedMedia | None = None
    sdp: bytes = b""              # our last SDP to this phone
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = field(default_factory=lambda: random.getrandbits(16))
    timestamp: int = field(default_factory=lambda: random.getrandbits(32))
    digits: asyncio.Queue = field(default_factory=asyncio.Queue)
    _last_event: tuple[int, int] | None = None   # (timestamp, event) of the last DTMF seen

    @property
    def rtp(self):
        return self.relay.a if self.leg == "a" else self.relay.b


class MediaError(Exception):
    """An offer we cannot answer (488 Not Acceptable Here), or no RTP port left (503)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CallMedia:
    """The PBX's media manager: ports, relays, prompts, echo, tones, DTMF."""

    def __init__(self, config, *, bus=None, sound_dirs: list[Path] = ()):
        self.config = config
        self.bus = bus
        self.ports = PortAllocator.from_config(config)
        self.sound_dirs = list(sound_dirs)
        self._prompts: dict[tuple[str, int], np.ndarray] = {}

    # ---- set-up and tear-down -----------------------------------------------------------
    async def setup_inbound(self, chan, offer: bytes) -> None:
        """Open the call's relay and answer the caller's offer on leg a."""
        try:
            relay = await MediaRelay(self.ports, events=self.bus, name=chan.name).open()
        except PortsExhausted:
            raise MediaError(503, "No RTP ports left") from None
        media = LegMedia(relay, "a", owner=True)
        chan.media = media
        host, port = relay.a.local
        media.session = oa.SdpNegotiator(host, port, CODECS + (oa.TELEPHONE_EVENT,))
        if offer:
            try:
                negotiation = media.session.answer(offer)
            except oa.OfferAnswerError as exc:
                await self.release(chan)
                raise MediaError(exc.status, f"Not Acceptable Here: {exc}"[:120]) from None
            media.sdp = bytes(negotiation.sdp)
            self._apply(media, negotiation.audio)
        else:   # no offer in the INVITE: we offer in the 200 OK, the ACK answers (RFC 3264 §4)
            media.sdp = bytes(media.session.create_offer())
        relay.add_tap("a", lambda data, m=media: self._on_caller_packet(m, data))

    def setup_outbound(self, chan, like) -> bytes:
        """An SDP offer for a Dial() fork, from the caller relay's leg b."""
        caller_media: LegMedia = like.media
        relay = caller_media.relay
        host, port = relay.b.local
        preferred = caller_media.negotiated.codec if caller_media.negotiated else None
        order = ((preferred,) + tuple(c for c in CODECS if c != preferred)) if preferred else CODECS
        media = LegMedia(relay, "b", owner=False,
                         session=oa.SdpNegotiator(host, port, order + (oa.TELEPHONE_EVENT,)))
        chan.media = media
        media.sdp = bytes(media.session.create_offer())
        return media.sdp

    def local_sdp(self, chan) -> bytes:
        return chan.media.sdp if chan.media else b""

    def update_remote(self, chan, body: bytes) -> None:
        """A peer's SDP arrived: the answer to our offer, or a new offer (re-INVITE, hold)."""
        media: LegMedia = chan.media
        if media is None or not body:
            return
        try:
            if media.session.pending_offer is None:     # a new offer (re-INVITE: hold, resume, move)
                negotiation = media.session.answer(body)
                media.sdp = bytes(negotiation.sdp)
            else:                                        # the answer to our offer
                negotiation = media.session.receive_answer(body)
        except oa.OfferAnswerError as exc:
            raise MediaError(exc.status, f"Not Acceptable Here: {exc}"[:120]) from None
        negotiated = negotiation.audio
        if negotiated is None:
            raise MediaError(488, "Not Acceptable Here: no audio stream accepted")
        self._apply(media, negotiated)
        if media.leg == "b":
            media.relay.b_holder = chan.name   # forks share leg b: remember whose answer it holds

    def _apply(self, media: LegMedia, n: "oa.NegotiatedMedia") -> None:
        media.negotiated = n
        media.rtp.configure(remote=(n.remote_address, n.remote_port), codec=n.codec,
                            payload_type=n.payload_type, dtmf_payload_type=n.telephone_event_pt,
                            rtcp_remote=(n.remote_address, n.remote_rtcp_port) if n.remote_rtcp_port else None,
                            direction=PHONE_DIRECTION[n.direction])

    def bridge(self, a, b) -> None:
        """Nothing to do: leg b was configured by the callee's answer, so the relay runs."""
        log.info("bridged %s <-> %s (%s)", a.name, b.name, a.media.relay.modes)

    async def release(self, chan) -> None:
        media: LegMedia = chan.media
        chan.media = None
        if media is None:
            return
        if media.owner:
            if log.isEnabledFor(logging.INFO):       # the counters are only gathered to be logged
                stats = media.relay.stats()
                log.info("%s: media %s caller->callee %d packets, callee->caller %d packets, "
                         "dropped %d, malformed %d", chan.name, media.relay.modes, stats["a"].rx_packets,
                         stats["b"].rx_packets, stats["a"].dropped + stats["b"].dropped,
                         stats["a"].malformed + stats["b"].malformed)
            await media.relay.close()
        elif getattr(media.relay, "b_holder", None) == chan.name and media.relay.state == "open":
            media.relay.b.set_direction("inactive")

    # ---- the PBX's own voice on leg a --------------------------------------------------
    def _send(self, media: LegMedia, payload: bytes, pt: int, samples: int, marker: bool = False) -> None:
        leg = media.rtp
        if leg.transport is None or leg.remote is None:
            return
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, media.seq, media.timestamp, media.ssrc)
        leg.transport.sendto(header + payload, leg.remote)
        media.seq = (media.seq + 1) & 0xFFFF
        media.timestamp = (media.timestamp + samples) & 0xFFFFFFFF

    async def play_pcm(self, chan, pcm: np.ndarray, rate: int) -> None:
        """Send audio to the caller, 20 ms a packet on an absolute schedule (no drift)."""
        media: LegMedia = chan.media
        if media is None or media.negotiated is None:
            return
        codec = get_codec(media.negotiated.codec)
        if rate != codec.sample_rate:
            from ..dsp.resample import resample
            pcm = resample(pcm, rate, codec.sample_rate)
        encoder = codec.encoder()
        step = codec.samples_per_frame(FRAME_MS)
        ts_step = codec.timestamp_increment(FRAME_MS)
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = True
        for i, offset in enumerate(range(0, len(pcm), step)):
            if chan.hung_up or chan.bridged_with is not None:
                return
            frame = pcm[offset:offset + step]
            if len(frame) < step:
                frame = np.pad(frame, (0, step - len(frame)))
            self._send(media, encoder.encode(frame), media.negotiated.payload_type, ts_step, marker=first)
            first = False
            delay = start + (i + 1) * FRAME_MS / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    def prompt(self, name: str, rate: int) -> np.ndarray | None:
        key = (name, rate)
        if key not in self._prompts:
            import soundfile as sf
            for folder in self.sound_dirs:
                for candidate in (folder / f"{name}.wav", folder / f"{name.replace('-', '_')}.wav"):
                    if candidate.exists():
                        data, file_rate = sf.read(str(candidate), dtype="int16", always_2d=True)
                        pcm = data[:, 0]
                        if file_rate != rate:
                            from ..dsp.resample import resample
                            pcm = resample(pcm, file_rate, rate)
                        self._prompts[key] = pcm
                        break
                if key in self._prompts:
                    break
            else:
                return None
        return self._prompts[key]

    async def play_prompt(self, chan, name: str) -> None:
        media: LegMedia = chan.media
        if media is None or media.negotiated is None:
            return
        rate = get_codec(media.negotiated.codec).sample_rate
        pcm = self.prompt(name, rate)
        if pcm is None:
            log.warning("%s: prompt %r not found in %s", chan.name, name, [str(d) for d in self.sound_dirs])
            chan.variables["PLAYBACKSTATUS"] = "FAILED"
            return
        await self.play_pcm(chan, pcm, rate)

    async def play_tone(self, chan, kind: str, seconds: float) -> None:
        from ..dsp import tones
        media: LegMedia = chan.media
        if media is None or media.negotiated is None:
            return
        rate = get_codec(media.negotiated.codec).sample_rate
        make = getattr(tones, f"{kind}_tone", None)
        pcm = make(seconds, rate=rate) if make else tones.sine(480, seconds, rate=rate)
        await self.play_pcm(chan, pcm, rate)

    async def echo(self, chan, seconds: float | None) -> None:
        """Send the caller's own packets straight back (the echo test)."""
        media: LegMedia = chan.media
        if media is None:
            return
        leg = media.rtp

        def reflect(data: bytes) -> None:
            if leg.transport is not None and leg.remote is not None:
                leg.transport.sendto(data, leg.remote)

        remove = media.relay.add_tap(media.leg, reflect)
        try:
            await chan.wait(seconds if seconds is not None else 24 * 3600)
        finally:
            remove()

    # ---- DTMF ---------------------------------------------------------------------------
    def _on_caller_packet(self, media: LegMedia, data: bytes) -> None:
        n = media.negotiated
        if n is None or n.telephone_event_pt is None or len(data) < 16:
            return
        if data[1] & 0x7F != n.telephone_event_pt:
            return
        try:
            event = TelephoneEvent.parse(data[12 + 4 * (data[0] & 0x0F):])
        except (RtpError, ValueError):
            return
        timestamp = struct.unpack_from("!I", data, 4)[0]
        key = (timestamp, event.event)
        if key != media._last_event and event.digit:   # one digit per event, however many packets
            media._last_event = key
            media.digits.put_nowait(event.digit)

    def on_info(self, chan, request) -> None:
        """SIP INFO DTMF (application/dtmf-relay: `Signal=5`)."""
        media: LegMedia = chan.media
        if media is None:
            return
        ctype = (request.content_type or "").lower()
        text = request.body.decode("utf-8", "replace")
        if "dtmf-relay" in ctype:
            for line in text.splitlines():
                key, _, value = line.partition("=")
                if key.strip().lower() == "signal" and value.strip():
                    media.digits.put_nowait(value.strip()[0])
        elif ctype == "application/dtmf" and text.strip():
            media.digits.put_nowait(text.strip()[0])

    async def read_digits(self, chan, max_digits: int, timeout: float, terminator: str) -> str:
        media: LegMedia = chan.media
        if media is None:
            return ""
        digits = ""
        while not chan.hung_up and (max_digits <= 0 or len(digits) < max_digits):
            try:
                digit = await asyncio.wait_for(media.digits.get(), timeout)
            except asyncio.TimeoutError:
                break
            if terminator and digit in terminator:
                break
            digits += digit
        return digits
