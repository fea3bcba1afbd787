"""Ladder diagrams from synthetic bus events and from plain tuples: exact text, arrow count."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from labkit.events import Event, EventBus, EventRecorder  # noqa: E402
from labkit.lab.ladder import Arrow, ladder_arrows, ladder_plot, ladder_text, message_label  # noqa: E402
from labkit.sip import parse  # noqa: E402
from labkit.sip.transport import Peer  # noqa: E402

REGISTER = (
    b"REGISTER sip:labkit SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1;rport\r\n"
    b"From: <sip:100@labkit>;tag=a1\r\nTo: <sip:100@labkit>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)
PHONE = Peer("udp", "127.0.0.1", 5080)
PBX = ("127.0.0.1", 5060)


def register_exchange():
    """What the PBX's bus publishes for REGISTER → 401 → REGISTER → 200, then a dropped datagram."""
    req = parse(REGISTER)
    return [
        Event("sip.in", 100.0, {"message": req, "peer": PHONE, "local": PBX}),
        Event("sip.out", 100.001, {"message": req.make_response(401, "Unauthorized"), "peer": PHONE, "local": PBX}),
        Event("sip.in", 100.010, {"message": req, "peer": PHONE, "local": PBX}),
        Event("sip.out", 100.012, {"message": req.make_response(200, "OK"), "peer": PHONE, "local": PBX}),
        Event("sip.drop", 100.5, {"peer": PHONE, "reason": "garbage", "data": b"\x00"}),
    ]


def test_events_become_arrows_in_both_directions_with_names():
    arrows = ladder_arrows(register_exchange(), names={5060: "PBX"})
    assert [(a.src, a.dst, a.label, a.dropped) for a in arrows] == [
        ("127.0.0.1:5080", "PBX", "REGISTER", False),
        ("PBX", "127.0.0.1:5080", "401 Unauthorized", False),
        ("127.0.0.1:5080", "PBX", "REGISTER", False),
        ("PBX", "127.0.0.1:5080", "200 OK", False),
        ("127.0.0.1:5080", "PBX", "dropped: garbage", True),
    ]
    assert arrows[0].transport == "udp" and arrows[1].time == pytest.approx(100.001)


def test_text_rendering_exact():
    text = ladder_text(register_exchange(), names={"127.0.0.1:5080": "alice", ("127.0.0.1", 5060): "PBX"})
    assert text == "\n".join([
        "time    alice                    PBX",
        "0.000     |------ REGISTER ------>|",
        "0.001     |<-- 401 Unauthorized --|",
        "0.010     |------ REGISTER ------>|",
        "0.012     |<------- 200 OK -------|",
        "0.500     |-- dropped: garbage --x|",
    ])


def test_text_without_times_three_parties_and_a_note():
    flow = [(0.0, "a", "b", "INVITE"), (0.1, "b", "c", "INVITE"), (0.2, "c", "b", "180 Ringing"),
            (0.3, "b", "a", "180 Ringing"), (0.4, "b", "b", "timer")]
    assert ladder_text(flow, times=False) == "\n".join([
        " a                  b                  c",
        " |----- INVITE ---->|                  |",
        " |                  |----- INVITE ---->|",
        " |                  |<-- 180 Ringing --|",
        " |<-- 180 Ringing --|                  |",
        " |                  | <- timer         |",
    ])


def test_party_order_can_be_fixed_and_labels_are_shortened():
    flow = [(0.0, "b", "a", "X" * 60)]
    text = ladder_text(flow, times=False, parties=["a", "b"], max_label=10)
    assert text.splitlines()[0] == " a                 b" and "XXXXXXX..." in text and "X" * 11 not in text


def test_recorder_from_a_bus_and_sdp_label():
    bus = EventBus(clock=lambda: 5.0)
    with EventRecorder(bus, "sip.") as rec:
        invite = parse(REGISTER.replace(b"REGISTER", b"INVITE").replace(
            b"Content-Length: 0\r\n\r\n", b"Content-Type: application/sdp\r\nContent-Length: 3\r\n\r\nv=0"))
        bus.publish("sip.in", message=invite, peer=PHONE, local=PBX)
        bus.publish("call.answered", channel="x")           # not a SIP event: ignored
        bus.publish("sip.drop", message=invite, reason="no peer")  # transaction-layer drop: no peer
    arrows = ladder_arrows(rec)
    assert arrows == [Arrow(5.0, "127.0.0.1:5080", "127.0.0.1:5060", "INVITE (SDP)", transport="udp", call_id="c1")]
    assert message_label(invite.make_response(180, "Ringing")) == "180 Ringing"


def test_figure_has_one_arrow_per_message():
    ax = ladder_plot(register_exchange(), names={5060: "PBX"})
    arrows = [p for p in ax.patches if p.get_gid() == "sip-arrow"]
    assert len(arrows) == 5
    texts = {t.get_text() for t in ax.texts}
    assert {"PBX", "127.0.0.1:5080", "401 Unauthorized", "0.500 s"} <= texts
    plt.close(ax.figure)


def test_tuples_from_a_capture_with_addresses_and_messages():
    req = parse(REGISTER)
    flow = [(10.0, ("127.0.0.1", 5080), "127.0.0.1:5060", req),
            (10.002, "127.0.0.1:5060", ("127.0.0.1", 5080), req.make_response(200, "OK")),
            (10.5, "127.0.0.1:5080", "127.0.0.1:5060", "a note")]
    arrows = ladder_arrows(flow, names={5060: "PBX"})
    assert [(a.src, a.dst, a.label, a.call_id) for a in arrows] == [
        ("127.0.0.1:5080", "PBX", "REGISTER", "c1"), ("PBX", "127.0.0.1:5080", "200 OK", "c1"),
        ("127.0.0.1:5080", "PBX", "a note", "")]
    assert ladder_text(flow, {5060: "PBX"}, times=False, call_id="c1").count("\n") == 2


def test_ipv6_parties_and_bad_entries():
    arrows = ladder_arrows([(0, "[::1]:5060", "[::1]:5080", "OPTIONS")], names={("::1", 5060): "PBX"})
    assert (arrows[0].src, arrows[0].dst) == ("PBX", "[::1]:5080")
    ev = Event("sip.in", 0.0, {"message": parse(REGISTER), "peer": Peer("udp", "::1", 5080), "local": ("::1", 5060)})
    a = ladder_arrows([ev], names={("::1", 5060): "PBX"})[0]
    assert (a.src, a.dst) == ("[::1]:5080", "PBX")
    with pytest.raises(TypeError, match="must be an Arrow, an event or a"):
        ladder_arrows([42])
    assert ladder_text([]) == "(no messages)"


def two_calls():
    """A B2BUA's two legs: Call-ID c1 from the caller, c2 towards the callee."""
    leg_a = parse(REGISTER.replace(b"REGISTER", b"INVITE"))
    leg_b = parse(REGISTER.replace(b"REGISTER", b"INVITE").replace(b"Call-ID: c1", b"Call-ID: c2"))
    callee = Peer("udp", "127.0.0.1", 5090)
    return [
        Event("sip.in", 1.0, {"message": leg_a, "peer": PHONE, "local": PBX}),
        Event("sip.out", 1.1, {"message": leg_b, "peer": callee, "local": PBX}),
        Event("sip.in", 1.2, {"message": leg_b.make_response(180, "Ringing"), "peer": callee, "local": PBX}),
        Event("sip.out", 1.3, {"message": leg_a.make_response(180, "Ringing"), "peer": PHONE, "local": PBX}),
    ]


def test_filter_by_call_id():
    names = {5080: "alice", 5060: "PBX", 5090: "bob"}
    assert [(a.src, a.dst, a.label) for a in ladder_arrows(two_calls(), names, call_id="c2")] == [
        ("PBX", "bob", "INVITE"), ("bob", "PBX", "180 Ringing")]
    assert len(ladder_arrows(two_calls(), names, call_id=["c1", "c2"])) == 4
    assert ladder_arrows(two_calls(), names, call_id="nope") == []


def test_colour_by_call_gives_one_colour_per_call_and_a_legend():
    ax = ladder_plot(two_calls(), {5080: "alice", 5060: "PBX", 5090: "bob"}, color_by="call", parties=["alice", "PBX", "bob"])
    arrows = [p for p in ax.patches if p.get_gid() == "sip-arrow"]
    colours = [matplotlib.colors.to_hex(p.get_edgecolor()) for p in arrows]
    assert len(arrows) == 4 and colours[0] == colours[3] and colours[1] == colours[2] and colours[0] != colours[1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Call-ID c1", "Call-ID c2"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="color_by must be 'kind' or 'call'"):
        ladder_plot(two_calls(), color_by="dialog")
