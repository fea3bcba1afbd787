"""SIP dialogs (RFC 3261 §12): creation on both sides, route sets, CSeq rules, target refresh,
forking, ACK for 2xx — with exact assertions on the messages built.  No sockets: messages go
"over the wire" as bytes through parse(), and once through the real transaction layer."""

import re

import pytest

from labkit.sip import NameAddr, ParseError, Via, parse
from labkit.sip.dialog import (
    TRANSITIONS,
    Dialog,
    DialogError,
    DialogId,
    DialogSet,
    DialogState,
    DialogTable,
    draw,
    to_mermaid,
)
from labkit.sip.digest import Credential, DigestServer, authorization_for
from labkit.sip.endpoint import new_tag
from labkit.sip.uac import make_request
from labkit.sip.transaction import (
    RequestReceived,
    ResponseReceived,
    Send,
    TimerValues,
    TransactionLayer,
)

BRANCH_RE = re.compile(r"branch=z9hG4bK[0-9a-f]{20}")


def wire(msg):
    """Send a message over the 'wire': serialise and parse again, as the peer would see it."""
    return parse(bytes(msg))


def text(msg) -> str:
    """The message as text with its random branch replaced, for exact comparisons."""
    return BRANCH_RE.sub("branch=z9hG4bK*", bytes(msg).decode())


def alice_invite(sdp=b""):
    """Alice's INVITE, built by the UAC helper (out of dialog, RFC 3261 §8.1.1)."""
    return make_request("INVITE", "sip:bob@biloxi.example.com", local=("192.0.2.10", 5060),
                        from_uri="sip:alice@atlanta.example.com", display="Alice",
                        contact="<sip:alice@192.0.2.10:5060>", call_id="call-1@192.0.2.10",
                        from_tag="alicetag", body=sdp)


def answer(invite, status, tag="bobtag", contact="<sip:bob@192.0.2.20:5062>", record_route=None):
    """The callee's response, as received by the caller (through the wire)."""
    response = invite.make_response(status, to_tag=tag)
    if contact:
        response.add("Contact", contact)
    if record_route:
        response.add("Record-Route", record_route)
    return wire(response)


INVITE_AT_BOB = (
    "INVITE sip:bob@192.0.2.20:5062 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\r\n"
    "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa\r\n"
    "Record-Route: <sip:p2.example.com;lr>\r\n"
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "Max-Forwards: 68\r\n"
    "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
    "To: <sip:bob@biloxi.example.com>\r\n"
    "Call-ID: call-1@192.0.2.10\r\n"
    "CSeq: 314 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10:5060>\r\n"
    "Content-Length: 0\r\n\r\n")


def bob_dialog(status=200, local_seq=7000, **options):
    invite = parse(INVITE_AT_BOB.encode())
    response = invite.make_response(status, to_tag="bobtag")
    response.add("Contact", "<sip:bob@192.0.2.20:5062>")
    return invite, response, Dialog.from_uas(invite, response, local_seq=local_seq, **options)


# --- caller side (UAC) ------------------------------------------------------------------------

def test_uac_early_dialog_from_180_then_confirmed_by_200():
    invite = alice_invite()
    ringing = answer(invite, 180, contact="<sip:bob@192.0.2.20:5062;early>",
                     record_route="<sip:p2.example.com;lr>, <sip:p1.example.com;lr>")
    dialog = Dialog.from_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY and dialog.early and not dialog.confirmed
    assert dialog.id == DialogId("call-1@192.0.2.10", "alicetag", "bobtag")
    assert [str(r) for r in dialog.route_set] == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.20:5062;early"
    assert dialog.local_seq == 1 and dialog.remote_seq is None
    # the 2xx recomputes route set and remote target (§13.2.2.4)
    ok = answer(invite, 200, record_route="<sip:p3.example.com;lr>, <sip:p1.example.com;lr>")
    dialog.receive_response(ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r) for r in dialog.route_set] == ["<sip:p1.example.com;lr>", "<sip:p3.example.com;lr>"]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.20:5062"
    assert dialog.history == [("init", "1xx with To tag", "early"), ("early", "2xx", "confirmed")]


def test_uac_ack_and_bye_exact_text_loose_routing():
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 200,
                                            record_route="<sip:p2.example.com;lr>, <sip:p1.example.com;lr>"))
    ack = dialog.create_ack(invite.cseq, body=b"v=0\r\n")
    assert text(ack) == (
        "ACK sip:bob@192.0.2.20:5062 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK*\r\n"
        "Route: <sip:p1.example.com;lr>\r\n"
        "Route: <sip:p2.example.com;lr>\r\n"
        "Max-Forwards: 70\r\n"
        "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
        "To: <sip:bob@biloxi.example.com>;tag=bobtag\r\n"
        "Call-ID: call-1@192.0.2.10\r\n"
        "CSeq: 1 ACK\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 5\r\n\r\n"
        "v=0\r\n")
    assert ack.via[0].branch != invite.via[0].branch          # the 2xx ACK is its own transaction
    assert dialog.ack is ack and dialog.local_seq == 1         # ACK does not use a new CSeq
    bye = dialog.create_request("BYE")
    assert text(bye) == (
        "BYE sip:bob@192.0.2.20:5062 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK*\r\n"
        "Route: <sip:p1.example.com;lr>\r\n"
        "Route: <sip:p2.example.com;lr>\r\n"
        "Max-Forwards: 70\r\n"
        "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
        "To: <sip:bob@biloxi.example.com>;tag=bobtag\r\n"
        "Call-ID: call-1@192.0.2.10\r\n"
        "CSeq: 2 BYE\r\n"
        "Content-Length: 0\r\n\r\n")
    assert str(dialog.next_hop) == "sip:p1.example.com;lr"


def test_strict_router_first_in_route_set():
    invite = alice_invite()
    # Record-Route as received by the caller: last proxy first; reversed, the strict one is first
    ok = answer(invite, 200, record_route="<sip:p2.example.com;lr>, <sip:strict.example.com;method=INVITE>")
    dialog = Dialog.from_uac(invite, ok)
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n")
    # Request-URI = first route (method parameter stripped), remote target appended as last Route
    assert str(reinvite.uri) == "sip:strict.example.com"
    assert reinvite.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:bob@192.0.2.20:5062>"]
    assert reinvite.get("Contact") == "<sip:alice@192.0.2.10:5060>"   # target refresh carries Contact
    assert reinvite.cseq.seq == 2
    assert str(dialog.next_hop) == "sip:strict.example.com;method=INVITE"


def test_strict_router_alone_and_no_route_set():
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 200, record_route="<sip:10.0.0.1:5060>"))
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:10.0.0.1:5060"
    assert bye.get_all("Route") == ["<sip:bob@192.0.2.20:5062>"]
    direct = Dialog.from_uac(invite, answer(invite, 200))
    bye = direct.create_request("BYE")
    assert str(bye.uri) == "sip:bob@192.0.2.20:5062" and bye.get_all("Route") == []
    assert str(direct.next_hop) == "sip:bob@192.0.2.20:5062"


def test_uac_dialog_errors():
    invite = alice_invite()
    with pytest.raises(DialogError, match=r"a 100 response does not create a dialog \(101-299 do\)"):
        Dialog.from_uac(invite, answer(invite, 100, tag=None))
    with pytest.raises(ParseError, match=r"a 180 without a To tag cannot create a dialog"):
        Dialog.from_uac(invite, answer(invite, 180, tag=None))
    with pytest.raises(ParseError, match=r"200 without a Contact header cannot create a dialog"):
        Dialog.from_uac(invite, answer(invite, 200, contact=None))
    with pytest.raises(DialogError, match="does not answer this request"):
        Dialog.from_uac(alice_invite(), answer(make_request(
            "INVITE", "sip:b@c", local=("192.0.2.1", 5060), from_uri="sip:a@b",
            contact="<sip:a@h>"), 200))
    options = make_request("OPTIONS", "sip:b@c", local=("192.0.2.1", 5060), from_uri="sip:a@b")
    with pytest.raises(DialogError, match="OPTIONS does not create a dialog"):
        Dialog.from_uac(options, answer(options, 200))
    # a 1xx without Contact still makes an early dialog, aimed at the To URI for now
    early = Dialog.from_uac(invite, answer(invite, 183, contact=None))
    assert str(early.remote_target) == "sip:bob@biloxi.example.com"
    with pytest.raises(DialogError, match="an early dialog has no 2xx to acknowledge yet"):
        early.create_ack(1)


def test_create_request_misuse():
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 200))
    with pytest.raises(DialogError, match=r"use create_ack\(invite_cseq\)"):
        dialog.create_request("ACK")
    with pytest.raises(DialogError, match="make_cancel_for"):
        dialog.create_request("CANCEL")
    with pytest.raises(DialogError, match="To is written by the dialog"):
        dialog.create_request("INFO", headers=[("To", "<sip:x@y>")])
    with pytest.raises(DialogError, match="invite_cseq must be the INVITE's CSeq number"):
        dialog.create_ack("1")
    assert dialog.local_seq == 1   # failed calls used no CSeq number
    info = dialog.create_request("INFO", body=b"Signal=5\r\nDuration=160\r\n",
                                 content_type="application/dtmf-relay",
                                 headers=[("Max-Forwards", "10"), ("X-Test", "1")])
    assert info.get("Max-Forwards") == "10" and info.get("X-Test") == "1"
    assert info.get("Content-Type") == "application/dtmf-relay"
    assert info.get("Contact") is None   # INFO is no target refresh


# --- callee side (UAS) ------------------------------------------------------------------------

def test_uas_dialog_state_and_first_request():
    invite, response, dialog = bob_dialog()
    assert dialog.role == "uas" and dialog.confirmed
    assert dialog.id == DialogId("call-1@192.0.2.10", "bobtag", "alicetag")
    assert [str(r) for r in dialog.route_set] == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"
    assert dialog.remote_seq == 314 and dialog.local_seq is None
    bye = dialog.create_request("BYE")
    assert text(bye) == (
        "BYE sip:alice@192.0.2.10:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.20:5062;rport;branch=z9hG4bK*\r\n"
        "Route: <sip:p2.example.com;lr>\r\n"
        "Route: <sip:p1.example.com;lr>\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:bob@biloxi.example.com>;tag=bobtag\r\n"
        "To: \"Alice\" <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
        "Call-ID: call-1@192.0.2.10\r\n"
        "CSeq: 7000 BYE\r\n"
        "Content-Length: 0\r\n\r\n")
    assert dialog.local_seq == 7000


def test_uas_local_seq_random_start_and_via_options():
    _, _, dialog = bob_dialog(local_seq=None, local_via="SIP/2.0/TCP [2001:db8::1]:5080")
    first = dialog.create_request("OPTIONS").cseq.seq
    assert 0 <= first < 2 ** 31 and dialog.create_request("OPTIONS").cseq.seq == first + 1
    assert str(dialog.create_request("BYE").via[0]).startswith("SIP/2.0/TCP [2001:db8::1]:5080;branch=")
    invite = parse(INVITE_AT_BOB.encode())
    response = invite.make_response(200, to_tag="t")
    with pytest.raises(DialogError, match=r"needs a Contact \(or pass contact=\)"):
        Dialog.from_uas(invite, response)
    dialog = Dialog.from_uas(invite, response, contact="<sip:bob@bob.example;transport=tcp>")
    assert str(dialog.create_request("BYE").via[0]).startswith("SIP/2.0/TCP bob.example;rport;branch=")
    with pytest.raises(DialogError, match=r"needs a To tag .* to_tag=\.\.\.\) \(labkit\.sip\.endpoint\.new_tag\(\)\)"):
        Dialog.from_uas(invite, invite.make_response(200), contact="<sip:bob@h>")
    no_contact = parse(INVITE_AT_BOB.replace("Contact: <sip:alice@192.0.2.10:5060>\r\n", "").encode())
    with pytest.raises(ParseError, match=r"INVITE without a Contact header cannot create a dialog"):
        Dialog.from_uas(no_contact, no_contact.make_response(200, to_tag="t"), contact="<sip:b@h>")


def test_uas_early_dialog_rules():
    invite, ringing, dialog = bob_dialog(status=180)
    assert dialog.early
    with pytest.raises(DialogError, match=r"callee must not send BYE on an early dialog \(RFC 3261 §15\)"):
        dialog.create_request("BYE")
    ok = invite.make_response(200, to_tag="bobtag")
    dialog.response_sent(ok)
    assert dialog.confirmed
    _, _, other = bob_dialog(status=183)
    other.response_sent(invite.make_response(486, to_tag="bobtag"))
    assert other.terminated
    assert other.history == [("init", "1xx with To tag", "early"),
                             ("early", "3xx-6xx to the INVITE", "terminated")]


def test_incoming_cseq_rules_500_for_lower():
    _, _, dialog = bob_dialog()
    def from_alice(method, seq, extra=""):
        return parse((
            f"{method} sip:bob@192.0.2.20:5062 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx\r\n"
            "From: <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
            "To: <sip:bob@biloxi.example.com>;tag=bobtag\r\n"
            "Call-ID: call-1@192.0.2.10\r\n"
            f"CSeq: {seq} {method}\r\n{extra}Content-Length: 0\r\n\r\n").encode())
    assert dialog.receive_request(from_alice("ACK", 314)) is None
    assert dialog.receive_request(from_alice("INFO", 315)) is None and dialog.remote_seq == 315
    refused = dialog.receive_request(from_alice("INFO", 300))
    assert refused.status == 500 and refused.reason == "CSeq Out of Order"
    assert 1 <= int(refused.get("Retry-After")) <= 10
    assert dialog.remote_seq == 315
    assert dialog.receive_request(from_alice("INFO", 315)) is None    # equal is not lower
    # a BYE (not a target refresh) does not move the remote target, and ends the dialog
    assert dialog.receive_request(from_alice("BYE", 400, "Contact: <sip:elsewhere@h>\r\n")) is None
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"
    assert dialog.terminated and dialog.remote_seq == 400
    gone = dialog.receive_request(from_alice("INFO", 401))
    assert (gone.status, gone.reason) == (481, "Dialog Does Not Exist")
    with pytest.raises(DialogError, match="no INFO can be sent"):
        dialog.create_request("INFO")


def test_target_refresh_both_directions():
    _, _, bob = bob_dialog()
    reinvite = parse((
        "INVITE sip:bob@192.0.2.20:5062 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKy\r\n"
        "From: <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
        "To: <sip:bob@biloxi.example.com>;tag=bobtag\r\n"
        "Call-ID: call-1@192.0.2.10\r\nCSeq: 315 INVITE\r\n"
        "Contact: <sip:alice@198.51.100.7:5090>\r\nContent-Length: 0\r\n\r\n").encode())
    assert bob.receive_request(reinvite) is None
    assert str(bob.remote_target) == "sip:alice@198.51.100.7:5090"
    # caller side: the 2xx to its re-INVITE moves the target
    invite = alice_invite()
    alice = Dialog.from_uac(invite, answer(invite, 200))
    update = alice.create_request("UPDATE")
    provisional = wire(update.make_response(180))
    alice.receive_response(provisional)
    assert str(alice.remote_target) == "sip:bob@192.0.2.20:5062"
    ok = update.make_response(200)
    ok.add("Contact", "<sip:bob@203.0.113.9:5062>")
    alice.receive_response(wire(ok))
    assert str(alice.remote_target) == "sip:bob@203.0.113.9:5062"
    assert alice.history[-1] == ("confirmed", "target refresh (re-INVITE, UPDATE)", "confirmed")
    # an error response leaves it alone; 481 ends the dialog (§12.2.1.2)
    info = alice.create_request("INFO")
    alice.receive_response(wire(info.make_response(415)))
    assert alice.confirmed
    alice.receive_response(wire(alice.create_request("INFO").make_response(481)))
    assert alice.terminated


def test_one_invite_transaction_at_a_time_glare():
    invite = alice_invite()
    alice = Dialog.from_uac(invite, answer(invite, 200))
    reinvite = alice.create_request("INVITE", body=b"v=0\r\n")
    assert alice.outgoing_invite == 2
    with pytest.raises(DialogError, match=r"an INVITE transaction is still in progress .*§14.1"):
        alice.create_request("INVITE")
    assert alice.local_seq == 2
    # Bob re-INVITEs at the same time: glare, 491 Request Pending (§14.2)
    from_bob = parse((
        "INVITE sip:alice@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKg\r\n"
        "From: <sip:bob@biloxi.example.com>;tag=bobtag\r\n"
        "To: \"Alice\" <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
        "Call-ID: call-1@192.0.2.10\r\nCSeq: 9 INVITE\r\nContact: <sip:bob@192.0.2.20:5062>\r\n"
        "Content-Length: 0\r\n\r\n").encode())
    glare = alice.receive_request(from_bob)
    assert (glare.status, glare.reason) == (491, "Request Pending")
    assert alice.remote_seq is None   # a refused request teaches nothing
    alice.receive_response(wire(reinvite.make_response(200)))
    assert alice.outgoing_invite is None
    assert alice.receive_request(from_bob) is None and alice.incoming_invite == 9
    # while Bob's re-INVITE is being answered, neither a new one from him nor from us
    later = parse(bytes(from_bob).replace(b"CSeq: 9 INVITE", b"CSeq: 10 INVITE"))
    busy = alice.receive_request(later)
    assert (busy.status, busy.reason) == (500, "Previous INVITE Still in Progress")
    assert 1 <= int(busy.get("Retry-After")) <= 10
    with pytest.raises(DialogError, match="still in progress"):
        alice.create_request("INVITE")
    alice.response_sent(from_bob.make_response(200))
    assert alice.incoming_invite is None and alice.create_request("INVITE").cseq.seq == 3
    # no re-INVITE on an early dialog at all
    early = Dialog.from_uac(invite, answer(invite, 180))
    assert early.outgoing_invite == 1
    with pytest.raises(DialogError, match=r"no re-INVITE on an early dialog .*UPDATE"):
        early.create_request("INVITE")
    assert early.create_request("UPDATE").cseq.seq == 2


def test_in_dialog_auth_challenge_resend_and_ack():
    server = DigestServer("pbx.example", {"alice": Credential(password="secret")}, secret=b"k" * 32,
                          algorithms=("MD5",))
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 200, record_route="<sip:p1.example.com;lr>"))
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", headers=[("Supported", "timer"),
                                                                           ("Proxy-Authorization", "old")])
    challenge = wire(reinvite.make_response(407))
    challenge.add("Proxy-Authenticate", server.challenges(now=100.0)[0])
    dialog.receive_response(challenge)
    assert dialog.outgoing_invite is None and dialog.confirmed   # a 407 does not end the dialog
    credentials = authorization_for(challenge.get("Proxy-Authenticate"), "alice", "secret", "INVITE",
                                    str(reinvite.uri), reinvite.body)
    again = dialog.resend(reinvite, headers=[("Proxy-Authorization", credentials)])
    assert again.method == "INVITE" and again.cseq.seq == reinvite.cseq.seq + 1 == 3
    assert again.via[0].branch != reinvite.via[0].branch
    assert again.body == b"v=0\r\n" and again.get("Content-Type") == "application/sdp"
    assert again.get("Supported") == "timer" and again.get("Contact") == "<sip:alice@192.0.2.10:5060>"
    assert again.headers.lines("Proxy-Authorization") == [credentials]   # the old one is gone
    assert again.get_all("Route") == ["<sip:p1.example.com;lr>"]
    check = server.verify(again.get("Proxy-Authorization"), "INVITE", 101.0, body=again.body,
                          request_uri=str(again.uri))
    assert check.ok, check.reason
    assert dialog.outgoing_invite == 3
    dialog.receive_response(wire(again.make_response(200)))
    ack = dialog.create_ack(again.cseq, credentials_from=again)
    assert ack.get("CSeq") == "3 ACK" and ack.headers.lines("Proxy-Authorization") == [credentials]
    assert ack.get("Supported") is None


def test_prack_for_reliable_provisional_responses():
    invite = alice_invite()
    def reliable(rseq, tag="bobtag"):
        response = invite.make_response(183, to_tag=tag)
        response.add("Contact", "<sip:bob@192.0.2.20:5062>")
        response.add("Require", "100rel")
        response.add("RSeq", str(rseq))
        return wire(response)
    dialog = Dialog.from_uac(invite, reliable(7001))
    prack = dialog.create_prack(reliable(7001), body=b"v=0\r\n")
    assert text(prack) == (
        "PRACK sip:bob@192.0.2.20:5062 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK*\r\n"
        "Max-Forwards: 70\r\n"
        "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
        "To: <sip:bob@biloxi.example.com>;tag=bobtag\r\n"
        "Call-ID: call-1@192.0.2.10\r\n"
        "CSeq: 2 PRACK\r\n"
        "RAck: 7001 1 INVITE\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 5\r\n\r\n"
        "v=0\r\n")
    assert dialog.create_prack(reliable(7001)) is None      # retransmission
    assert dialog.create_prack(reliable(7003)) is None      # out of order: wait for 7002
    assert dialog.create_prack(reliable(7002)).get("RAck") == "7002 1 INVITE"
    assert dialog.local_seq == 3 and dialog.remote_rseq == 7002
    unreliable = answer(invite, 180)
    with pytest.raises(DialogError, match=r"this 180 is not reliable \(no Require: 100rel and RSeq\)"):
        dialog.create_prack(unreliable)
    with pytest.raises(ParseError, match=r"bad RSeq 'x1'"):
        dialog.create_prack(parse(bytes(reliable(1)).replace(b"RSeq: 1", b"RSeq: x1")))
    with pytest.raises(DialogError, match="only a 101-199 response is PRACKed, not 200"):
        dialog.create_prack(answer(invite, 200))


def test_bye_response_ends_dialog_and_matches():
    invite = alice_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 200))
    bye = dialog.create_request("BYE")
    reply = wire(bye.make_response(200))
    assert dialog.matches(reply) and not dialog.matches(bye)   # our own request: tags mirrored
    dialog.receive_response(reply)
    assert dialog.terminated
    stranger = wire(invite.make_response(200, to_tag="someoneelse"))
    assert not dialog.matches(stranger)
    with pytest.raises(DialogError, match="does not belong to dialog"):
        dialog.receive_response(stranger)


def test_rfc2543_peer_without_from_tag():
    old = parse(INVITE_AT_BOB.replace(";tag=alicetag", "").encode())
    response = old.make_response(200, to_tag="bobtag")
    dialog = Dialog.from_uas(old, response, contact="<sip:bob@192.0.2.20:5062>")
    assert dialog.id == DialogId("call-1@192.0.2.10", "bobtag", None)
    bye = dialog.create_request("BYE")
    assert bye.get("To") == '"Alice" <sip:alice@atlanta.example.com>'
    table = DialogTable()
    table.add(dialog)
    ack = parse(INVITE_AT_BOB.replace(";tag=alicetag", "").replace("INVITE", "ACK")
                .replace("<sip:bob@biloxi.example.com>", "<sip:bob@biloxi.example.com>;tag=bobtag").encode())
    assert table.find(ack) is dialog


# --- forking and lookups ----------------------------------------------------------------------

def test_forked_invite_two_early_dialogs_one_answers():
    table = DialogTable()
    invite = alice_invite()
    dialogs = DialogSet(invite, table=table)
    assert dialogs.receive_response(answer(invite, 100, tag=None)) is None
    first = dialogs.receive_response(answer(invite, 180, tag="phone1", contact="<sip:bob@192.0.2.31>"))
    second = dialogs.receive_response(answer(invite, 180, tag="phone2", contact="<sip:bob@192.0.2.32>"))
    again = dialogs.receive_response(answer(invite, 183, tag="phone1", contact="<sip:bob@192.0.2.31>"))
    assert again is first and first is not second and len(dialogs) == 2 and len(table) == 2
    assert [d.remote_tag for d in dialogs.early] == ["phone1", "phone2"]
    # a request from phone 2 (e.g. PRACK's peer or an UPDATE) finds phone 2's dialog
    from_phone2 = parse((
        "UPDATE sip:alice@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.32;branch=z9hG4bKu\r\n"
        "From: <sip:bob@biloxi.example.com>;tag=phone2\r\nTo: <sip:alice@atlanta.example.com>;tag=alicetag\r\n"
        "Call-ID: call-1@192.0.2.10\r\nCSeq: 1 UPDATE\r\nContent-Length: 0\r\n\r\n").encode())
    assert table.find(from_phone2) is second
    winner = dialogs.receive_response(answer(invite, 200, tag="phone2", contact="<sip:bob@192.0.2.32>"))
    assert winner is second and second.confirmed and first.early
    assert dialogs.final_status == 200
    assert dialogs.transaction_finished() == [first]
    assert first.terminated and first.history[-1] == ("early", "INVITE ended without 2xx", "terminated")
    assert table.prune() == [first] and list(table) == [second]


def test_forked_invite_two_2xx_and_final_error():
    invite = alice_invite()
    dialogs = DialogSet(invite)
    a = dialogs.receive_response(answer(invite, 200, tag="p1", contact="<sip:bob@192.0.2.31>"))
    b = dialogs.receive_response(answer(invite, 200, tag="p2", contact="<sip:bob@192.0.2.32>"))
    assert [d.remote_tag for d in dialogs.confirmed] == ["p1", "p2"]
    # both must be ACKed (then the second one BYEd): each ACK goes to its own phone
    assert str(a.create_ack(1).uri) == "sip:bob@192.0.2.31" and str(b.create_ack(1).uri) == "sip:bob@192.0.2.32"
    invite2 = alice_invite()
    lost = DialogSet(invite2)
    ringing = lost.receive_response(answer(invite2, 180, tag="p1"))
    assert lost.receive_response(answer(invite2, 486, tag="p9")) is None
    assert ringing.terminated and lost.final_status == 486
    with pytest.raises(DialogError, match=r"does not answer this INVITE"):
        lost.receive_response(wire(a.create_request("BYE").make_response(200)))


def test_dialog_table_lookup_both_directions():
    table = DialogTable()
    _, _, bob = bob_dialog()
    table.add(bob)
    assert bob in table and table.get(bob.id) is bob
    with pytest.raises(DialogError, match="already in the table"):
        table.add(bob_dialog()[2])
    bye = bob.create_request("BYE")
    assert table.find(wire(bye.make_response(200))) is bob   # response to our request
    assert table.find(parse(INVITE_AT_BOB.encode())) is None  # no To tag: not in a dialog
    table.remove(bob)
    assert len(table) == 0


# --- a whole call, both ends, through the real transaction layer -------------------------------

def test_call_between_two_dialogs_through_transaction_layers():
    alice_layer, bob_layer = TransactionLayer(TimerValues()), TransactionLayer(TimerValues())
    alice_table, bob_table = DialogTable(), DialogTable()
    now = 0.0
    invite = alice_invite()
    dialogs = DialogSet(invite, table=alice_table)
    _, out = alice_layer.send_request(invite, "bob", now)
    (sent,) = [o.message for o in out if isinstance(o, Send)]
    (incoming,) = [o for o in bob_layer.receive(wire(sent), "alice", now) if isinstance(o, RequestReceived)]
    ok = incoming.request.make_response(200, to_tag=new_tag())
    ok.add("Contact", "<sip:bob@192.0.2.20:5062>")
    bob = bob_table.add(Dialog.from_uas(incoming.request, ok, local_seq=1))
    out = bob_layer.respond(incoming.transaction, ok, now)
    (sent,) = [o.message for o in out if isinstance(o, Send)]
    (got,) = [o for o in alice_layer.receive(wire(sent), "bob", now) if isinstance(o, ResponseReceived)]
    alice = dialogs.receive_response(got.response)
    assert alice.confirmed and alice.id == DialogId(bob.call_id, bob.remote_tag, bob.local_tag)
    ack = wire(alice.create_ack(invite.cseq))
    assert bob_table.find(ack) is bob and bob.receive_request(ack) is None
    # Bob hangs up: his BYE goes through his client transaction, Alice's table finds the dialog
    now += 5
    bye = bob.create_request("BYE")
    _, out = bob_layer.send_request(bye, "alice", now)
    (sent,) = [o.message for o in out if isinstance(o, Send)]
    (incoming,) = [o for o in alice_layer.receive(wire(sent), "bob", now) if isinstance(o, RequestReceived)]
    found = alice_table.find(incoming.request)
    assert found is alice and alice.receive_request(incoming.request) is None and alice.terminated
    out = alice_layer.respond(incoming.transaction, incoming.request.make_response(200), now)
    (sent,) = [o.message for o in out if isinstance(o, Send)]
    (got,) = [o for o in bob_layer.receive(wire(sent), "alice", now) if isinstance(o, ResponseReceived)]
    assert bob_table.find(got.response) is bob
    bob.receive_response(got.response)
    assert bob.terminated and bob.remote_seq == 1 and bob.local_seq == 1


def test_state_table_and_diagram_agree():
    mermaid = to_mermaid()
    for (state, event), target in TRANSITIONS.items():
        source = "[*]" if state == "init" else state
        assert f"{source} --> {target}: {event}" in mermaid
    assert {s.value for s in DialogState} == {t for t in TRANSITIONS.values()}
    _, _, dialog = bob_dialog()
    dialog.terminate()
    assert dialog.history[-1] == ("confirmed", "terminate()", "terminated")
    dialog.terminate()   # no transition out of terminated: nothing happens
    assert len(dialog.history) == 2


def test_diagram_drawn_from_the_table():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = draw()
    texts = "\n".join(t.get_text() for t in ax.texts)
    for (_, event) in TRANSITIONS:
        assert event in texts
    assert {"start", "early", "confirmed", "terminated"} <= {t.get_text() for t in ax.texts}
    plt.close(ax.figure)


# --- interop: SIPp on the other end, over real UDP on loopback ----------------------------------

import asyncio  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402

from labkit.sip.endpoint import SipEndpoint  # noqa: E402
from labkit.sip.offer_answer import SdpNegotiator  # noqa: E402
from labkit.sip.transport import Peer  # noqa: E402

# SIPp as the callee, checking what our caller's dialog sends: an ACK with the INVITE's CSeq
# number to the 200's Contact, then a BYE with the next CSeq and both tags.
STRICT_CALLEE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="labkit dialog test callee">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="z9hG4bK" search_in="hdr" header="Via:" check_it="true" assign_to="b"/>
      <ereg regexp="^ *1 INVITE" search_in="hdr" header="CSeq:" check_it="true" assign_to="c"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=sippcallee1
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=sippcallee1
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv request="ACK" crlf="true">
    <action>
      <ereg regexp="^ACK sip:127\\.0\\.0\\.1:[0-9]+;transport=UDP SIP/2\\.0" search_in="msg" check_it="true" assign_to="u"/>
      <ereg regexp="^ *1 ACK" search_in="hdr" header="CSeq:" check_it="true" assign_to="d"/>
      <ereg regexp="tag=sippcallee1" search_in="hdr" header="To:" check_it="true" assign_to="e"/>
    </action>
  </recv>
  <recv request="BYE">
    <action>
      <ereg regexp="^ *2 BYE" search_in="hdr" header="CSeq:" check_it="true" assign_to="f"/>
      <ereg regexp="tag=sippcallee1" search_in="hdr" header="To:" check_it="true" assign_to="g"/>
      <ereg regexp="tag=labkitcaller" search_in="hdr" header="From:" check_it="true" assign_to="h"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="b,c,u,d,e,f,g,h"/>
</scenario>
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run_sipp(target_port: int, scenario: list[str], cwd, *extra: str, port: int | None = None):
    exe = shutil.which("sipp")
    cmd = [exe, f"127.0.0.1:{target_port}", *scenario, "-i", "127.0.0.1",
           "-p", str(port or _free_udp_port()), "-m", "1", "-t", "u1", "-timeout", "15s",
           "-timeout_error", "-nostdin", *extra]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT,
                                                env=dict(os.environ, TERM="dumb"))
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(errors="replace")


needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None,
                                reason="SIPp is not installed (Debian package sip-tester)")


class Callee:
    """A tiny answering phone built from the sans-I/O pieces on a real SipEndpoint: the
    INVITE is answered with SdpNegotiator and makes a Dialog; in-dialog requests go through
    the DialogTable (re-INVITEs get a new answer from the same negotiator)."""

    def __init__(self):
        self.table = DialogTable()
        self.negotiator = None
        self.dialog = None
        self.offers, self.answers, self.in_dialog, self.acks = [], [], [], []
        self.endpoint = SipEndpoint(self.on_request, on_ack=self.on_ack)
        self.address = None

    async def start(self):
        self.address = await self.endpoint.listen("127.0.0.1", 0, transports=("udp",))

    def answer_with_sdp(self, incoming, to_tag=None):
        request = incoming.request
        negotiation = self.negotiator.answer(request.body)
        self.offers.append(request.sdp)
        self.answers.append(negotiation)
        ok = incoming.response(200, to_tag=to_tag)
        ok.add("Contact", f"<sip:labkit@127.0.0.1:{self.address[1]}>")
        ok.set("Content-Type", "application/sdp")
        ok.body = bytes(negotiation.sdp)
        return ok

    def on_request(self, incoming):
        request = incoming.request
        if request.method == "INVITE" and request.to.tag is None:
            self.negotiator = SdpNegotiator("127.0.0.1", 40000, codecs=("pcma", "pcmu", "telephone-event"))
            ok = self.answer_with_sdp(incoming, to_tag=new_tag())
            self.dialog = self.table.add(Dialog.from_uas(request, ok))
            incoming.send(ok)
            return
        dialog = self.table.find(request)
        if dialog is None:
            incoming.reply(481)
            return
        refused = dialog.receive_request(request)
        self.in_dialog.append(request.method)
        if refused is not None:
            incoming.send(refused)
        elif request.method == "INVITE":
            ok = self.answer_with_sdp(incoming)
            incoming.send(ok)
            dialog.response_sent(ok)
        else:
            incoming.reply(200)

    def on_ack(self, ack, peer):
        dialog = self.table.find(ack)
        self.acks.append(dialog is not None and dialog.receive_request(ack) is None)


def run_callee(scenario, tmp_path, *extra):
    async def main():
        callee = Callee()
        await callee.start()
        try:
            code, out = await _run_sipp(callee.address[1], scenario, tmp_path, *extra)
        finally:
            await callee.endpoint.close()
        return callee, code, out
    return asyncio.run(main())


@pytest.mark.sipp
@needs_sipp
def test_sipp_calls_our_callee_dialog(tmp_path):
    """SIPp's built-in caller (-sn uac) → our UAS: answer with SdpNegotiator, make the dialog
    from the 200, match its ACK and BYE through a DialogTable."""
    callee, code, out = run_callee(["-sn", "uac"], tmp_path, "-d", "200")
    assert code == 0, out[-3000:]
    media = callee.answers[0].audio
    assert (media.codec, media.payload_type, media.remote_address, media.remote_port) == \
        ("pcmu", 0, "127.0.0.1", callee.offers[0].media[0].port)
    dialog = callee.dialog
    assert callee.acks == [True] and callee.in_dialog == ["BYE"]
    assert dialog.terminated and dialog.remote_seq == 2
    assert str(dialog.remote_target).startswith("sip:sipp@127.0.0.1:")


# SIPp as a caller that puts us on hold and back with re-INVITEs, checking our answers.
HOLDING_CALLER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="labkit hold test caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" rrs="true">
    <action>
      <ereg regexp="a=sendrecv" search_in="body" check_it="true" assign_to="a1"/>
      <ereg regexp="o=labkit [0-9]+ 0 IN IP4" search_in="body" check_it="true" assign_to="a2"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      INVITE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687638 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendonly
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="a=recvonly" search_in="body" check_it="true" assign_to="b1"/>
      <ereg regexp="o=labkit [0-9]+ 1 IN IP4" search_in="body" check_it="true" assign_to="b2"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      INVITE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687639 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="a=sendrecv" search_in="body" check_it="true" assign_to="c1"/>
      <ereg regexp="o=labkit [0-9]+ 2 IN IP4" search_in="body" check_it="true" assign_to="c2"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 4 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <Reference variables="a1,a2,b1,b2,c1,c2"/>
</scenario>
"""


@pytest.mark.sipp
@needs_sipp
def test_sipp_holds_and_resumes_our_callee(tmp_path):
    """SIPp re-INVITEs with a=sendonly then a=sendrecv: our answers say recvonly then sendrecv
    with the o= version going 0, 1, 2 (SIPp checks the bodies), the dialog sees CSeq 1-4."""
    scenario = tmp_path / "hold.xml"
    scenario.write_text(HOLDING_CALLER)
    callee, code, out = run_callee(["-sf", str(scenario)], tmp_path)
    assert code == 0, out[-3000:]
    assert [a.audio.direction for a in callee.answers] == ["sendrecv", "recvonly", "sendrecv"]
    assert [a.audio.remote_hold for a in callee.answers] == [False, True, False]
    assert [a.changed for a in callee.answers] == [True, True, True]
    assert callee.in_dialog == ["INVITE", "INVITE", "BYE"] and callee.acks == [True, True, True]
    assert callee.dialog.terminated and callee.dialog.remote_seq == 4
    assert callee.dialog.incoming_invite is None


@pytest.mark.sipp
@needs_sipp
def test_our_caller_dialog_against_sipp_callee(tmp_path):
    """Our UAC: INVITE with an offer, DialogSet from 180/200, ACK to the 200's Contact, BYE —
    SIPp checks CSeq numbers, tags and the ACK's Request-URI with check_it regexps."""
    scenario = tmp_path / "callee.xml"
    scenario.write_text(STRICT_CALLEE)
    sipp_port = _free_udp_port()
    seen = {}

    async def main():
        endpoint = SipEndpoint(lambda incoming: incoming.reply(481))
        address = await endpoint.listen("127.0.0.1", 0, transports=("udp",))
        sipp_task = asyncio.create_task(_run_sipp(0, ["-sf", str(scenario)], tmp_path,
                                                  port=sipp_port))
        await asyncio.sleep(0.5)   # SIPp binds its port
        try:
            negotiator = SdpNegotiator("127.0.0.1", 41000, codecs=("pcmu", "pcma", "telephone-event"))
            invite = make_request("INVITE", f"sip:service@127.0.0.1:{sipp_port}", local=address,
                                  from_uri="sip:labkit@127.0.0.1",
                                  contact=f"<sip:labkit@127.0.0.1:{address[1]}>",
                                  from_tag="labkitcaller", body=bytes(negotiator.create_offer()))
            dialogs = DialogSet(invite)
            peer = Peer("udp", "127.0.0.1", sipp_port)
            calling = asyncio.ensure_future(
                endpoint.request(invite, peer, on_provisional=dialogs.receive_response))
            await asyncio.wait([calling, sipp_task], return_when=asyncio.FIRST_COMPLETED)
            if not calling.done():   # SIPp gave up (e.g. could not bind): say why, now
                calling.cancel()
                code, out = sipp_task.result()
                pytest.fail(f"SIPp exited {code} before answering:\n{out[:1500]}")
            final = calling.result()
            dialog = dialogs.receive_response(final)
            if dialog is None:
                code, out = await sipp_task
                pytest.fail(f"{final!r}; SIPp exited {code}:\n{out[:1500]}")
            seen["early_history"] = list(dialog.history)
            seen["media"] = negotiator.receive_answer(final.body).audio
            seen["answer"] = final.sdp
            hop = dialog.next_hop
            endpoint.send_stateless(dialog.create_ack(invite.cseq), Peer("udp", hop.host, hop.port))
            bye = dialog.create_request("BYE")
            reply = await endpoint.request(bye, Peer("udp", hop.host, hop.port))
            dialog.receive_response(reply)
            seen["dialog"] = dialog
            return await sipp_task
        finally:
            if not sipp_task.done():
                sipp_task.cancel()
            await endpoint.close()

    code, out = asyncio.run(main())
    assert code == 0, out[-3000:]
    assert seen["early_history"] == [("init", "1xx with To tag", "early"), ("early", "2xx", "confirmed")]
    media = seen["media"]
    assert (media.codec, media.payload_type, media.telephone_event_pt, media.remote_port) == \
        ("pcma", 8, 101, seen["answer"].media[0].port)
    assert seen["dialog"].terminated and seen["dialog"].local_seq == 2


# --- how requests are built -------------------------------------------------------------------

def test_dialog_request_headers_built_in_one_pass_every_value_checked(monkeypatch):
    """A request of a dialog gets its headers in one pass (no add() per line), every line
    still checked: a dialog value holding CR LF (a Dialog built by hand) is refused."""
    from labkit.sip import message

    _, _, dialog = bob_dialog()
    checked = []
    real = message._checked
    monkeypatch.setattr(message, "_checked", lambda n, v: checked.append(n) or real(n, v))
    monkeypatch.setattr(message.Headers, "add", lambda *a, **k: pytest.fail("add() per line"))
    bye = dialog.create_request("BYE", headers=[("Subject", "bye")])
    assert checked == [name for name, _ in bye.headers]
    dialog.call_id = "x@y\r\nVia: SIP/2.0/UDP evil.example.com"
    with pytest.raises(ValueError, match="control character"):
        dialog.create_request("BYE")


@pytest.mark.parametrize("via", [
    "SIP/2.0/UDP 192.0.2.20:5062;rport", "SIP/2.0/TCP [2001:db8::1]:5070", "SIP/2.0/TLS bob.example.com",
    "SIP/2.0/UDP 192.0.2.20;received=10.0.0.1;rport=5062;x=\"q\"",
    "SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKold;rport",   # a template that has a branch
])
def test_dialog_via_text_is_the_template_with_a_new_branch(via):
    _, _, dialog = bob_dialog()
    dialog.local_via = Via.parse(via)
    branches = set()
    for _ in range(2):
        top = dialog.create_request("INFO").headers.get("Via")
        branch = Via.parse(top).branch
        assert branch.startswith("z9hG4bK") and branch != "z9hG4bKold"
        assert top == str(dialog.local_via.with_params(branch=branch))
        branches.add(branch)
    assert len(branches) == 2


def test_dialog_request_text_follows_replaced_values():
    """From, To and Via are remade as text only when they change; a change shows at once."""
    _, _, dialog = bob_dialog()
    first = dialog.create_request("INFO")
    assert first.to.tag == "alicetag" and first.from_.tag == "bobtag"
    assert str(first.from_) == str(dialog.local.with_tag("bobtag"))
    dialog.remote_tag = "other"
    dialog.local = NameAddr.parse('"Bob B" <sip:bob@biloxi.example.com>')
    dialog.local_via = Via.parse("SIP/2.0/TCP 192.0.2.99:5070")
    second = dialog.create_request("INFO")
    assert second.to.tag == "other" and second.from_.display == "Bob B"
    assert second.from_.tag == "bobtag"
    assert second.via[0].transport == "TCP" and second.via[0].host == "192.0.2.99"
