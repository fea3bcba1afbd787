"""SIP transactions (RFC 3261 §17 + RFC 6026) driven by a fake clock: no test sleeps."""

import random

import pytest

from labkit.sip import parse
from labkit.sip.transaction import (
    MACHINES,
    AckReceived,
    Dropped,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    Send,
    State,
    StrayResponse,
    TimerValues,
    TransactionError,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
    draw,
    new_branch,
    to_dot,
)

DEST = ("127.0.0.1", 5060)
SRC = ("127.0.0.1", 5070)


def request(method="INVITE", branch="z9hG4bKbranch1", seq=1, to_tag=None, sent_by="127.0.0.1:5070",
            uri="sip:bob@lab.example", extra=""):
    to = "<sip:bob@lab.example>" + (f";tag={to_tag}" if to_tag else "")
    return parse(
        (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {sent_by};branch={branch}\r\n"
            f"Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKdownstream\r\n"
            "Max-Forwards: 70\r\n"
            "From: Alice <sip:alice@lab.example>;tag=fromtag1\r\n"
            f"To: {to}\r\n"
            "Call-ID: call-1@lab.example\r\n"
            f"CSeq: {seq} {method}\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )


def sends(outputs):
    return [o.message for o in outputs if isinstance(o, Send)]


def of(kind, outputs):
    return [o for o in outputs if isinstance(o, kind)]


def run_timers(tx, until=1000.0):
    """Step the fake clock from deadline to deadline; returns [(time, outputs)]."""
    log = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        log.append((deadline, tx.handle_timer(deadline)))
    return log


def send_times(log):
    return [t for t, out in log for _ in sends(out)]


# -- INVITE client ---------------------------------------------------------------------------


def test_invite_client_udp_retransmits_with_doubling_then_timer_b_408():
    tx = InviteClientTransaction(request(), DEST, now=0.0)
    assert [m.method for m in sends(tx.start(0.0))] == ["INVITE"]
    log = run_timers(tx)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    last_time, last = log[-1]
    assert last_time == 32.0
    (timeout,) = of(TransactionTimeout, last)
    assert timeout.timer == "B" and timeout.response.status == 408
    assert of(TransactionTerminated, last) and tx.state is State.TERMINATED


def test_invite_client_custom_t1_scales_every_timer():
    tx = InviteClientTransaction(request(), DEST, timers=TimerValues(t1=0.1), now=10.0)
    tx.start(10.0)
    log = run_timers(tx)
    assert send_times(log) == pytest.approx([10.1, 10.3, 10.7, 11.5, 13.1, 16.3])
    assert log[-1][0] == pytest.approx(16.4)


def test_invite_client_tcp_never_retransmits():
    tx = InviteClientTransaction(request(), DEST, reliable=True, now=0.0)
    tx.start(0.0)
    log = run_timers(tx)
    assert send_times(log) == [] and [t for t, _ in log] == [32.0]
    assert of(TransactionTimeout, log[0][1])[0].timer == "B"


def test_invite_client_provisional_stops_retransmissions_and_timer_b():
    inv = request()
    tx = InviteClientTransaction(inv, DEST, now=0.0)
    tx.start(0.0)
    run_timers(tx, until=0.5)
    out = tx.receive_response(inv.make_response(180, to_tag="t9"), 0.7)
    assert of(ResponseReceived, out)[0].response.status == 180
    assert tx.state is State.PROCEEDING and tx.next_deadline() == pytest.approx(180.7)  # only Timer C


def test_invite_client_acks_non_2xx_per_17_1_1_3():
    inv = request(extra="Route: <sip:p1.lab.example;lr>, <sip:p2.lab.example;lr>\r\n")
    tx = InviteClientTransaction(inv, DEST, now=0.0)
    tx.start(0.0)
    busy = inv.make_response(486, to_tag="callee9")
    out = tx.receive_response(busy, 1.0)
    (ack,) = sends(out)
    assert ack.method == "ACK" and str(ack.uri) == str(inv.uri)
    assert len(ack.via) == 1 and ack.via[0].branch == "z9hG4bKbranch1"
    assert ack.to.tag == "callee9" and ack.from_.tag == "fromtag1" and ack.call_id == inv.call_id
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert ack.get_all("Route") == ["<sip:p1.lab.example;lr>", "<sip:p2.lab.example;lr>"]
    assert of(ResponseReceived, out)[0].response is busy
    assert tx.state is State.COMPLETED
    # a retransmitted 486 is answered with the same ACK and not passed to the TU again
    again = tx.receive_response(busy, 2.0)
    assert sends(again) == [ack] and not of(ResponseReceived, again)
    log = run_timers(tx)
    assert [t for t, _ in log] == [33.0] and tx.terminated  # Timer D = 32 s


def test_invite_client_timer_d_is_zero_over_tcp():
    inv = request()
    tx = InviteClientTransaction(inv, DEST, reliable=True, now=0.0)
    tx.start(0.0)
    out = tx.receive_response(inv.make_response(603, to_tag="x"), 1.0)
    assert [m.method for m in sends(out)] == ["ACK"]
    assert tx.terminated and len(of(TransactionTerminated, out)) == 1


def test_invite_client_2xx_goes_to_accepted_and_retransmissions_reach_tu():
    inv = request()
    tx = InviteClientTransaction(inv, DEST, now=0.0)
    tx.start(0.0)
    ok = inv.make_response(200, to_tag="b")
    out = tx.receive_response(ok, 1.0)
    assert sends(out) == [] and tx.state is State.ACCEPTED  # the TU ACKs a 2xx, not the transaction
    assert of(ResponseReceived, tx.receive_response(ok, 2.0))
    log = run_timers(tx)
    assert [t for t, _ in log] == [33.0] and tx.terminated  # Timer M = 64*T1


def test_layer_timer_c_cancels_a_call_that_rings_too_long_then_gives_up():
    layer = TransactionLayer(TimerValues(timer_c=180.0))
    inv = request()
    tx, _ = layer.send_request(inv, DEST, 0.0)
    layer.receive(inv.make_response(180, to_tag="b"), DEST, 0.1)
    layer.receive(inv.make_response(180, to_tag="b"), DEST, 60.0)  # every 1xx restarts Timer C
    assert layer.next_deadline() == 240.0
    out = layer.handle_timer(240.0)
    assert of(TransactionTimeout, out)[0].timer == "C" and of(TransactionTimeout, out)[0].response is None
    (cancel,) = sends(out)
    assert cancel.method == "CANCEL" and tx.state is State.PROCEEDING
    # nobody answers the CANCEL or the INVITE: 64*T1 later the INVITE transaction ends with a 408
    log = []
    while (d := layer.next_deadline()) is not None:
        log += [(d, o) for o in layer.handle_timer(d)]
    ends = [(d, o.timer, o.response.status) for d, o in log if isinstance(o, TransactionTimeout)]
    assert sorted(ends) == [(272.0, "CANCEL", 408), (272.0, "F", 408)]  # the CANCEL transaction too
    assert tx.terminated and len(layer) == 0


def test_invite_client_final_after_cancel_stops_the_guard():
    layer = TransactionLayer()
    inv = request()
    tx, _ = layer.send_request(inv, DEST, 0.0)
    layer.receive(inv.make_response(180, to_tag="b"), DEST, 0.1)
    layer.cancel(tx, 1.0)
    out = layer.receive(inv.make_response(487, to_tag="b"), DEST, 1.2)
    assert [m.method for m in sends(out)] == ["ACK"] and tx.state is State.COMPLETED
    assert tx.next_deadline() == pytest.approx(33.2)  # Timer D only


# -- non-INVITE client -----------------------------------------------------------------------


def test_non_invite_client_timer_e_doubles_and_caps_at_t2():
    tx = NonInviteClientTransaction(request("REGISTER"), DEST, now=0.0)
    assert [m.method for m in sends(tx.start(0.0))] == ["REGISTER"]
    log = run_timers(tx)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (timeout,) = of(TransactionTimeout, log[-1][1])
    assert log[-1][0] == 32.0 and timeout.timer == "F" and timeout.response.status == 408


def test_non_invite_client_after_provisional_retransmits_every_t2():
    reg = request("REGISTER")
    tx = NonInviteClientTransaction(reg, DEST, now=0.0)
    tx.start(0.0)
    run_timers(tx, until=1.5)  # sends at 0.5, 1.5; next E due at 3.5
    tx.receive_response(reg.make_response(100), 2.0)
    log = run_timers(tx, until=20.0)
    assert send_times(log) == [3.5, 7.5, 11.5, 15.5, 19.5]


def test_non_invite_client_timer_k_is_t4_and_absorbs_retransmissions():
    reg = request("OPTIONS")
    tx = NonInviteClientTransaction(reg, DEST, timers=TimerValues(t4=2.5), now=0.0)
    tx.start(0.0)
    ok = reg.make_response(200)
    assert of(ResponseReceived, tx.receive_response(ok, 0.2))
    assert tx.receive_response(ok, 0.3) == []
    log = run_timers(tx)
    assert [t for t, _ in log] == pytest.approx([2.7]) and tx.terminated


def test_non_invite_client_tcp_completes_at_once():
    reg = request("OPTIONS")
    tx = NonInviteClientTransaction(reg, DEST, reliable=True, now=0.0)
    tx.start(0.0)
    assert tx.next_deadline() == 32.0  # Timer F still guards a silent server
    out = tx.receive_response(reg.make_response(200), 0.1)
    assert of(ResponseReceived, out) and tx.terminated and len(of(TransactionTerminated, out)) == 1


def test_client_transport_error_terminates():
    tx = NonInviteClientTransaction(request("OPTIONS"), DEST, now=0.0)
    tx.start(0.0)
    out = tx.transport_error(0.1, "ICMP port unreachable")
    assert of(TransportFailed, out)[0].reason == "ICMP port unreachable" and tx.terminated
    assert tx.transport_error(0.2) == []


# -- INVITE server ---------------------------------------------------------------------------


def test_invite_server_sends_100_trying_after_200_ms_if_tu_is_silent():
    inv = request()
    tx = InviteServerTransaction(inv, SRC, now=0.0)
    assert tx.start(0.0) == []
    log = run_timers(tx)
    assert [(t, [m.status for m in sends(out)]) for t, out in log] == [(0.2, [100])]
    assert sends(tx.receive_request(inv, 0.6))[0].status == 100  # retransmitted INVITE: resend 1xx


def test_invite_server_no_trying_when_tu_answers_quickly_and_immediate_when_configured():
    inv = request()
    tx = InviteServerTransaction(inv, SRC, now=0.0)
    tx.start(0.0)
    tx.send_response(inv.make_response(180, to_tag="t"), 0.05)
    assert [m.status for t, out in run_timers(tx) for m in sends(out)] == []
    now_tx = InviteServerTransaction(inv, SRC, timers=TimerValues(trying_delay=0), now=0.0)
    assert [m.status for m in sends(now_tx.start(0.0))] == [100]


def test_invite_server_timer_g_capped_at_t2_then_timer_h():
    inv = request()
    tx = InviteServerTransaction(inv, SRC, now=0.0)
    tx.start(0.0)
    out = tx.send_response(inv.make_response(486, to_tag="t"), 0.0)
    assert [m.status for m in sends(out)] == [486]
    log = run_timers(tx)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1][0] == 32.0 and of(TransactionTimeout, log[-1][1])[0].timer == "H" and tx.terminated


def test_invite_server_ack_confirms_then_timer_i_and_absorbs():
    inv = request()
    tx = InviteServerTransaction(inv, SRC, now=0.0)
    tx.start(0.0)
    tx.send_response(inv.make_response(486, to_tag="t"), 0.0)
    assert sends(tx.receive_request(inv, 0.3))[0].status == 486  # retransmitted INVITE
    ack = request("ACK", to_tag="t")
    assert tx.receive_request(ack, 0.4) == [] and tx.state is State.CONFIRMED
    assert tx.receive_request(ack, 0.5) == []  # absorbed
    log = run_timers(tx)
    assert send_times(log) == [] and [t for t, _ in log] == pytest.approx([5.4]) and tx.terminated  # Timer I = T4


def test_invite_server_over_tcp_no_g_and_i_zero():
    inv = request()
    tx = InviteServerTransaction(inv, SRC, reliable=True, now=0.0)
    tx.start(0.0)
    tx.send_response(inv.make_response(486, to_tag="t"), 0.1)
    assert tx.next_deadline() == pytest.approx(32.1)  # only Timer H
    out = tx.receive_request(request("ACK", to_tag="t"), 0.2)
    assert tx.terminated and len(of(TransactionTerminated, out)) == 1


def test_invite_server_2xx_accepted_absorbs_invites_and_passes_ack():
    inv = request()
    tx = InviteServerTransaction(inv, SRC, now=0.0, retransmit_2xx=False)
    tx.start(0.0)
    ok = inv.make_response(200, to_tag="t")
    tx.send_response(ok, 0.1)
    assert tx.state is State.ACCEPTED
    assert tx.receive_request(inv, 0.6) == []  # the TU retransmits its 2xx itself
    assert sends(tx.send_response(ok, 0.6)) == [ok]
    assert of(AckReceived, tx.receive_request(request("ACK", to_tag="t"), 0.7))
    with pytest.raises(TransactionError, match="cannot send 486 in Accepted state"):
        tx.send_response(inv.make_response(486), 0.8)
    log = run_timers(tx)
    assert [t for t, _ in log] == pytest.approx([32.1]) and tx.terminated  # Timer L


def test_invite_server_retransmits_2xx_until_ack_matched_by_dialog():
    layer = TransactionLayer()
    inv = request()
    (new,) = of(RequestReceived, layer.receive(inv, SRC, 0.0))
    ok = inv.make_response(200, to_tag="callee")
    assert sends(layer.respond(new.transaction, ok, 0.0)) == [ok]
    times = []
    for _ in range(5):  # 2xx resent at T1, 2·T1, … capped at T2
        d = layer.next_deadline()
        times += [d for _ in sends(layer.handle_timer(d))]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5]
    # the ACK for a 2xx has a new branch; the layer matches it by Call-ID, CSeq, tags
    ack = request("ACK", branch="z9hG4bKack2xx", to_tag="callee")
    (got,) = layer.receive(ack, ("127.0.0.1", 5999), 12.0)
    assert isinstance(got, AckReceived) and got.transaction is new.transaction and got.source == ("127.0.0.1", 5999)
    log = []
    while (d := layer.next_deadline()) is not None:
        log += [(d, o) for o in layer.handle_timer(d)]
    assert not sends([o for _, o in log]) and not of(TransactionTimeout, [o for _, o in log])
    assert [d for d, _ in log] == [32.0] and len(layer) == 0 and not layer.awaiting_ack


def test_invite_server_2xx_never_acked_tells_tu_to_hang_up():
    layer = TransactionLayer()
    inv = request()
    (new,) = of(RequestReceived, layer.receive(inv, SRC, 0.0))
    layer.respond(new.transaction, inv.make_response(200, to_tag="callee"), 0.0)
    log = []
    while (d := layer.next_deadline()) is not None:
        log += [(d, o) for o in layer.handle_timer(d)]
    assert [d for d, o in log if isinstance(o, Send)] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(d, o.timer) for d, o in log if isinstance(o, TransactionTimeout)] == [(32.0, "L")]
    # an ACK for another dialog (other To tag) is not taken for ours
    layer2 = TransactionLayer()
    (new2,) = of(RequestReceived, layer2.receive(inv, SRC, 0.0))
    layer2.respond(new2.transaction, inv.make_response(200, to_tag="callee"), 0.0)
    (other,) = layer2.receive(request("ACK", branch="z9hG4bKx", to_tag="someone-else"), SRC, 0.1)
    assert isinstance(other, AckReceived) and other.transaction is None and not new2.transaction.acked


# -- non-INVITE server -----------------------------------------------------------------------


def test_non_invite_server_absorbs_then_resends_final_and_timer_j():
    reg = request("REGISTER")
    tx = NonInviteServerTransaction(reg, SRC, now=0.0)
    assert tx.receive_request(reg, 0.5) == []  # Trying: absorbed
    tx.send_response(reg.make_response(100), 0.6)
    assert sends(tx.receive_request(reg, 0.7))[0].status == 100
    tx.send_response(reg.make_response(200, to_tag="t"), 0.8)
    assert sends(tx.receive_request(reg, 1.0))[0].status == 200
    with pytest.raises(TransactionError, match="cannot send 200 in Completed state"):
        tx.send_response(reg.make_response(200), 1.1)
    log = run_timers(tx)
    assert [t for t, _ in log] == pytest.approx([32.8]) and tx.terminated


def test_non_invite_server_timer_j_zero_over_tcp():
    reg = request("REGISTER")
    tx = NonInviteServerTransaction(reg, SRC, reliable=True, now=0.0)
    out = tx.send_response(reg.make_response(200), 0.1)
    assert tx.terminated and len(of(TransactionTerminated, out)) == 1


# -- the layer: matching ---------------------------------------------------------------------


def test_layer_matches_responses_by_branch_and_cseq_method():
    layer = TransactionLayer()
    inv = request()
    tx, out = layer.send_request(inv, DEST, 0.0)
    assert sends(out) == [inv] and layer.next_deadline() == 0.5
    cancel_response = parse(bytes(inv.make_response(200)).replace(b"1 INVITE", b"1 CANCEL"))
    assert of(StrayResponse, layer.receive(cancel_response, DEST, 0.1))  # same branch, other method
    out = layer.receive(inv.make_response(180, to_tag="b"), DEST, 0.2)
    assert of(ResponseReceived, out)[0].transaction is tx
    other = request(branch="z9hG4bKother")
    assert of(StrayResponse, layer.receive(other.make_response(200), DEST, 0.3))


def test_layer_server_matching_retransmission_sent_by_and_ack():
    layer = TransactionLayer()
    inv = request()
    out = layer.receive(inv, SRC, 0.0)
    (new,) = of(RequestReceived, out)
    assert isinstance(new.transaction, InviteServerTransaction) and len(layer) == 1
    assert layer.receive(inv, SRC, 0.1) == []  # retransmission absorbed, no new transaction
    # same branch from another sent-by is a different transaction (§17.2.3)
    assert of(RequestReceived, layer.receive(request(sent_by="127.0.0.1:5080"), SRC, 0.1))
    layer.respond(new.transaction, inv.make_response(486, to_tag="t"), 0.2)
    assert layer.receive(request("ACK", to_tag="t"), SRC, 0.3) == []  # ACK for non-2xx: absorbed
    assert new.transaction.state is State.CONFIRMED
    ack2xx = layer.receive(request("ACK", branch="z9hG4bKnew", to_tag="t"), SRC, 0.4)
    assert isinstance(ack2xx[0], AckReceived) and ack2xx[0].transaction is None


def test_layer_rfc2543_fallback_matching():
    layer = TransactionLayer()
    old = request(branch="1")  # no magic cookie
    (new,) = of(RequestReceived, layer.receive(old, SRC, 0.0))
    assert layer.receive(request(branch="1"), SRC, 0.1) == []  # retransmission matched
    layer.respond(new.transaction, old.make_response(404, to_tag="ours"), 0.2)
    assert layer.receive(request("ACK", branch="1", to_tag="theirs"), SRC, 0.3)[0].transaction is None
    assert layer.receive(request("ACK", branch="1", to_tag="ours"), SRC, 0.3) == []
    assert new.transaction.state is State.CONFIRMED
    # a different Call-ID is another transaction
    other = parse(bytes(request(branch="1")).replace(b"call-1@", b"call-2@"))
    assert of(RequestReceived, layer.receive(other, SRC, 0.4))


def test_layer_cancel_server_side():
    layer = TransactionLayer()
    inv = request()
    (invite_event,) = of(RequestReceived, layer.receive(inv, SRC, 0.0))
    layer.respond(invite_event.transaction, inv.make_response(180, to_tag="t"), 0.1)
    (cancel_event,) = of(RequestReceived, layer.receive(request("CANCEL"), SRC, 1.0))
    assert cancel_event.cancels is invite_event.transaction
    out = layer.answer_cancel(cancel_event.transaction, cancel_event.cancels, 1.0)
    assert [(m.status, m.cseq.method, m.to.tag) for m in sends(out)] == [(200, "CANCEL", "t"), (487, "INVITE", "t")]
    assert invite_event.transaction.cancelled
    # a CANCEL for nothing gets 481
    (stray,) = of(RequestReceived, layer.receive(request("CANCEL", branch="z9hG4bKnothing"), SRC, 2.0))
    assert stray.cancels is None
    assert [m.status for m in sends(layer.answer_cancel(stray.transaction, None, 2.0))] == [481]


def test_layer_cancel_after_final_response_gets_200_and_changes_nothing():
    layer = TransactionLayer()
    inv = request()
    (invite_event,) = of(RequestReceived, layer.receive(inv, SRC, 0.0))
    layer.respond(invite_event.transaction, inv.make_response(200, to_tag="t"), 0.1)
    (cancel_event,) = of(RequestReceived, layer.receive(request("CANCEL"), SRC, 0.2))
    out = layer.answer_cancel(cancel_event.transaction, cancel_event.cancels, 0.2)
    assert [(m.status, m.cseq.method) for m in sends(out)] == [(200, "CANCEL")]
    assert invite_event.transaction.state is State.ACCEPTED and not invite_event.transaction.cancelled


def test_layer_cancel_waits_for_provisional():
    layer = TransactionLayer()
    inv = request()
    tx, _ = layer.send_request(inv, DEST, 0.0)
    assert layer.cancel(tx, 0.1) == []  # Calling: not yet
    out = layer.receive(inv.make_response(100), DEST, 0.3)
    (cancel,) = [m for m in sends(out) if m.method == "CANCEL"]
    assert cancel.via[0].branch == inv.via[0].branch and cancel.cseq.seq == 1 and cancel.to.tag is None
    assert isinstance(tx.cancel_transaction, NonInviteClientTransaction)
    assert layer.cancel(tx, 0.4) == []  # only once


def test_layer_timers_and_forgetting():
    layer = TransactionLayer()
    inv = request()
    layer.send_request(inv, DEST, 0.0)
    times = []
    while (d := layer.next_deadline()) is not None:
        times += [d for _ in sends(layer.handle_timer(d))]
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5] and len(layer) == 0
    with pytest.raises(TransactionError, match="ACK is not sent in a transaction"):
        layer.send_request(request("ACK"), DEST, 0.0)
    layer.send_request(inv, DEST, 0.0)
    with pytest.raises(TransactionError, match="already exists"):
        layer.send_request(inv, DEST, 0.0)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", "no Via header"),
        (
            b"OPTIONS sip:a SIP/2.0\r\nVia: garbage\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            "cannot match transaction: Via header: bad Via 'garbage'",
        ),
        (  # RFC 2543 matching needs the From tag
            b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=1\r\nFrom: <<<\r\nCall-ID: x\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            "cannot match transaction: From header:",
        ),
    ],
)
def test_layer_drops_what_it_cannot_match(raw, reason):
    layer = TransactionLayer()
    (dropped,) = layer.receive(parse(raw), SRC, 0.0)
    assert isinstance(dropped, Dropped) and dropped.reason.startswith(reason) and len(layer) == 0


def test_layer_overload_answers_503_statelessly():
    layer = TransactionLayer(max_server_transactions=2)
    for i in range(2):
        assert of(RequestReceived, layer.receive(request("OPTIONS", branch=f"z9hG4bK{i}"), SRC, 0.0))
    assert layer.receive(request("OPTIONS", branch="z9hG4bK0"), SRC, 0.1) == []  # retransmission still matched
    out = layer.receive(request("OPTIONS", branch="z9hG4bK2"), SRC, 0.1)
    (busy,) = sends(out)
    assert busy.status == 503 and busy.get("Retry-After") == "5" and len(layer) == 2
    assert of(Dropped, out)[0].reason == "overload: too many server transactions"


def test_new_branch_is_rfc3261_and_unique():
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith("z9hG4bK") and len(b) > 16 for b in branches)


# -- in-memory pair over a lossy link --------------------------------------------------------


class LossyLink:
    """Two transaction layers joined by a fake network: each datagram is serialised, may be
    dropped (by a rule or at random) and arrives after ``delay`` seconds."""

    def __init__(self, drop=lambda n, data: False, delay=0.05):
        self.drop, self.delay = drop, delay
        self.in_flight = []  # (arrival time, to side, bytes)
        self.sent = 0
        self.wire = []  # (time, from side, first line) of everything that was put on the wire

    def put(self, now, to_side, message):
        data = bytes(message)
        self.sent += 1
        self.wire.append((now, 1 - to_side, data.split(b"\r\n", 1)[0].decode()))
        if not self.drop(self.sent, data):
            self.in_flight.append((now + self.delay, to_side, data))


def run_pair(link, client, server, tu_server, until=60.0, tu_client=None):
    """The event loop of both ends, on a fake clock: deliver, fire timers, let TUs react."""
    events = {0: [], 1: []}
    layers = {0: client, 1: server}
    now = 0.0

    def route(side, outputs):
        for o in outputs:
            if isinstance(o, Send):
                link.put(now, 1 - side, o.message)
            else:
                events[side].append((now, o))
                if side == 1:
                    route(1, tu_server(server, o, now))
                elif tu_client is not None:
                    route(0, tu_client(client, o, now))

    route(0, client.pending)
    for _ in range(10000):
        candidates = [t for t in (client.next_deadline(), server.next_deadline()) if t is not None]
        candidates += [a for a, _, _ in link.in_flight]
        if not candidates or min(candidates) > until:
            break
        now = min(candidates)
        for item in [i for i in link.in_flight if i[0] <= now]:
            link.in_flight.remove(item)
            route(item[1], layers[item[1]].receive(parse(item[2]), "peer", now))
        for side in (0, 1):
            route(side, layers[side].handle_timer(now))
    return events


def registrar_tu(layer, event, now):
    if isinstance(event, RequestReceived):
        return layer.respond(event.transaction, event.request.make_response(200, to_tag="reg"), now)
    return []


def start_client(layer, req, now=0.0):
    tx, out = layer.send_request(req, "peer", now)
    layer.pending = out
    return tx


def test_pair_register_recovers_from_lost_request_and_lost_response():
    # drop the first REGISTER and the first 200 OK: the client's Timer E retransmits, the
    # server's Completed state answers the retransmission with the stored 200.
    link = LossyLink(drop=lambda n, data: n in (1, 3))
    client, server = TransactionLayer(), TransactionLayer()
    tx = start_client(client, request("REGISTER"))
    events = run_pair(link, client, server, registrar_tu)
    got = [(t, e.response.status) for t, e in events[0] if isinstance(e, ResponseReceived)]
    assert len(got) == 1 and got[0][1] == 200
    assert [line for _, _, line in link.wire] == [
        "REGISTER sip:bob@lab.example SIP/2.0",  # lost
        "REGISTER sip:bob@lab.example SIP/2.0",  # Timer E at 0.5
        "SIP/2.0 200 OK",  # lost
        "REGISTER sip:bob@lab.example SIP/2.0",  # Timer E at 1.5
        "SIP/2.0 200 OK",  # resent by the server transaction from Completed
    ]
    assert got[0][0] == pytest.approx(1.6)
    assert len(of(RequestReceived, [e for _, e in events[1]])) == 1  # the TU saw it once
    assert tx.terminated and len(client) == 0 and len(server) == 0


def test_pair_invite_rejected_with_lost_ack_is_recovered_by_timer_g():
    def busy_tu(layer, event, now):
        if isinstance(event, RequestReceived):
            return layer.respond(event.transaction, event.request.make_response(486, to_tag="b"), now)
        return []

    drop_first_ack = {"done": False}

    def drop(n, data):
        if data.startswith(b"ACK") and not drop_first_ack["done"]:
            drop_first_ack["done"] = True
            return True
        return False

    link = LossyLink(drop=drop)
    client, server = TransactionLayer(), TransactionLayer()
    start_client(client, request())
    events = run_pair(link, client, server, busy_tu)
    statuses = [e.response.status for _, e in events[0] if isinstance(e, ResponseReceived)]
    assert statuses == [486]
    lines = [line for _, _, line in link.wire]
    assert lines.count("ACK sip:bob@lab.example SIP/2.0") == 2 and lines.count("SIP/2.0 486 Busy Here") == 2
    assert not of(TransactionTimeout, [e for _, e in events[1]])  # the server got its ACK
    assert len(client) == 0 and len(server) == 0


def test_pair_invite_200_with_lost_ack_is_recovered_by_2xx_retransmission():
    def answering_tu(layer, event, now):
        if isinstance(event, RequestReceived):
            return layer.respond(event.transaction, event.request.make_response(200, to_tag="b"), now)
        return []

    def acking_tu(layer, event, now):
        # the caller's TU ACKs every 2xx it is given (the Accepted state hands it retransmissions)
        if isinstance(event, ResponseReceived) and event.response.status == 200:
            ack = request("ACK", branch="z9hG4bKack-of-2xx", to_tag=event.response.to.tag)
            return [Send(ack, "peer")]
        return []

    dropped = []
    link = LossyLink(drop=lambda n, data: data.startswith(b"ACK") and not dropped and not dropped.append(n))
    client, server = TransactionLayer(), TransactionLayer()
    start_client(client, request())
    events = run_pair(link, client, server, answering_tu, tu_client=acking_tu)
    lines = [line for _, _, line in link.wire]
    assert lines == ["INVITE sip:bob@lab.example SIP/2.0", "SIP/2.0 200 OK", "ACK sip:bob@lab.example SIP/2.0",
                     "SIP/2.0 200 OK", "ACK sip:bob@lab.example SIP/2.0"]
    acks = [e for _, e in events[1] if isinstance(e, AckReceived)]
    assert len(acks) == 1 and acks[0].transaction is not None and acks[0].transaction.acked
    assert not of(TransactionTimeout, [e for _, e in events[1]]) and len(server) == 0


@pytest.mark.parametrize("seed", range(5))
def test_pair_random_loss_still_completes(seed):
    rng = random.Random(seed)
    link = LossyLink(drop=lambda n, data: rng.random() < 0.3, delay=0.02)
    client, server = TransactionLayer(), TransactionLayer()
    start_client(client, request("OPTIONS"))
    events = run_pair(link, client, server, registrar_tu)
    outcome = [e for _, e in events[0] if isinstance(e, (ResponseReceived, TransactionTimeout))]
    assert len(outcome) == 1  # exactly one answer for the TU, never a duplicate
    assert isinstance(outcome[0], ResponseReceived) and outcome[0].response.status == 200


# -- diagrams come from the tables -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_dot_lists_every_transition(name):
    machine = MACHINES[name]
    dot = to_dot(machine)
    assert dot.startswith("digraph")
    assert dot.count(" -> ") == len(machine.transitions) + 1  # plus the start arrow
    for state in machine.states:
        assert f'"{state.value}"' in dot


def test_draw_places_every_state():
    import matplotlib

    matplotlib.use("Agg")
    ax = draw(MACHINES["invite-server"])
    texts = {t.get_text() for t in ax.texts}
    assert {"Proceeding", "Completed", "Confirmed", "Accepted", "Terminated"} <= texts


def test_docs_diagrams_are_current():
    """docs/transactions.md shows the tables as they are (run scripts/draw_state_diagrams.py)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("draw_state_diagrams", root / "scripts" / "draw_state_diagrams.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.generated_section() in (root / "docs" / "transactions.md").read_text(encoding="utf-8")


def test_pair_slow_link_duplicates_are_absorbed_on_both_sides():
    # one-way delay 0.7 s > T1: the client retransmits before the answer can arrive; the server
    # transaction answers the copy from Completed, the client absorbs the second 200
    link = LossyLink(delay=0.7)
    client, server = TransactionLayer(), TransactionLayer()
    start_client(client, request("OPTIONS"))
    events = run_pair(link, client, server, registrar_tu)
    assert [line for _, _, line in link.wire] == [
        "OPTIONS sip:bob@lab.example SIP/2.0",
        "OPTIONS sip:bob@lab.example SIP/2.0",  # Timer E at 0.5
        "SIP/2.0 200 OK",  # at 0.7
        "SIP/2.0 200 OK",  # at 1.2, for the copy
    ]
    assert len([e for _, e in events[0] if isinstance(e, ResponseReceived)]) == 1
    assert len([e for _, e in events[1] if isinstance(e, RequestReceived)]) == 1


def test_history_is_bounded_and_timer_values_validated():
    reg = request("REGISTER")
    tx = NonInviteServerTransaction(reg, SRC, now=0.0)
    for i in range(1000):
        tx.receive_request(reg, i * 0.001)
    assert len(tx.history) == 64 and tx.history[-1][2] == "request"
    with pytest.raises(ValueError, match="need 0 < T1 <= T2"):
        TimerValues(t1=5.0, t2=4.0)


# -- any sequence of inputs keeps every machine on its table and ends in Terminated ----------

from hypothesis import given, settings, strategies as st  # noqa: E402

STATUSES = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 500, 603])
CLIENT_OPS = st.lists(
    st.tuples(st.sampled_from(["response", "timer", "transport error"]), STATUSES, st.floats(0, 3)),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["INVITE", "OPTIONS"]), st.booleans(), CLIENT_OPS)
def test_client_machines_never_leave_their_table(method, reliable, ops):
    req = request(method)
    cls = InviteClientTransaction if method == "INVITE" else NonInviteClientTransaction
    tx = cls(req, DEST, reliable=reliable, now=0.0)
    outputs, now = tx.start(0.0), 0.0
    for op, status, dt in ops:
        now += dt
        outputs += tx.handle_timer(now)
        if op == "response":
            outputs += tx.receive_response(req.make_response(status, to_tag="t"), now)
        elif op == "transport error":
            outputs += tx.transport_error(now)
    while (deadline := tx.next_deadline()) is not None:
        fired = tx.handle_timer(max(deadline, now))
        if any(isinstance(o, TransactionTimeout) and o.timer == "C" for o in fired):
            tx.cancel_sent(deadline)  # what the layer does: CANCEL, then wait 64*T1 at most
        outputs += fired
    assert tx.terminated
    finals = [o for o in outputs if isinstance(o, ResponseReceived) and o.response.status >= 300]
    assert len(finals) <= 1  # a non-2xx final reaches the TU once, whatever was retransmitted
    assert len(of(TransactionTerminated, outputs)) == 1


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["INVITE", "REGISTER"]),
    st.booleans(),
    st.lists(st.tuples(st.sampled_from(["request", "ack", "respond", "timer", "transport error"]), STATUSES,
                       st.floats(0, 3)), max_size=25),
)
def test_server_machines_never_leave_their_table(method, reliable, ops):
    req = request(method)
    cls = InviteServerTransaction if method == "INVITE" else NonInviteServerTransaction
    tx = cls(req, SRC, reliable=reliable, now=0.0)
    outputs, now = tx.start(0.0), 0.0
    for op, status, dt in ops:
        now += dt
        outputs += tx.handle_timer(now)
        if op == "request":
            outputs += tx.receive_request(req, now)
        elif op == "ack" and method == "INVITE":
            outputs += tx.receive_request(request("ACK", to_tag="t"), now)
        elif op == "respond":
            try:
                outputs += tx.send_response(req.make_response(status, to_tag="t"), now)
            except TransactionError:
                assert tx.state is not State.PROCEEDING and tx.state is not State.TRYING
        elif op == "transport error":
            outputs += tx.transport_error(now)
    if not any(o for o in outputs if isinstance(o, Send) and o.message.status >= 200):
        if not tx.terminated:  # the TU must answer eventually; then timers end it
            outputs += tx.send_response(req.make_response(500), now)
    while (deadline := tx.next_deadline()) is not None:
        outputs += tx.handle_timer(max(deadline, now))
    assert tx.terminated and len(of(TransactionTerminated, outputs)) == 1


def test_retransmission_times_for_notebooks():
    from labkit.sip.transaction import retransmission_times

    assert retransmission_times("INVITE") == ([0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5], 32.0, "B")
    assert retransmission_times("REGISTER", reliable=True) == ([0.0], 32.0, "F")
    sends, end, timer = retransmission_times("OPTIONS", timers=TimerValues(t1=1.0, t2=2.0))
    assert sends == [0.0, 1.0, 3.0, 5.0, 7.0] + [9.0 + 2 * i for i in range(28)] and (end, timer) == (64.0, "F")


# -- interop: real UDP on loopback against SIPp ----------------------------------------------

import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

SIPP_UAS_BUSY = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="busy callee: 180 then 486 (retransmitted until our ACK)">
  <recv request="INVITE" />
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

  ]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

  ]]></send>
  <recv request="ACK" />
</scenario>
"""

SIPP_UAC_INVITE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller: INVITE (retransmitted), expects 100 and 486, ACKs on the INVITE's branch">
  <send retrans="500"><![CDATA[
INVITE sip:bob@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:bob@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <recv response="100" />
  <recv response="486" />
  <send><![CDATA[
ACK sip:bob@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
From: <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <pause milliseconds="300" />
</scenario>
"""

needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="needs SIPp (Debian package sip-tester)")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drive(layer, sock, done, tu=lambda event, now: [], limit=10.0):
    """A minimal event loop on the real clock: datagrams in, timers, outputs out (bounded)."""
    events, started = [], time.monotonic()
    while not done(events) and time.monotonic() - started < limit:
        deadline = layer.next_deadline()
        wait = 0.05 if deadline is None else min(0.05, max(0.001, deadline - time.monotonic()))
        sock.settimeout(wait)
        try:
            data, addr = sock.recvfrom(65535)
            outputs = layer.receive(parse(data), addr, time.monotonic())
        except socket.timeout:
            outputs = []
        outputs += layer.handle_timer(time.monotonic())
        outputs += tu(None, time.monotonic())
        while outputs:
            o = outputs.pop(0)
            if isinstance(o, Send):
                sock.sendto(bytes(o.message), o.destination)
            else:
                events.append(o)
                outputs += tu(o, time.monotonic())
    return events


@pytest.mark.sipp
@needs_sipp
def test_sipp_uas_accepts_our_ack_for_486(tmp_path):
    scenario = tmp_path / "uas_busy.xml"
    scenario.write_text(SIPP_UAS_BUSY)
    port = _free_udp_port()
    sipp = subprocess.Popen(
        ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin",
         "-timeout", "15", "-timeout_error"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            local = sock.getsockname()[1]
            invite = parse(
                (
                    f"INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={new_branch()}\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:alice@127.0.0.1:{local}>;tag=a1\r\n"
                    f"To: <sip:bob@127.0.0.1:{port}>\r\n"
                    "Call-ID: sipp-interop-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
                ).encode()
            )
            layer = TransactionLayer()
            tx, outputs = layer.send_request(invite, ("127.0.0.1", port), time.monotonic())
            for o in outputs:  # SIPp may not listen yet: Timer A retransmits until it does
                sock.sendto(bytes(o.message), o.destination)
            events = _drive(layer, sock, lambda ev: any(isinstance(e, ResponseReceived) and e.response.status == 486
                                                        for e in ev))
        statuses = [e.response.status for e in events if isinstance(e, ResponseReceived)]
        assert statuses == [180, 486] and tx.state is State.COMPLETED
        _, err = sipp.communicate(timeout=20)
        assert sipp.returncode == 0, err.decode(errors="replace")
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait()


@pytest.mark.sipp
@needs_sipp
def test_sipp_uac_retransmissions_absorbed_and_ack_matched(tmp_path):
    scenario = tmp_path / "uac_invite.xml"
    scenario.write_text(SIPP_UAC_INVITE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sipp = subprocess.Popen(
            ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(_free_udp_port()), "-m", "1",
             "-nostdin", "-timeout", "15", "-timeout_error", f"127.0.0.1:{port}"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            layer = TransactionLayer(TimerValues(trying_delay=0.7))  # 100 after SIPp's first retransmission
            pending = {}

            def slow_busy_tu(event, now):
                # answer 486 only after 0.8 s: SIPp retransmits the INVITE at 0.5 s meanwhile,
                # and our transaction's own 100 Trying (at 0.7 s) is what SIPp expects first
                if isinstance(event, RequestReceived) and event.request.method == "INVITE":
                    pending[event.transaction] = now + 0.8
                out = []
                for tx, due in list(pending.items()):
                    if now >= due:
                        del pending[tx]
                        out += layer.respond(tx, tx.request.make_response(486, to_tag="busy1"), now)
                return out

            def confirmed(events):
                txs = [e.transaction for e in events if isinstance(e, RequestReceived)]
                return bool(txs) and txs[0].state in (State.CONFIRMED, State.TERMINATED)

            events = _drive(layer, sock, confirmed, slow_busy_tu)
            new_requests = [e for e in events if isinstance(e, RequestReceived)]
            assert len(new_requests) == 1  # SIPp's INVITE retransmission did not start a second call
            assert [h[2] for h in new_requests[0].transaction.history].count("INVITE") >= 1  # it was absorbed
            assert new_requests[0].transaction.state is State.CONFIRMED  # SIPp's ACK matched by branch
            assert not [e for e in events if isinstance(e, (AckReceived, TransactionTimeout))]
            _, err = sipp.communicate(timeout=20)
            assert sipp.returncode == 0, err.decode(errors="replace")
        finally:
            if sipp.poll() is None:
                sipp.kill()
                sipp.wait()


def _parsed_messages_held(tx) -> int:
    """How many parsed messages a transaction object refers to directly."""
    from labkit.sip.message import Message
    return sum(isinstance(v, Message) for v in vars(tx).values())


def test_lingering_transactions_keep_their_messages_as_bytes_and_still_answer_retransmissions():
    """Waiting out Timer J/L/M/K/I a transaction holds bytes, not parsed messages (a full GC
    pass walks every one of them), yet resends the same final response and reads the same."""
    layer = TransactionLayer()
    bye = request("BYE", to_tag="t")
    (received,) = of(RequestReceived, layer.receive(bye, SRC, 0.0))
    tx = received.transaction
    ok = bye.make_response(200)
    layer.respond(tx, ok, 0.1)
    assert tx.state is State.COMPLETED and _parsed_messages_held(tx) == 0
    again = sends(layer.receive(request("BYE", to_tag="t"), SRC, 0.5))
    assert [bytes(m) for m in again] == [bytes(ok)]
    assert tx.request == bye and tx.method == "BYE" and repr(tx).endswith("BYE Completed>")
    layer.receive(request("BYE", to_tag="t"), SRC, 0.6)
    assert _parsed_messages_held(tx) == 0          # packed again after the retransmission

    # INVITE answered 2xx: parsed while the 2xx is resent, packed once the ACK came
    inv = request(branch="z9hG4bKinv2")
    (received,) = of(RequestReceived, layer.receive(inv, SRC, 1.0))
    itx = received.transaction
    layer.respond(itx, inv.make_response(200, to_tag="ours"), 1.1)
    assert itx.state is State.ACCEPTED and _parsed_messages_held(itx) == 2
    ack = request("ACK", branch="z9hG4bKack2", to_tag="ours")
    assert of(AckReceived, layer.receive(ack, SRC, 1.2))
    assert itx.state is State.ACCEPTED and _parsed_messages_held(itx) == 0
    assert layer.receive(inv, SRC, 1.3) == []      # retransmitted INVITE still absorbed
    assert itx.last_response.status == 200 and itx.request.cseq.seq == 1

    # client side: the ACK for a non-2xx is packed too and resent byte for byte
    out_inv = request(branch="z9hG4bKout3")
    ctx, _ = layer.send_request(out_inv, DEST, 2.0)
    busy = out_inv.make_response(486, to_tag="b")
    first_ack = sends(layer.receive(busy, DEST, 2.1))[0]
    assert ctx.state is State.COMPLETED and _parsed_messages_held(ctx) == 0
    assert [bytes(m) for m in sends(layer.receive(busy, DEST, 2.2))] == [bytes(first_ack)]
    # and every one still ends on its timer
    layer.handle_timer(100.0)
    assert len(layer) == 0
