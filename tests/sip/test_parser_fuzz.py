"""Property-based tests: round trips hold, and no input makes the parser fail with anything but
ParseError (bounded example counts keep the run to a few seconds)."""
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.sip import (CSeq, NameAddr, ParseError, Request, Response, SipURI, Via, frame_stream,
                        parse, parse_uri)
from labkit.sip.sdp import SessionDescription

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"
SAMPLES = [p.read_bytes() for p in sorted(DATA.glob("*.sip"))]
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
labels = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=3).map(".".join).filter(
    lambda h: h.split(".")[-1][0].isalpha())
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
hosts = st.one_of(hostnames, ipv4, ipv6)
free_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
param_values = st.one_of(st.none(), st.text(TOKEN_CHARS, min_size=1, max_size=8))


@st.composite
def sip_uris(draw):
    return SipURI(
        host=draw(hosts),
        user=draw(st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)),
                                               min_size=1, max_size=10))),
        port=draw(st.one_of(st.none(), st.integers(0, 65535))),
        params=draw(st.dictionaries(st.sampled_from(["transport", "lr", "user", "maddr", "x-y"]),
                                    param_values, max_size=3)),
        headers=draw(st.dictionaries(st.sampled_from(["Subject", "Priority"]), free_text,
                                     max_size=2)),
        scheme=draw(st.sampled_from(["sip", "sips"])))


@given(sip_uris())
@FUZZ
def test_uri_format_then_parse_round_trips(uri):
    again = parse_uri(str(uri))
    assert again == uri
    assert (again.user, again.host, again.port) == (uri.user, uri.host, uri.port)
    assert dict(again.params.items()) == dict(uri.params.items())
    assert dict(again.headers.items()) == dict(uri.headers.items())


@st.composite
def name_addrs(draw):
    display = draw(st.one_of(st.none(), free_text))
    params = draw(st.dictionaries(st.sampled_from(["tag", "expires", "q", "+sip.x"]), param_values,
                                  max_size=3))
    return NameAddr(draw(sip_uris()), display=display, params=params)


@st.composite
def messages(draw):
    via = [Via(draw(st.sampled_from(["UDP", "TCP", "TLS", "WS"])), draw(hosts),
               draw(st.one_of(st.none(), st.integers(1, 65535))),
               {"branch": "z9hG4bK" + draw(tokens)})
           for _ in range(draw(st.integers(1, 3)))]
    method = draw(st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "REGISTER", "OPTIONS"]), tokens))
    headers = [("Via", v) for v in via] + [
        ("From", draw(name_addrs())), ("To", draw(name_addrs())),
        ("Call-ID", draw(tokens) + "@" + draw(hostnames)),
        ("CSeq", CSeq(draw(st.integers(0, 2 ** 31 - 1)), method)),
        ("Max-Forwards", draw(st.integers(0, 255)))]
    for _ in range(draw(st.integers(0, 3))):
        headers.append(("X-" + draw(tokens), draw(free_text)))  # unknown headers, kept as text
    body = draw(st.binary(max_size=40))
    if draw(st.booleans()):
        return Request(method, draw(sip_uris()), headers, body)
    return Response(draw(st.integers(100, 699)), draw(free_text), headers, body)


@given(messages())
@FUZZ
def test_message_serialise_then_parse_round_trips(msg):
    data = bytes(msg)
    again = parse(data)
    assert again == msg
    assert bytes(again) == data
    assert again.via == msg.via and again.from_ == msg.from_ and again.to == msg.to
    assert again.cseq == msg.cseq and again.body == msg.body
    again.validate()
    buffer = bytearray(b"\r\n" + data + data[:10])
    assert frame_stream(buffer) == [data] and buffer == data[:10]


def _exercise(data: bytes) -> None:
    """Everything a server might do with untrusted bytes; only ParseError may come out."""
    try:
        msg = parse(data)
    except ParseError as err:
        assert err.status in (400, 505)
        if err.request_info is not None:
            bytes(err.request_info.make_response(err.status))
        return
    assert all("\r" not in value and "\n" not in value for _, value in msg.headers)
    for read in (lambda: msg.via, lambda: msg.from_.uri, lambda: msg.to.tag, lambda: msg.call_id,
                 lambda: msg.cseq, lambda: [c.uri for c in msg.contact], lambda: msg.route,
                 lambda: msg.max_forwards, lambda: msg.expires, lambda: msg.sdp, msg.validate,
                 lambda: msg.auth("Authorization")):
        try:
            read()
        except ParseError:
            pass
    bytes(msg)
    if isinstance(msg, Request):
        bytes(msg.make_response(200, to_tag="x"))
    try:
        frame_stream(bytearray(data))
    except ParseError:
        pass


@given(st.binary(max_size=300))
@FUZZ
def test_random_bytes_only_raise_parse_error(data):
    _exercise(data)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "duplicate"]))
        if action == "flip":
            data[pos] = draw(st.sampled_from(list(b" \t\r\n:;,<>\"\\@%=?[]/0\x00\xff")
                                             + [draw(st.integers(0, 255))]))
        elif action == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif action == "insert":
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b"\r\n ", b",", b";", b"<", b">", b'"',
                                                  b"%", b"%0", b"\x00", b"sip:", b"\xc3", b"[::1]"]))
        else:
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 40))]
    return bytes(data)


@given(mutated())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_messages_only_raise_parse_error(data):
    _exercise(data)


@given(st.text(max_size=120))
@FUZZ
def test_random_uris_and_sdp_only_raise_parse_error(text):
    for parse_one in (parse_uri, NameAddr.parse, Via.parse, CSeq.parse, SessionDescription.parse):
        try:
            parse_one(text)
        except ParseError:
            pass


def _read_both_ways(data: bytes):
    """The one-split fast path must take only what the general parser takes, with the same
    start line, header lines, body and bytes; it may decline anything (None)."""
    from labkit.sip.message import _parse_any, _parse_usual
    fast = _parse_usual(data)
    try:
        full = _parse_any(data)
    except ParseError:
        assert fast is None
        return
    if fast is not None:
        assert fast == full and bytes(fast) == bytes(full) and fast.body == full.body
        assert list(fast.headers) == list(full.headers)
        # a list header that parsed lazily may still refuse to split (get raises): then alike
        assert [_outcome(fast.get, k) for k, _ in full.headers] == \
            [_outcome(full.get, k) for k, _ in full.headers]


def _outcome(fn, *args):
    """``fn(*args)``'s value, or the ParseError it raised (as its message), to compare two paths."""
    try:
        return fn(*args)
    except ParseError as exc:
        return ("ParseError", str(exc))


def test_fast_path_reads_every_sample_like_the_general_parser():
    for data in SAMPLES:
        _read_both_ways(data)


@given(mutated())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fast_path_reads_mutated_messages_like_the_general_parser(data):
    _read_both_ways(data)
