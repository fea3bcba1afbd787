"""labkit.sip.sdp: parse, model and build session descriptions (RFC 8866)."""
import gc

import pytest

from labkit.sip import ParseError
from labkit.sip.sdp import Connection, Media, Origin, RtpMap, SessionDescription, Timing

OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844527 IN IP4 atlanta.example.com\r\n"
    "s=Lab call\r\n"
    "i=A call with two media\r\n"
    "u=http://example.com/call\r\n"
    "e=alice@example.com\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "b=AS:256\r\n"
    "t=0 0\r\n"
    "a=sendonly\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "m=video 51372/2 RTP/AVP 96\r\n"
    "c=IN IP6 2001:db8::2\r\n"
    "b=TIAS:1000000\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n"
    "a=recvonly\r\n"
    "m=audio 0 RTP/SAVP 111\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
)


def test_parse_the_model():
    sd = SessionDescription.parse(OFFER)
    assert sd.origin == Origin("alice", "2890844526", 2890844527, "IN", "IP4", "atlanta.example.com")
    assert (sd.name, sd.info, sd.uri, sd.emails) == (
        "Lab call", "A call with two media", "http://example.com/call", ["alice@example.com"])
    assert sd.connection == Connection("IN", "IP4", "192.0.2.10")
    assert sd.bandwidths == [("AS", 256)] and sd.times == [Timing(0, 0)]
    audio, video, opus = sd.media
    assert (audio.kind, audio.port, audio.proto, audio.formats) == ("audio", 49170, "RTP/AVP", ["0", "8", "101"])
    assert audio.payload_types == [0, 8, 101]
    assert audio.rtpmap == {0: RtpMap(0, "PCMU", 8000), 8: RtpMap(8, "PCMA", 8000),
                            101: RtpMap(101, "telephone-event", 8000)}
    assert audio.fmtp == {101: "0-16"} and audio.ptime == 20
    assert audio.connection is None and audio.address == "192.0.2.10"   # session-level c=
    assert audio.direction == "sendonly"                                 # session-level a=
    assert (video.port, video.port_count) == (51372, 2)
    assert video.connection == Connection("IN", "IP6", "2001:db8::2") and video.address == "2001:db8::2"
    assert video.direction == "recvonly" and video.bandwidths == [("TIAS", 1000000)]
    assert video.fmtp[96] == "profile-level-id=42e01f;packetization-mode=1"
    assert opus.port == 0 and opus.rtpmap[111] == RtpMap(111, "opus", 48000, 2)


def test_round_trip_is_exact():
    assert str(SessionDescription.parse(OFFER)) == OFFER
    assert SessionDescription.parse(OFFER.encode()) == SessionDescription.parse(OFFER)


def test_bare_lf_lines_are_accepted():
    sd = SessionDescription.parse(OFFER.replace("\r\n", "\n"))
    assert str(sd) == OFFER


def test_multicast_connection():
    assert Connection.parse("IN IP4 224.2.1.1/127/3") == Connection("IN", "IP4", "224.2.1.1", 127, 3)
    assert str(Connection.parse("IN IP4 224.2.1.1/127/3")) == "IN IP4 224.2.1.1/127/3"
    assert Connection.parse("IN IP6 ff15::101/3") == Connection("IN", "IP6", "ff15::101", None, 3)


def test_build_an_answer():
    sd = SessionDescription(origin=Origin("labkit", "42", 1, "IN", "IP4", "127.0.0.1"),
                            connection=Connection("IN", "IP4", "127.0.0.1"))
    audio = sd.add_media(Media("audio", 40000, "RTP/AVP", [0, 101]))
    audio.add_attribute("rtpmap", "0 PCMU/8000")
    audio.add_attribute("rtpmap", "101 telephone-event/8000")
    audio.add_attribute("fmtp", "101 0-16")
    audio.add_attribute("ptime", "20")
    audio.set_direction("sendrecv")
    text = str(sd)
    assert text == ("v=0\r\no=labkit 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
                    "a=sendrecv\r\n")
    again = SessionDescription.parse(text)
    assert again == sd and again.media[0].address == "127.0.0.1"
    audio.set_direction("inactive")
    assert audio.get_attributes("inactive") == [""] and audio.get_attribute("sendrecv") is None
    with pytest.raises(ValueError):
        audio.set_direction("sideways")


@pytest.mark.parametrize("text,message", [
    ("", "SDP line 1: must be v=0"),
    ("v=1\r\n", "SDP line 1: must be v=0"),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\n", "SDP is missing its t= line"),
    ("v=0\r\ns=-\r\nt=0 0\r\n", "SDP is missing its o= line"),
    ("v=0\r\no=a 1 2 IN IP4\r\n", "SDP line 2 ('o=a 1 2 IN IP4'): bad origin 'a 1 2 IN IP4' "
                                  "(want: user sess-id sess-version IN IP4 address)"),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n",
     "SDP line 5 ('m=audio x RTP/AVP 0'): bad port 'x'"),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio\r\n",
     "SDP line 5 ('m=audio'): want: m=<media> <port> <proto> <fmt> ..."),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nq=what\r\n",
     "SDP line 5 ('q=what'): unexpected line type 'q' here"),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\ns=again\r\n",
     "SDP line 6 ('s=again'): unexpected line type 's' in a media section"),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.5\r\n",
     "SDP line 6 ('c=IN IP4 1.2.3.5'): more than one c= line at one level"),
    ("v=0\r\nno equals sign\r\n", "SDP line 2: 'no equals sign' is not <type>=<value>"),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nb=AS\r\n", "SDP line 5 ('b=AS'): want: b=<type>:<kbit/s>"),
    ("v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=now\r\n", "SDP line 4 ('t=now'): want: t=<start> <stop> (NTP seconds)"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(ParseError) as err:
        SessionDescription.parse(text)
    assert str(err.value) == message


def test_not_utf8():
    with pytest.raises(ParseError, match="SDP is not UTF-8 text"):
        SessionDescription.parse(b"v=0\r\ns=\xff\r\n")


# Shapes around the one-match start (v= o= s= [c=] t=0 0): with CRLF the fast start may take
# them, with bare LF only the line loop does; both must read the same thing or the same error.
START_VARIANTS = [
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\n",
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n",
    "v=0\r\no=a  1 2 IN IP4 h\r\ns=x y\r\nt=0 0\r\n",                       # two spaces in o=
    "v=0\r\no=a \u0661 2 IN IP4 h\r\ns=-\r\nt=0 0\r\n",                     # Arabic-Indic digit
    "v=0\r\no=a 1 \u0662 IN IP4 h\r\ns=-\r\nt=0 0\r\n",                     # ... as version: bad
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nc=IN IP4 224.2.1.1/127\r\nt=0 0\r\n",  # multicast c=
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nc=IN IP4\r\nt=0 0\r\n",                 # short c=: bad
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 1\r\nc=IN IP4 1.2.3.5\r\n",
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nc=IN IP4 1.2.3.5\r\n",
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\n\r\n\r\n",                  # trailing empty lines
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\n\r\nm=audio 1 RTP/AVP 0\r\n",  # an empty line
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nr=7d 1h 0 25h\r\n",
    "v=0\r\ns=-\r\no=a 1 2 IN IP4 h\r\nt=0 0\r\n",                          # s= before o=
    "v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nt=0 0",                              # no final CRLF
]


def _read(text: str):
    try:
        sd = SessionDescription.parse(text)
    except ParseError as err:
        return str(err)
    return (sd.lines(), sd.origin, sd.name, sd.connection, sd.times, sd.attributes,
            [(m.port, m.formats, m.address, m.direction, m.attributes) for m in sd.media])


@pytest.mark.parametrize("text", START_VARIANTS)
def test_usual_start_reads_like_the_line_loop(text):
    assert _read(text) == _read(text.replace("\r\n", "\n"))


def test_fast_start_results():
    sd = SessionDescription.parse(START_VARIANTS[1])
    assert sd.origin == Origin("a", "1", 2, "IN", "IP4", "h") and sd.name == ""
    assert sd.connection == Connection("IN", "IP4", "10.0.0.1") and sd.times == [Timing(0, 0)]
    assert sd.media[0].address == "10.0.0.1" and sd.media[0].direction == "sendonly"
    assert str(sd) == START_VARIANTS[1]
    with pytest.raises(ParseError, match=r"^SDP line 2 .*bad origin"):
        SessionDescription.parse(START_VARIANTS[4])
    with pytest.raises(ParseError, match=r"^SDP line 6 .*more than one c= line"):
        SessionDescription.parse(START_VARIANTS[8])


def test_media_keeps_the_session_level_without_a_reference_cycle():
    """A parsed body is freed by reference counting alone (no work for the cyclic GC), and a
    media section kept after its session still falls back to the session's c= and a=."""
    gc.collect()
    gc.disable()
    try:
        SessionDescription.parse(OFFER)
        assert gc.collect() == 0
    finally:
        gc.enable()
    audio = SessionDescription.parse(OFFER).media[0]
    assert audio.address == "192.0.2.10" and audio.direction == "sendonly"
    built = SessionDescription(connection=Connection("IN", "IP4", "192.0.2.1"))
    media = built.add_media(Media("audio", 4000, "RTP/AVP", [0]))
    built.connection = Connection("IN", "IP4", "192.0.2.2")     # changed after adding the media
    built.set_direction("recvonly")
    assert media.address == "192.0.2.2" and media.direction == "recvonly"
