"""labkit.sip.uri: parsing, formatting and RFC 3261 §19.1.4 comparison."""
import pytest

from labkit.sip import AbsoluteURI, ParseError, SipURI, TelURI, parse_uri


def test_components_are_decoded_and_text_round_trips():
    text = "sips:al%69ce:s%65cret@[2001:db8::1]:5061;transport=tls;maddr=239.255.255.1;lr?Subject=hi%20there&Priority=urgent"
    uri = parse_uri(text)
    assert isinstance(uri, SipURI)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips", "alice", "secret", "[2001:db8::1]", 5061)
    assert uri.params["TRANSPORT"] == "tls" and uri.transport == "tls"
    assert uri.params["lr"] is None and "lr" in uri.params
    assert uri.params["maddr"] == "239.255.255.1"
    assert dict(uri.headers.items()) == {"Subject": "hi there", "Priority": "urgent"}
    assert str(uri) == text


def test_no_user_no_port():
    uri = parse_uri("sip:example.org")
    assert uri.user is None and uri.port is None and uri.host == "example.org"
    assert uri.host_port == "example.org"


def test_user_part_may_hold_semicolons_and_question_marks():
    uri = parse_uri("sip:user;par=u%40example.net@example.org")
    assert uri.user == "user;par=u@example.net" and uri.host == "example.org"
    assert len(uri.params) == 0


def test_escaped_nul_and_reserved_characters_in_user():
    assert parse_uri("sip:null-%00-null@example.org").user == "null-\x00-null"
    assert parse_uri("sip:sips%3Auser%40example.com@example.net").user == "sips:user@example.com"


def test_formatting_from_components_escapes_what_must_be():
    uri = SipURI("example.org", user="I have spaces", port=5070,
                 params={"transport": "tcp", "lr": None}, headers={"Subject": "a b"})
    assert str(uri) == "sip:I%20have%20spaces@example.org:5070;transport=tcp;lr?Subject=a%20b"
    assert parse_uri(str(uri)) == uri
    assert str(uri.replace(port=None, params={})) == "sip:I%20have%20spaces@example.org?Subject=a%20b"


def test_aor_keeps_scheme_user_and_host_only():
    assert parse_uri("sip:Bob@Biloxi.COM:5070;transport=tcp").aor == "sip:Bob@biloxi.com"


def test_tel_and_unknown_schemes():
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(tel, TelURI) and tel.global_number and tel.params["phone-context"] == "example.com"
    assert tel == parse_uri("tel:+1(201)5550123;PHONE-CONTEXT=example.com")
    other = parse_uri("urn:service:sos")
    assert isinstance(other, AbsoluteURI) and other.scheme == "urn" and str(other) == "urn:service:sos"
    novel = parse_uri("soap.beep://192.0.2.103:3002")
    assert isinstance(novel, AbsoluteURI) and novel.scheme == "soap.beep"


# RFC 3261 §19.1.4: the equivalent pairs and the not-equivalent pairs it lists.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),  # user case
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),            # explicit default port
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),   # transport in one only
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),  # headers
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),       # no DNS in comparisons
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;newparam=6"),
    ("sip:a@b.com", "sips:a@b.com"),
    ("sip:a@b.com;user=phone", "sip:a@b.com"),
    ("sip:a@b.com;ttl=1", "sip:a@b.com"),
    ("sip:a@b.com;method=INVITE", "sip:a@b.com"),
    ("sip:a@b.com;maddr=239.1.1.1", "sip:a@b.com"),
    ("sip:a:pw1@b.com", "sip:a:pw2@b.com"),
]


@pytest.mark.parametrize("a,b", EQUIVALENT)
def test_equivalent(a, b):
    assert parse_uri(a) == parse_uri(b)
    assert parse_uri(b) == parse_uri(a)
    assert hash(parse_uri(a)) == hash(parse_uri(b))


@pytest.mark.parametrize("a,b", NOT_EQUIVALENT)
def test_not_equivalent(a, b):
    assert parse_uri(a) != parse_uri(b)
    assert parse_uri(b) != parse_uri(a)


def test_compare_with_text():
    assert parse_uri("sip:alice@atlanta.com") == "sip:alice@ATLANTA.com"
    assert parse_uri("sip:alice@atlanta.com") != "not a uri at all"


BAD = [
    ("sip:", "empty host in URI 'sip:'"),
    ("sip:@example.org", "empty user part in URI 'sip:@example.org'"),
    ("sip:user@exa mple.org", "forbidden character in URI 'sip:user@exa mple.org'"),
    ("sip:user@example.org:99999", "port out of range in URI 'sip:user@example.org:99999': 99999"),
    ("sip:user@example.org:50a", "bad port in URI 'sip:user@example.org:50a': '50a'"),
    ("sip:user@[::g]", "bad IPv6 address in URI 'sip:user@[::g]': '[::g]'"),
    ("sip:user@[::1", "bad SIP URI 'sip:user@[::1' (unbalanced '[' ']'?)"),
    ("sip:user@1.2.3.256", "bad IPv4 address in URI 'sip:user@1.2.3.256': '1.2.3.256'"),
    ("sip:user@a..b", "bad host in URI 'sip:user@a..b': 'a..b'"),
    ("sip:us%2xr@host", "bad %-escape in URI user part: 'us%2xr'"),
    ("sip:a@b;x=1?h", "bad header 'h' in URI 'sip:a@b;x=1?h' (want name=value)"),
    ("sip:a@b?<x>=1", "forbidden character in URI 'sip:a@b?<x>=1'"),
    ("nocolon", "bad URI 'nocolon' (want scheme:...)"),
    ("1sip:x", "bad URI '1sip:x' (want scheme:...)"),
    ("tel:", "bad tel URI 'tel:'"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_uris_say_what_is_wrong(text, message):
    with pytest.raises(ParseError) as err:
        parse_uri(text)
    assert str(err.value) == message
    assert err.value.status == 400
