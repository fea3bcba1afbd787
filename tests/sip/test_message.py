"""labkit.sip.message: parsing, header access, serialisation, framing, responses.

The files under tests/data/sip/ are hand-made hard cases modelled on RFC 4475 (SIP torture
tests); each test below states exactly what labkit must make of them.
"""
from pathlib import Path

import pytest

from labkit.sip import (AbsoluteURI, CSeq, Headers, NameAddr, ParseError, Request, Response,
                        SipURI, Via, frame_stream, parse)

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"


def load(name: str) -> bytes:
    return (DATA / f"{name}.sip").read_bytes()


def parsed(name: str):
    return parse(load(name))


# --- the RFC 3261 §24.2 INVITE ----------------------------------------------------------------

def test_rfc3261_invite_typed_headers():
    msg = parsed("rfc3261_invite")
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and str(msg.uri) == "sip:bob@biloxi.example.com"
    via, = msg.via
    assert (via.transport, via.host, via.port, via.branch) == (
        "TCP", "client.atlanta.example.com", 5060, "z9hG4bK74bf9")
    assert msg.from_.display == "Alice" and msg.from_.tag == "9fxced76sl"
    assert msg.from_.uri == SipURI("atlanta.example.com", user="alice")
    assert msg.to.tag is None and msg.to.display == "Bob"
    assert msg.call_id == "3848276298220188511@atlanta.example.com"
    assert msg.cseq == CSeq(1, "INVITE")
    assert msg.contact[0].uri.params["transport"] == "tcp"
    assert msg.max_forwards == 70 and msg.content_length == 151 == len(msg.body)
    assert msg.content_type == "application/sdp"
    assert msg.sdp.media[0].port == 49172 and msg.sdp.media[0].address == "192.0.2.101"
    assert msg.expires is None
    assert msg.validate() is msg


def test_unmodified_message_serialises_to_the_same_bytes():
    data = load("rfc3261_invite")
    assert bytes(parse(data)) == data
    assert bytes(parse(b"\r\n\r\n" + data)) == data  # leading CRLFs are not part of it


def test_change_then_serialise_then_parse_gives_an_equal_message():
    msg = parsed("rfc3261_invite")
    msg.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1", first=True)
    msg.set("Max-Forwards", 69)
    msg.add("X-Custom", "hello")
    again = parse(bytes(msg))
    assert again == msg
    assert [v.host for v in again.via] == ["proxy.example.com", "client.atlanta.example.com"]
    assert again.max_forwards == 69 and again.get("x-custom") == "hello"


def test_changes_clear_the_typed_cache():
    msg = parsed("rfc3261_invite")
    assert msg.max_forwards == 70
    msg.set("Max-Forwards", "12")
    assert msg.max_forwards == 12
    top = msg.via[0].stamp("198.51.100.7", 40000)
    msg.headers.replace_first("Via", top)
    assert msg.via[0].received == "198.51.100.7"


def test_body_setter_keeps_content_length_right():
    msg = parsed("rfc3261_invite")
    msg.body = b"hello"
    assert msg.get("Content-Length") == "5"
    assert parse(bytes(msg)).body == b"hello"


def test_build_a_request_from_scratch():
    req = Request("OPTIONS", "sip:pbx.example.org", [
        ("Via", Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bKabc", "rport": None})),
        ("From", NameAddr("sip:me@example.org", display="Me Myself", params={"tag": "f1"})),
        ("To", NameAddr("sip:pbx.example.org")),
        ("Call-ID", "abc@192.0.2.1"), ("CSeq", CSeq(1, "OPTIONS")), ("Max-Forwards", 70)])
    data = bytes(req)
    assert data.startswith(b"OPTIONS sip:pbx.example.org SIP/2.0\r\n"
                           b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport\r\n"
                           b'From: "Me Myself" <sip:me@example.org>;tag=f1\r\n')
    assert data.endswith(b"Content-Length: 0\r\n\r\n")
    again = parse(data)
    assert again == req and again.validate()
    assert again.via[0].has_rport and again.via[0].rport is None


# --- header access ------------------------------------------------------------------------------

def test_names_are_case_insensitive_and_compact_forms_fold():
    msg = parsed("esc01")
    assert msg.get("CALL-ID") == msg.get("i") == msg.get("call-id") == "esc01.23940-9asdf"
    assert msg.content_type == "application/sdp"  # written as "C:"
    assert [name for name, _ in msg.headers][:7] == [
        "To", "From", "Max-Forwards", "Call-ID", "CSeq", "Via", "Content-Type"]


def test_list_headers_split_but_others_keep_commas():
    msg = parse(b"OPTIONS sip:a@b SIP/2.0\r\n"
                b"Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n"
                b"Via: SIP/2.0/UDP c;branch=z9hG4bK3\r\n"
                b'Contact: "Doe, John" <sip:j@x;a=b,c>, <sip:k@y>;q=0.5\r\n'
                b"Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"
                b'WWW-Authenticate: Digest realm="x", nonce="y"\r\n\r\n')
    assert [v.host for v in msg.via] == ["a", "b", "c"]
    assert msg.get("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert [c.display for c in msg.contact] == ["Doe, John", None]
    assert msg.contact[1].params["q"] == "0.5"
    assert msg.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert msg.auth("WWW-Authenticate")[0].params["nonce"] == "y"


def test_pop_first_splits_a_shared_line():
    msg = parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n\r\n")
    assert msg.headers.pop_first("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert [v.host for v in msg.via] == ["b"]


def test_unknown_headers_and_methods_are_kept_untouched():
    msg = parsed("intmeth")
    assert msg.method == "!odd-Method0123456789_*+`.%indeed'~"
    assert msg.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert msg.cseq.method == msg.method
    assert msg.uri.user == "1_odd.URI~(really!)&isn't+it$/mad?,/;;*"
    assert msg.uri.password == "&pass+has=1,odd!*pa$s~d_(too)"
    assert msg.to.display == "BEL:\x07 DEL:\x7f"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.params["fromParam''~+*_!.-%"] == '"\u0440\u0430\u0431\u043e\u0442\u0430"'
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.via[0].branch == "z9hG4bK-.!%66*_+`'~"
    msg.validate()


def test_header_values_reject_line_breaks():
    msg = parsed("rfc3261_invite")
    with pytest.raises(ValueError, match="control character"):
        msg.set("Subject", "evil\r\nVia: injected")
    with pytest.raises(ValueError, match="bad header name"):
        msg.add("Bad Name", "x")


# --- torture tests: valid messages ---------------------------------------------------------

def test_wsinv_whitespace_folding_and_case():
    msg = parsed("wsinv")
    assert msg.to.uri == "sip:marie@lab-pbx.example.org" and msg.to.tag == "8817a2x"
    assert msg.from_.display == 'Pierre "the Fox" Lebrun' and msg.from_.tag == "77fa0q"
    assert msg.max_forwards == 69 and msg.cseq == CSeq(12, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.via] == [
        ("UDP", "192.0.2.7", "z9hG4bKws01"), ("TCP", "relay.example.org", "z9hG4bKws02"),
        ("UDP", "192.168.1.20", "z9hG4bKws03")]
    assert msg.get("Subject") == ""
    assert msg.get("X-Lab-Header") == "first part second part"  # folded: CRLF + WSP -> SP
    assert msg.get("X-Strange-Value") == ";;,,;;,;"
    assert msg.route[0].uri.params["unknownwith"] == "value"
    contact, = msg.contact
    assert contact.display == 'Quoted "" name'
    assert dict(contact.params.items()) == {"newparam": "newvalue", "secondparam": None, "q": "0.5"}
    assert str(msg.uri) == "sip:marie@lab-pbx.example.org;oddparam"
    assert len(msg.body) == msg.content_length == 150
    msg.validate()
    assert bytes(msg) == load("wsinv")


def test_esc01_escapes_in_uris():
    msg = parsed("esc01")
    assert msg.uri.user == "sips:user@example.org" and msg.uri.host == "example.net"
    assert msg.to.uri.user == "user"
    assert msg.from_.uri.user == "I have spaces"
    contact = msg.contact[0].uri
    assert contact.user == "caller" and "lr" in contact.params
    assert contact.params["name"] == "value%41"
    assert contact == SipURI("host5.example.net", user="caller", params={"lr": None, "name": "value%41"})


def test_escnull_escaped_nuls_are_data():
    msg = parsed("escnull")
    assert msg.to.uri.user == "null-\x00-null"
    assert [c.uri.user for c in msg.contact] == ["\x00", "\x00\x00"]
    assert msg.content_length == 0  # written "L:0"


def test_lwsdisp_display_name_without_space():
    msg = parsed("lwsdisp")
    assert msg.from_.display == "caller" and msg.from_.tag == "323"
    assert msg.to.uri == "sip:user@example.org" and msg.to.display is None


def test_addr_spec_params_belong_to_the_header():
    msg = parsed("escnull")
    assert msg.from_.tag == "839923423"
    assert len(msg.from_.uri.params) == 0


def test_longreq():
    msg = parsed("longreq")
    assert len(msg.via) == 60 and msg.via[59].branch == "z9hG4bKlong059"
    assert len(msg.from_.tag) == 7 + 400
    assert msg.to.uri.port == 6000 and len(msg.to.uri.params["unknownparam1"]) == 221
    assert len(msg.call_id) == len("longreq.one") + 360 + len("longcallid")
    assert msg.contact[0].uri.user.startswith("amazinglylongcallername")
    msg.validate()


def test_mpart01_binary_multipart_body():
    msg = parsed("mpart01")
    assert len(msg.body) == msg.content_length == 430
    assert msg.content_type == "multipart/mixed"
    assert msg.get("Content-Type") == 'multipart/mixed;boundary="7a9cbec02ceef655"'
    parts = msg.body.split(b"--7a9cbec02ceef655")
    assert len(parts) == 4 and parts[-1] == b"--\r\n"
    assert bytes(range(256))[::-1][:200] in parts[2]
    assert msg.sdp is None


def test_unknown_scheme_in_request_uri_is_not_a_parse_error():
    msg = parsed("unksm")
    assert isinstance(msg.uri, AbsoluteURI) and msg.uri.scheme == "nobodyknowsthisscheme"
    response = msg.make_response(416)  # what a SIP server answers to it
    assert response.reason == "Unsupported URI Scheme"
    novel = parsed("novelsc")
    assert str(novel.uri) == "soap.beep://192.0.2.103:3002" and isinstance(novel.to.uri, AbsoluteURI)


def test_noreason_empty_reason_phrase():
    msg = parsed("noreason")
    assert isinstance(msg, Response) and msg.status == 100 and msg.reason == ""
    assert bytes(msg) == load("noreason")


def test_semiuri_and_folded_list():
    msg = parsed("semiuri")
    assert msg.uri.user == "user;par=u@example.net"
    assert msg.get_all("Accept") == ["application/sdp", "application/pkcs7-mime", "multipart/mixed",
                                     "multipart/signed", "message/sip", "message/sipfrag"]


def test_ipv6_references():
    msg = parsed("ipv6")
    assert msg.uri.host == "[2001:db8::10]"
    via = msg.via[0]
    assert (via.host, via.port, via.has_rport, via.rport) == ("[2001:db8::9:1]", 5070, True, None)
    stamped = via.stamp("2001:db8::9:1", 5070)
    assert stamped.received == "2001:db8::9:1" and stamped.rport == 5070
    assert msg.contact[0].uri.host == "[2001:db8::9:1]"


def test_udp_without_content_length_takes_the_rest_of_the_datagram():
    msg = parsed("udp-no-cl")
    assert msg.content_length is None and len(msg.body) == 150
    assert msg.sdp.media[0].port == 49217


def test_dblreq_extra_bytes_after_content_length_are_ignored():
    msg = parsed("dblreq")
    assert msg.method == "REGISTER" and msg.body == b""
    assert bytes(msg) == load("dblreq")[:len(bytes(msg))]
    assert bytes(msg).endswith(b"Content-Length: 0\r\n\r\n")


# --- torture tests: invalid messages -------------------------------------------------------

PARSE_ERRORS = {
    "badcl": (400, "Content-Length 9999 is larger than the 150 bytes of body received"),
    "ncl": (400, "line 9: bad Content-Length '-999' (want a non-negative number)"),
    "badvers": (505, "line 1: unsupported SIP version SIP/7.0"),
    "lwsruri": (400, "line 1: bad request line 'INVITE sip:user@example.org; lr SIP/2.0' "
                     "(want METHOD SP Request-URI SP SIP/2.0, single spaces)"),
    "lwsstart": (400, "line 1: bad request line 'INVITE  sip:user@example.org  SIP/2.0' "
                      "(want METHOD SP Request-URI SP SIP/2.0, single spaces)"),
    "trws": (400, "line 1: bad request line 'OPTIONS sip:remote-target@example.org SIP/2.0  ' "
                  "(want METHOD SP Request-URI SP SIP/2.0, single spaces)"),
    "escruri": (400, "line 1: bad Request-URI: forbidden character in URI "
                     "'sip:user@example.org?Route=<sip:sip.example.org>'"),
    "mcl01": (400, "line 9: Content-Length 193 contradicts an earlier Content-Length 0"),
    "nulhdr": (400, "line 8: NUL byte in headers"),
    "nocolon": (400, "line 8: header line without ':' 'This line has no colon'"),
    "bigcode": (400, "line 1: bad status line 'SIP/2.0 4294967301 better not break the receiver' "
                     "(want SIP/2.0 <3-digit code> <reason>)"),
}


@pytest.mark.parametrize("name", sorted(PARSE_ERRORS))
def test_parse_errors_say_what_and_where(name):
    status, message = PARSE_ERRORS[name]
    with pytest.raises(ParseError) as err:
        parsed(name)
    assert (err.value.status, str(err.value)) == (status, message)


@pytest.mark.parametrize("name", sorted(set(PARSE_ERRORS) - {"bigcode"}))
def test_request_info_still_answers_the_sender(name):
    with pytest.raises(ParseError) as err:
        parsed(name)
    info = err.value.request_info
    assert info is not None
    response = info.make_response(err.value.status)
    assert response.call_id == f"{name}.call"
    assert response.via[0].branch == "z9hG4bKbad"
    assert response.cseq.seq == 1
    assert parse(bytes(response)) == response


VALIDATE_ERRORS = {
    "insuf": "missing Call-ID header",
    "mismatch01": "CSeq method INVITE does not match the request method OPTIONS",
    "quotbal": "Contact header: unterminated quoted display name: "
               "'\"Mr J. User <sip:j.user@example.org>'",
    "baddn": "From header: display name 'Bell, Alexander' must be quoted "
             "(it has characters a token cannot hold)",
    "scalar02": "Max-Forwards 300 is larger than 255",
    "badaspec": "To header: expected '<' after the display name: "
                "'\"Mr. J. User <sip:j.user@example.org>\"'",
    "badvia": "Via header: port out of range: 99999",
}


@pytest.mark.parametrize("name", sorted(VALIDATE_ERRORS))
def test_validate_errors(name):
    msg = parsed(name)  # the structure is fine; a typed header is not
    with pytest.raises(ParseError) as err:
        msg.validate()
    assert str(err.value) == VALIDATE_ERRORS[name]
    assert err.value.request_info is msg and err.value.status == 400


@pytest.mark.parametrize("data,message", [
    (b"", "empty message"),
    (b"\r\n\r\n", "empty message"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n", "message ends before the empty line that closes the headers"),
    (b"OPTIONS sip:a@b SIP/2.0\nVia: x\n\n", "lines must end with CRLF (found bare LF)"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nSubject: caf\xe9\r\n\r\n", "line 2: bytes that are not UTF-8"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", "line 2: bad header name 'Bad Name'"),
    (b"OPT<IONS sip:a@b SIP/2.0\r\n\r\n", "line 1: bad method 'OPT<IONS'"),
    (b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n", "line 1: bad SIP version 'HTTP/1.1'"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one\ntwo\r\n\r\n", "line 2: bare CR or LF inside the Subject header"),
    (b"OPTIONS sip:a@b SIP/2.0\r\nX-A: one\rtwo\r\n\r\n", "line 2: bare CR or LF inside the X-A header"),
    (b"SIP/2.0 99 Low\r\n\r\n", "line 1: bad status line 'SIP/2.0 99 Low' (want SIP/2.0 <3-digit code> <reason>)"),
])
def test_more_parse_errors(data, message):
    with pytest.raises(ParseError) as err:
        parse(data)
    assert str(err.value) == message


def test_utf8_display_names():
    msg = parse('OPTIONS sip:a@b SIP/2.0\r\nFrom: "Zoë Ångström 日本" <sip:z@example.org>;tag=1\r\n\r\n'.encode())
    assert msg.from_.display == "Zoë Ångström 日本"


# --- responses ---------------------------------------------------------------------------------

def test_make_response_copies_per_rfc3261_8_2_6():
    req = parse(b"INVITE sip:bob@example.org SIP/2.0\r\n"
                b"Via: SIP/2.0/UDP p1.example.org;branch=z9hG4bKa\r\n"
                b"v: SIP/2.0/UDP alice.example.org;branch=z9hG4bKb;received=192.0.2.1\r\n"
                b"From: <sip:alice@example.org>;tag=a1\r\nTo: <sip:bob@example.org>\r\n"
                b"Call-ID: c1\r\nCSeq: 7 INVITE\r\nTimestamp: 54\r\nSubject: hi\r\n"
                b"Content-Length: 0\r\n\r\n")
    ringing = req.make_response(180, to_tag="b9")
    assert bytes(ringing) == (
        b"SIP/2.0 180 Ringing\r\n"
        b"Via: SIP/2.0/UDP p1.example.org;branch=z9hG4bKa\r\n"
        b"Via: SIP/2.0/UDP alice.example.org;branch=z9hG4bKb;received=192.0.2.1\r\n"
        b"From: <sip:alice@example.org>;tag=a1\r\nTo: <sip:bob@example.org>;tag=b9\r\n"
        b"Call-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n")
    trying = req.make_response(100, "Trying hard", to_tag="b9")
    assert trying.reason == "Trying hard" and trying.to.tag is None
    assert trying.get("Timestamp") == "54"
    assert req.make_response(486).reason == "Busy Here"
    with pytest.raises(ValueError):
        req.make_response(99)


def test_make_response_echoes_record_route_in_dialog_forming_responses():
    req = parse(b"INVITE sip:b@x SIP/2.0\r\nRecord-Route: <sip:p2.example.org;lr>\r\n"
                b"Via: SIP/2.0/UDP p2.example.org;branch=z9hG4bK2\r\n"
                b"Record-Route: <sip:p1.example.org;lr>;x=1\r\nTo: <sip:b@x>\r\nFrom: <sip:a@x>;tag=f\r\n"
                b"Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n")
    for status in (180, 200):
        assert req.make_response(status, to_tag="t").get_all("Record-Route") == [
            "<sip:p2.example.org;lr>", "<sip:p1.example.org;lr>;x=1"]
    assert req.make_response(486, to_tag="t").get_all("Record-Route") == []
    assert req.make_response(100).get_all("Record-Route") == []


def test_make_response_keeps_an_existing_to_tag():
    req = parse(b"BYE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                b"To: <sip:b@x>;tag=old\r\nFrom: <sip:a@x>;tag=f\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n")
    assert req.make_response(200, to_tag="new").to.tag == "old"


# --- stream framing ----------------------------------------------------------------------------

def test_frame_stream_cuts_complete_messages():
    one, two = load("rfc3261_invite"), load("lwsdisp")
    buffer = bytearray(b"\r\n\r\n" + one + b"\r\n" + two[:30])
    assert frame_stream(buffer) == [one]
    assert buffer == two[:30]
    buffer += two[30:] + one[:-1]
    assert frame_stream(buffer) == [two]
    buffer += one[-1:]
    assert frame_stream(buffer) == [one] and buffer == b""
    assert frame_stream(bytearray(b"\r\n\r\n")) == []


def test_frame_stream_needs_content_length():
    with pytest.raises(ParseError, match="message on a stream without Content-Length"):
        frame_stream(bytearray(load("udp-no-cl")))
    with pytest.raises(ParseError, match=r"bad Content-Length '-999' on a stream"):
        frame_stream(bytearray(load("ncl")))
    with pytest.raises(ParseError, match=r"bad Content-Length '0, 193' on a stream"):
        frame_stream(bytearray(load("mcl01")))


def test_frame_stream_limits_an_endless_header():
    buffer = bytearray(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 20000)
    with pytest.raises(ParseError) as err:
        frame_stream(buffer)
    assert err.value.status == 413


# --- a real capture: SIPp uac -> SIPp uas (data/pcaps/) ------------------------------------------

CAPTURE = Path(__file__).resolve().parents[2] / "data" / "pcaps" / "sipp_uac_uas.pcap"


def test_every_message_of_the_sipp_capture_parses_and_round_trips():
    from labkit.lab.pcap import sip_messages, summary_line
    seen = list(sip_messages(CAPTURE))
    assert len(seen) == 18
    flow = []
    for packet, msg in seen:
        assert not isinstance(msg, ParseError), msg
        msg.validate()
        assert bytes(msg) == packet.payload
        flow.append(msg.method if isinstance(msg, Request) else msg.status)
    assert flow == ["INVITE", 180, 200, "ACK", "BYE", 200] * 3
    assert len({msg.call_id for _, msg in seen}) == 3
    invite = seen[0][1]
    assert invite.sdp.media[0].rtpmap[0].encoding == "PCMU"
    line = summary_line(*seen[0])
    assert line.endswith(f" 127.0.0.1:5071 -> 127.0.0.1:5070 INVITE sip:service@127.0.0.1:5070 "
                         f"(Call-ID {invite.call_id}, CSeq 1 INVITE)")


def test_capture_agrees_with_tshark():
    import shutil
    import subprocess
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed (apt-get install tshark)")
    from labkit.lab.pcap import sip_messages
    out = subprocess.run(["tshark", "-r", str(CAPTURE), "-Y", "sip", "-T", "fields",
                          "-e", "sip.Call-ID", "-e", "sip.CSeq", "-e", "sip.Via.branch"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = [tuple(line.split("\t")) for line in out.splitlines()]
    ours = [(m.call_id, str(m.cseq), m.via[0].branch) for _, m in sip_messages(CAPTURE)]
    assert ours == theirs


# --- building headers in one pass ----------------------------------------------------------

def _one_by_one(lines):
    headers = Headers()
    for name, value in lines:
        headers.add(name, value)
    return headers


@pytest.mark.parametrize("lines", [
    [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("Max-Forwards", 70), ("To", "<sip:b@c>")],
    # a name that comes back after another: its lines stay together, after the first of them
    [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("To", "<sip:b@c>"), ("v", "SIP/2.0/UDP b"),
     ("Route", "<sip:p1;lr>"), ("to", "<sip:x@y>"), ("Route", "<sip:p2;lr>"), ("Subject", " hi ")],
    [("i", "x@y"), ("l", 0), ("Call-ID", "z@y"), ("X-Custom", "1"), ("x-custom", "2")],
])
def test_headers_built_at_once_match_lines_added_one_by_one(lines):
    built = Headers(lines)
    assert list(built) == list(_one_by_one(lines))
    assert built == _one_by_one(lines) and bytes(Request("OPTIONS", "sip:a@b", lines)) == \
        bytes(Request("OPTIONS", "sip:a@b", _one_by_one(lines)))


@pytest.mark.parametrize("name, value, error", [
    ("Subject", "evil\r\nVia: injected", "control character"),
    ("Subject", "nul\x00", "control character"),
    ("Bad Name", "x", "bad header name"),
    ("Via:", "x", "bad header name"),
    (7, "x", "bad header name"),
])
def test_headers_given_at_once_are_checked_like_added_ones(name, value, error):
    with pytest.raises(ValueError, match=error):
        Headers([("To", "<sip:b@c>"), (name, value)])
    with pytest.raises(ValueError, match=error):
        Request("OPTIONS", "sip:a@b", [(name, value)])
    # a name refused once is refused again (only names that passed are remembered)
    with pytest.raises(ValueError, match=error):
        Headers().add(name, value)


def test_ints_are_written_without_a_value_scan(monkeypatch):
    """An int value cannot hold a control character; a string always gets the scan."""
    from labkit.sip import message

    scanned = []

    class Counting:
        def search(self, text):
            scanned.append(text)
            return None

    monkeypatch.setattr(message, "_CTL_RE", Counting())
    Headers([("Max-Forwards", 70), ("Content-Length", 12), ("Subject", "x")])
    assert scanned == ["x"]


def test_make_response_copies_parsed_lines_without_checking_them_again(monkeypatch):
    """The lines a response copies were checked when the request was parsed or built: the
    copy takes them as they are (no name or value check), yet gives the same bytes."""
    from labkit.sip import message

    req = parsed("rfc3261_invite")
    expected = bytes(req.make_response(180, to_tag="b9"))

    def refuse(*_):
        raise AssertionError("a copied line was checked again")

    monkeypatch.setattr(message, "_checked", refuse)
    assert bytes(req.make_response(180, to_tag="b9")) == expected
