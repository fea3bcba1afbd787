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
