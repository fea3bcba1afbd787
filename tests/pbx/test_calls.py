"""Calls through the B2BUA over loopback: two softphones, the dialplan, the media relay."""
import asyncio

import numpy as np
import pytest

from labkit.dsp.tones import sine
from labkit.lab import serve
from labkit.lab.softphone import Softphone
from labkit.pbx.config import loads
from labkit.pbx.server import PBX

CONFIG = """
[server]
port = 0
[rtp]
port_min = 31000
port_max = 31999
[endpoints.100]
password = "pw100"
context = "internal"
callerid = "Alice <100>"
[endpoints.101]
password = "pw101"
context = "internal"
[endpoints.102]
password = "pw102"
context = "internal"
"""


@pytest.fixture
def pbx(tmp_path):
    cfg = loads(CONFIG)
    cfg.data_dir = tmp_path
    with serve(PBX(cfg)) as srv:
        yield srv
        # nothing left behind once every call has ended
        assert srv.call(lambda: srv.server.calls.media.ports.in_use) == 0
        assert srv.call(lambda: len(srv.server.calls.active)) == 0
        assert srv.call(lambda: len(srv.server.calls.tasks)) == 0     # no dialplan or leg task left


def run(pbx, scenario, timeout=20):
    async def go():
        return await asyncio.wait_for(scenario(), timeout)
    return pbx.call(go, timeout=timeout + 5)


async def phones(pbx, *specs):
    out = []
    for user, kw in specs:
        p = Softphone(user, f"pw{user}", **kw)
        await p.start()
        reg = await p.register(pbx.address, expires=300)
        assert reg.ok, reg.response
        out.append(p)
    return out


async def settle(pbx, seconds=0.3):
    """Let BYEs and relay closing finish before the fixture checks for leaks."""
    for _ in range(int(seconds / 0.05)):
        calls = pbx.server.calls
        if not calls.active and calls.media.ports.in_use == 0 and not calls.tasks:
            return
        await asyncio.sleep(0.05)


def test_call_between_two_phones_relays_audio_both_ways_and_bye_ends_both(pbx):
    async def scenario():
        alice, bob = await phones(pbx, ("100", {}), ("101", {"echo": True}))
        call = await alice.call(pbx.address, "101")
        assert call.status == 200
        incoming = await bob.incoming_calls.get()
        await incoming.answered.wait()
        tone = sine(440, 1.0, rate=8000, level_dbfs=-12)
        sent = await call.send_audio(tone)
        await asyncio.sleep(0.2)
        # Bob got Alice's audio from the PBX relay, not from Alice directly...
        assert len(incoming.received) >= sent - 2
        pbx_host, _ = pbx.address
        assert all(addr[0] == pbx_host and addr[1] != alice.address[1] for addr in incoming.rtp_sources)
        assert call.media.remote_port != incoming.rtp.transport.get_extra_info("sockname")[1]
        # ...and Bob's echo came back to Alice through the relay
        assert len(call.received) >= sent - 4
        heard = call.received_audio()
        assert np.corrcoef(heard[:4000].astype(float), tone[:4000].astype(float))[0, 1] > 0.99
        response = await call.hangup()
        assert response.status == 200
        await asyncio.wait_for(incoming.ended.wait(), 3)
        assert incoming.remote_hangup
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_callee_hangs_up_first(pbx):
    async def scenario():
        alice, bob = await phones(pbx, ("100", {}), ("101", {}))
        call = await alice.call(pbx.address, "101")
        incoming = await bob.incoming_calls.get()
        await incoming.answered.wait()
        await asyncio.sleep(0.1)
        assert (await incoming.hangup()).status == 200
        await asyncio.wait_for(call.ended.wait(), 3)
        assert call.remote_hangup
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_busy_callee_gives_486_to_the_caller(pbx):
    async def scenario():
        alice, bob = await phones(pbx, ("100", {}), ("101", {"answer": "busy"}))
        call = await alice.call(pbx.address, "101")
        assert call.status == 486
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_cancel_before_answer_gives_487_and_stops_the_ringing(pbx):
    async def scenario():
        alice, bob = await phones(pbx, ("100", {}), ("101", {"answer": "ring"}))
        task = asyncio.ensure_future(alice.call(pbx.address, "101"))
        incoming = await bob.incoming_calls.get()
        await asyncio.sleep(0.2)
        [call] = list(alice.calls.values())
        await call.hangup()          # CANCEL
        await task
        assert call.status == 487
        await asyncio.wait_for(incoming.ended.wait(), 3)   # the PBX cancelled Bob's leg too
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_echo_test_600(pbx):
    async def scenario():
        [alice] = await phones(pbx, ("100", {}))
        call = await alice.call(pbx.address, "600")
        assert call.status == 200
        await asyncio.sleep(0.3)
        before = len(call.received)
        sent = await call.send_audio(sine(300, 0.6, level_dbfs=-15))
        await asyncio.sleep(0.2)
        assert len(call.received) - before >= sent - 3
        await call.hangup()
        await settle(pbx)
        await alice.stop()
    run(pbx, scenario)


def test_unregistered_callee_does_not_ring_anyone(pbx):
    async def scenario():
        [alice] = await phones(pbx, ("100", {}))
        call = await alice.call(pbx.address, "102")   # 102 exists but is not registered
        # the sample dialplan plays "unavailable" and then signals congestion
        if call.status == 200:
            await asyncio.wait_for(call.ended.wait(), 15)
            assert call.remote_hangup
        else:
            assert call.status == 503
        await settle(pbx)
        await alice.stop()
    run(pbx, scenario, timeout=30)


def test_unauthenticated_invite_never_reaches_the_dialplan(pbx):
    async def scenario():
        mallory = Softphone("100", "wrong-password")
        await mallory.start()
        call = await mallory.call(pbx.address, "600")
        assert call.status == 401
        await mallory.stop()
    run(pbx, scenario)


def test_hold_and_resume_with_reinvite_stop_and_restart_the_relay(pbx):
    async def scenario():
        alice, bob = await phones(pbx, ("100", {}), ("101", {}))
        call = await alice.call(pbx.address, "101")
        incoming = await bob.incoming_calls.get()
        await incoming.answered.wait()
        held = await call.reinvite(hold=True)
        assert held.status == 200 and b"a=recvonly" in held.body      # RFC 3264 §6.1 answer to sendonly
        before = len(call.received)
        await incoming.send_audio(sine(500, 0.3))                     # Bob talks; Alice is on hold
        await asyncio.sleep(0.15)
        assert len(call.received) == before                           # the relay did not forward it
        resumed = await call.reinvite(hold=False)
        assert resumed.status == 200 and b"a=sendrecv" in resumed.body
        sent = await incoming.send_audio(sine(500, 0.3))
        await asyncio.sleep(0.15)
        assert len(call.received) - before >= sent - 2
        await call.hangup()
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_forking_rings_every_contact_first_answer_wins_others_cancelled(pbx):
    async def scenario():
        alice, desk, mobile = await phones(pbx, ("100", {}), ("101", {"answer": "ring"}),
                                           ("101", {"ring_seconds": 0.3}))
        call = await alice.call(pbx.address, "101")
        assert call.status == 200
        ringing = await desk.incoming_calls.get()
        answered = await mobile.incoming_calls.get()
        await asyncio.wait_for(ringing.ended.wait(), 3)      # the desk phone got CANCEL
        assert ringing.remote_hangup and ringing.state == "ended"
        assert answered.state == "up"
        assert ringing.call_id != answered.call_id != call.call_id   # each leg its own Call-ID
        await call.hangup()
        await asyncio.wait_for(answered.ended.wait(), 3)
        await settle(pbx)
        for p in (alice, desk, mobile):
            await p.stop()
    run(pbx, scenario)


def test_dtmf_rfc4733_reaches_the_channel(pbx):
    async def scenario():
        [alice] = await phones(pbx, ("100", {}))
        call = await alice.call(pbx.address, "600")
        chan = next(c for c in pbx.server.calls.active if c.direction == "in")
        await call.send_dtmf("42#")
        digits = await chan.read_digits(max_digits=5, timeout=1.0, terminator="#")
        assert digits == "42"
        await call.hangup()
        await settle(pbx)
        await alice.stop()
    run(pbx, scenario)


def test_prompt_700_is_played_to_the_caller(pbx):
    async def scenario():
        [alice] = await phones(pbx, ("100", {}))
        call = await alice.call(pbx.address, "700")
        assert call.status == 200
        await asyncio.wait_for(call.ended.wait(), 10)     # the PBX hangs up after the prompt
        assert call.remote_hangup
        heard = call.received_audio()
        import soundfile as sf
        from labkit.pbx.server import SOUNDS
        prompt, rate = sf.read(str(SOUNDS / "hello-world.wav"), dtype="int16")
        # every 20 ms of the prompt arrived (rounded up to whole packets)
        assert len(heard) >= len(prompt) and len(heard) - len(prompt) < 160
        assert np.abs(heard).max() > 1000
        await settle(pbx)
        await alice.stop()
    run(pbx, scenario)


def test_transcoding_when_the_phones_share_no_codec(pbx):
    async def scenario():
        alice, bob = await phones(pbx, ("100", {"codecs": ("pcmu",)}), ("101", {"codecs": ("pcma",), "echo": True}))
        call = await alice.call(pbx.address, "101")
        incoming = await bob.incoming_calls.get()
        await incoming.answered.wait()
        assert call.media.codec == "pcmu" and incoming.media.codec == "pcma"
        tone = sine(440, 0.6, level_dbfs=-12)
        sent = await call.send_audio(tone)
        await asyncio.sleep(0.2)
        assert len(call.received) >= sent - 4          # PCMU -> PCMA -> (echo) -> PCMU
        heard = call.received_audio()
        assert np.corrcoef(heard[800:3200].astype(float), tone[800:3200].astype(float))[0, 1] > 0.95
        await call.hangup()
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_a_2xx_never_acked_is_torn_down_by_timer_l(tmp_path):
    """The caller vanishes after the INVITE: the PBX resends 200 OK, then hangs up (64*T1)."""
    import socket
    from labkit.sip import parse
    from labkit.sip.digest import DigestClient
    from labkit.sip.transaction import TimerValues
    from labkit.sip.uac import make_request, rebranch
    cfg = loads(CONFIG)
    cfg.data_dir = tmp_path
    with serve(PBX(cfg, timers=TimerValues(t1=0.05, t2=0.2))) as srv, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(3)
        sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        invite = make_request("INVITE", f"sip:600@127.0.0.1:{srv.address[1]}", local=s.getsockname(),
                              from_uri="sip:100@127.0.0.1", contact=f"<sip:100@127.0.0.1:{s.getsockname()[1]}>",
                              body=sdp)
        s.sendto(bytes(invite), srv.address)
        challenge = parse(s.recvfrom(9000)[0])
        assert challenge.status == 401
        invite.set("Authorization", DigestClient("100", "pw100").answer(
            challenge.headers.lines("WWW-Authenticate"), "INVITE", str(invite.uri), invite.body))
        invite.set("CSeq", "2 INVITE")
        rebranch(invite)
        s.sendto(bytes(invite), srv.address)
        oks = 0
        while True:      # 200 OK again and again (never ACKed) ... until the PBX gives up
            reply = parse(s.recvfrom(9000)[0])
            if getattr(reply, "status", None) == 200 and reply.cseq.method == "INVITE":
                oks += 1
            if getattr(reply, "method", None) == "BYE":
                break
        assert oks >= 3
        assert srv.call(lambda: len(srv.server.calls.active)) == 0
