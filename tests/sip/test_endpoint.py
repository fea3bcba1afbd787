"""The UA core's timer: transaction deadlines on a 10 ms grid share one loop timer."""
import pytest

from labkit.sip import parse
from labkit.sip.endpoint import TIMER_TICK, SipEndpoint
from labkit.sip.transaction import TimerValues


class FakeLoop:
    """Just what the endpoint's timer needs: time() and call_at(); records every timer."""

    def __init__(self):
        self.t = 0.0
        self.armed = []

    def time(self):
        return self.t

    def call_at(self, when, callback):
        handle = Handle(when, callback)
        self.armed.append(handle)
        return handle


class Handle:
    def __init__(self, when, callback):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self):
        self.cancelled = True


def options(n):
    return parse((f"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{n}\r\n"
                  f"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c{n}\r\n"
                  f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode())


def test_deadlines_within_one_tick_share_one_loop_timer_that_is_never_early():
    ep = SipEndpoint(lambda incoming: None, timers=TimerValues(t1=0.5))
    loop = ep._loop = FakeLoop()
    sent = []
    ep._send = lambda message, destination: sent.append(message)
    # three requests 1, 3 and 7 ms apart: Timer E is due at 0.501, 0.503, 0.507
    for n, at in enumerate((0.001, 0.003, 0.007)):
        loop.t = at
        _, outputs = ep.transactions.send_request(options(n), ("127.0.0.1", 5060), at)
        ep._execute(outputs)
    live = [h for h in loop.armed if not h.cancelled]
    assert len(live) == 1 and len(loop.armed) == 1          # armed once, never re-armed
    assert live[0].when == pytest.approx(0.51) and live[0].when >= 0.507
    assert TIMER_TICK == pytest.approx(0.01)
    loop.t = live[0].when
    sent.clear()
    live[0].callback()                                     # one wake-up retransmits all three
    assert sorted(m.call_id for m in sent) == ["c0", "c1", "c2"]
    nxt = [h for h in loop.armed if not h.cancelled][-1]
    assert nxt.when >= 1.507 - 1e-9                        # Timer E doubled: 1.501..1.507 -> 1.51


def test_every_response_but_100_carries_a_to_tag():
    """RFC 3261 §8.2.6.2: a UAS adds a To tag to any response but 100 when the request has
    none (a 401 challenge, a 403, an OPTIONS 200 ...); a tag given, or the request's own, stays."""
    from types import SimpleNamespace

    from labkit.sip.endpoint import ServerRequest
    from labkit.sip.transport import Peer

    def request(to):
        return parse((f"INVITE sip:101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-tag\r\n"
                      f"From: <sip:100@127.0.0.1>;tag=f1\r\nTo: {to}\r\nCall-ID: tag-1\r\nCSeq: 1 INVITE\r\n"
                      f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode())

    endpoint = SimpleNamespace(user_agent="test")
    incoming = ServerRequest(endpoint, request("<sip:101@127.0.0.1>"), Peer("udp", "127.0.0.1", 5070), None)
    challenge, forbidden = incoming.response(401), incoming.response(403)
    assert challenge.to.tag and forbidden.to.tag and challenge.to.tag != forbidden.to.tag
    assert incoming.response(100).to.tag is None
    assert incoming.response(200, to_tag="mine").to.tag == "mine"
    in_dialog = ServerRequest(endpoint, request("<sip:101@127.0.0.1>;tag=theirs"), Peer("udp", "127.0.0.1", 5070), None)
    assert in_dialog.response(481).to.tag == "theirs"
