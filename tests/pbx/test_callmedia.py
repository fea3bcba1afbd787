"""CallMedia's relays and taps: a finished call leaves nothing for the cyclic GC.

The PBX's media manager is driven here as the call layer drives it (setup_inbound for the
caller's INVITE, setup_outbound for a Dial() fork, update_remote for the callee's answer,
release at hang-up), with stand-in channels; RTP really flows through the relay between.
"""
from __future__ import annotations

import asyncio
import weakref
from types import SimpleNamespace

from labkit.pbx.callmedia import CallMedia, LegMedia
from labkit.pbx.media import MediaRelay, RelayLeg
from labkit.pbx.media.relay import _RtcpPort
from labkit.rtp.packet import RtpPacket, TelephoneEvent
from labkit.sip import offer_answer as oa

from .test_relay import Phone, arun, collected_as_cycles, rtp, until  # noqa: F401  (arun: fixture)


def test_a_finished_relayed_call_leaves_no_cyclic_garbage(arun):
    """The caller's DTMF tap names the call's LegMedia, which names the relay: release() must
    still leave the whole call to reference counting."""
    async def main():
        config = SimpleNamespace(rtp_bind="127.0.0.1", rtp_port_min=21500, rtp_port_max=21599)
        media = CallMedia(config)
        phone_a, phone_b = await Phone.open(), await Phone.open()
        caller_side = oa.SdpNegotiator(*phone_a.address, ("pcmu", oa.TELEPHONE_EVENT))
        callee_side = oa.SdpNegotiator(*phone_b.address, ("pcmu", oa.TELEPHONE_EVENT))
        caller = SimpleNamespace(name="caller", media=None)
        callee = SimpleNamespace(name="callee", media=None)
        await media.setup_inbound(caller, bytes(caller_side.create_offer()))
        caller_side.receive_answer(media.local_sdp(caller))
        offer = media.setup_outbound(callee, like=caller)
        media.update_remote(callee, bytes(callee_side.answer(offer).sdp))
        relay = caller.media.relay
        event = bytes(TelephoneEvent.for_digit("7", end=True, duration=480))
        phone_a.send(rtp(1, pt=101, ssrc=0xA, payload=event), relay.a.local)
        phone_b.send(rtp(1, ssrc=0xB), relay.b.local)
        assert RtpPacket.parse((await phone_b.recv())[0]).payload_type == 101
        await phone_a.recv()
        assert await asyncio.wait_for(caller.media.digits.get(), 5) == "7"    # the tap saw it
        refs = [weakref.ref(o) for o in (relay, caller.media, callee.media)]
        await media.release(callee)
        await media.release(caller)
        assert relay.state == "closed" and media.ports.in_use == 0
        phone_a.close()
        phone_b.close()
        media.ports.close()
        return refs
    kinds = (MediaRelay, RelayLeg, _RtcpPort, LegMedia)
    assert collected_as_cycles(lambda: arun(main), kinds) == []
