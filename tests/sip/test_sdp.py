"""labkit.sip.sdp: parse, model and build session descriptions (RFC 8866)."""
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
