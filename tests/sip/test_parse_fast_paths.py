"""The parser's shortcuts read what the plain way reads (differential tests).

Possessive runs (``++``, ``*+``) in the usual-shape patterns must match exactly what the same
pattern with ordinary runs matches; header parameters built on first use (and a lone ``;tag=`` or
``;branch=`` read without building them) must equal the Params built eagerly from the same text.
"""
import random
import re

import pytest

from labkit.sip import NameAddr, ParseError, Via
from labkit.sip import headers as H
from labkit.sip import sdp as S
from labkit.sip import uri as U

SEEDS = [
    'Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl',
    '"A \\"b\\"" <sip:a@b:5060;transport=tcp;lr>;tag=1;TAG=2;q=0.5',
    "Bob <sip:bob@biloxi.example.com>",
    "<sip:a;b@c@d>;expires=60",
    "sip:user@host.example.com:5062;tag=x;Tag",
    "one two <sips:x@[::1]:5>;+sip.instance=abc",
    "SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9",
    "SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bKx;received=10.0.0.1",
    "SIP/2.0/WSS [2001:db8::1]:443;BRANCH=z9hG4bKy",
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 h.example.com\r\ns=-\r\n"
    "c=IN IP4 192.0.2.101\r\nt=0 0\r\n",
]
NOISE = list(' \t;:=<>"\\@,.?&%/[]*+-_~!\'()09aZ\r\n\x00é') + ["tag", ";tag=", ";branch=", "sip:"]


def _mutations(count: int, seed: int = 7):
    rng = random.Random(seed)
    for _ in range(count):
        text = list(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randint(0, len(text))
            if rng.random() < 0.4 and text:
                del text[min(pos, len(text) - 1)]
            else:
                text.insert(pos, rng.choice(NOISE))
        yield "".join(text)


def _backtracking(pattern: re.Pattern) -> re.Pattern:
    """The same pattern with every possessive run made ordinary."""
    return re.compile(pattern.pattern.replace("++", "+").replace("*+", "*"), pattern.flags)


POSSESSIVE = [H._NAME_ADDR_USUAL_RE, H._ADDR_SPEC_USUAL_RE, H._VIA_USUAL_RE,
              H._SIMPLE_PARAMS_RE, U._SIP_USUAL_RE, S._USUAL_START_RE]


@pytest.mark.parametrize("pattern", POSSESSIVE, ids=lambda p: p.pattern[:30])
def test_possessive_patterns_match_like_backtracking_ones(pattern):
    plain = _backtracking(pattern)
    assert plain.pattern != pattern.pattern    # there was something possessive to undo
    matched = 0
    for text in list(SEEDS) + list(_mutations(6000)):
        for start in (0, text.find("<") + 1, text.find(";")):
            a, b = pattern.match(text, max(start, 0)), plain.match(text, max(start, 0))
            assert (a and (a.span(), a.groups())) == (b and (b.span(), b.groups())), text
            matched += a is not None
    assert matched > 100    # the usual shapes do occur among the samples


def _read(parse, text):
    try:
        return parse(text)
    except ParseError:
        return None


def test_header_params_built_on_first_use_equal_eager_ones():
    checked = 0
    for text in list(SEEDS) + list(_mutations(6000, seed=11)):
        for kind, key in ((NameAddr, "tag"), (Via, "branch")):
            lazy = _read(kind.parse, text)
            if lazy is None:
                continue
            first = lazy.tag if kind is NameAddr else lazy.branch   # before params exist
            params = lazy.params
            assert first == (params._items.get(key) or (None, None))[1], text
            again = kind.parse(text)   # params first, then the tag / branch from them
            assert again.params.items() == params.items()
            assert (again.tag if kind is NameAddr else again.branch) == first
            assert str(again) == str(lazy)
            checked += 1
    assert checked > 500


def test_lone_param_reads_like_params():
    for rest in (";tag=x", ";TAG=Y", ";tag", ";tags=1", ";branch=z9hG4bK1", ";Branch=b"):
        params = H._split_simple_params(rest)
        for key in ("tag", "branch"):
            assert H._lone_param(rest, key) == (params._items.get(key) or (None, None))[1]


def test_possessive_header_split_cuts_like_the_backtracking_one():
    from pathlib import Path

    from labkit.sip import message as M
    plain = _backtracking(M._HEADER_SPLIT_RE)
    assert plain.pattern != M._HEADER_SPLIT_RE.pattern
    rng = random.Random(5)
    heads = [p.read_bytes().decode("utf-8", "replace").partition("\r\n\r\n")[0]
             for p in sorted((Path(__file__).parent.parent / "data" / "sip").glob("*.sip"))]
    for _ in range(4000):
        text = list(rng.choice(heads))
        for _ in range(rng.randint(1, 4)):
            text.insert(rng.randint(0, len(text)), rng.choice([" ", "\t", ":", "\r\n", "\r", "\n"]))
        text = "".join(text)
        assert M._HEADER_SPLIT_RE.split(text) == plain.split(text), text


def test_parsed_values_still_pickle():
    """What is kept for later (a pattern match) must not stop a parsed value from pickling."""
    import pickle
    from pathlib import Path

    from labkit.sip import parse
    na = NameAddr.parse('Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl')
    again = pickle.loads(pickle.dumps(na))
    assert again == na and again.tag == "9fxced76sl" and again.display == "Alice"
    assert pickle.loads(pickle.dumps(NameAddr.STAR)) is NameAddr.STAR
    via = Via.parse("SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9")
    assert pickle.loads(pickle.dumps(via)) == via
    data = (Path(__file__).parent.parent / "data" / "sip" / "rfc3261_invite.sip").read_bytes()
    msg = parse(data)
    copy = pickle.loads(pickle.dumps(msg))
    assert copy == msg and bytes(copy) == data and str(copy.uri) == "sip:bob@biloxi.example.com"


@pytest.mark.parametrize("port, expected", [
    ("49172", (49172, None)), ("51372/2", (51372, 2)), ("5000/", (5000, None)),
    ("65535", (65535, None)), ("65536", "bad port"), ("5000/x", "bad port"), ("/2", "bad port"),
    ("x", "bad port")])
def test_media_port_with_and_without_a_count(port, expected):
    """The usual m= port (digits only) skips the /count split; every other spelling reads as
    the split reads it."""
    from labkit.sip.sdp import SessionDescription
    text = f"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
    try:
        media = SessionDescription.parse(text).media[0]
    except ParseError as err:
        assert expected in str(err)
    else:
        assert (media.port, media.port_count) == expected
