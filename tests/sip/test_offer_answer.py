"""SDP offer/answer (RFC 3264): exact offers and answers, offers as real phones write them
(SIPp, a WebRTC browser, Linphone), rejection with port 0, hold/resume, o= versions."""

import itertools

import pytest

from labkit.sip.offer_answer import (
    ANSWER_DIRECTION,
    NegotiatedMedia,
    OfferAnswerError,
    SdpNegotiator,
    answer_direction,
    format_events,
    is_hold,
    offered_formats,
    parse_events,
)
from labkit.sip.sdp import SessionDescription


def sdp(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


SIPP_OFFER = sdp(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
)

WEBRTC_OFFER = sdp(
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:1 1 udp 2122260223 127.0.0.1 50123 typ host",
    "a=ice-ufrag:abcd",
    "a=ice-pwd:0123456789abcdefghijklmn",
    "a=fingerprint:sha-256 AA:BB",
    "a=setup:actpass",
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
)

LINPHONE_OFFER = sdp(
    "v=0",
    "o=bob 2236 3043 IN IP4 192.168.1.50",
    "s=Talk",
    "c=IN IP4 192.168.1.50",
    "t=0 0",
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
    "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:97 speex/16000",
    "a=fmtp:97 vbr=on",
    "a=rtpmap:98 speex/8000",
    "a=fmtp:98 vbr=on",
    "a=fmtp:18 annexb=yes",
    "a=rtpmap:101 telephone-event/48000",
    "a=rtpmap:99 telephone-event/16000",
    "a=rtpmap:100 telephone-event/8000",
    "a=rtcp-fb:* trr-int 1000",
)


def pbx(**options) -> SdpNegotiator:
    options.setdefault("session_id", 1234)
    return SdpNegotiator("192.0.2.10", 20000, **options)


# --- offers ---------------------------------------------------------------------------------

def test_offer_golden_text():
    offer = pbx(codecs=("pcmu", "PCMA", "g722", "opus/48000/2", "telephone-event")).create_offer()
    assert str(offer) == sdp(
        "v=0",
        "o=labkit 1234 0 IN IP4 192.0.2.10",
        "s=labkit",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8 9 111 101 110",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=rtpmap:110 telephone-event/48000",
        "a=fmtp:110 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )
    # what we write, our own parser reads back unchanged
    assert str(SessionDescription.parse(str(offer))) == str(offer)


def test_offer_variants_ipv6_one_event_rate_dynamic_l16():
    neg = SdpNegotiator("2001:db8::10", 4000, codecs=("pcma", "l16", "opus", "telephone-event/8000"),
                        session_id=7, session_version=41, ptime=30, direction="recvonly")
    assert str(neg.create_offer()) == sdp(
        "v=0",
        "o=labkit 7 41 IN IP6 2001:db8::10",
        "s=labkit",
        "c=IN IP6 2001:db8::10",
        "t=0 0",
        "m=audio 4000 RTP/AVP 8 96 111 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:96 L16/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:30",
        "a=recvonly",
    )


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"unknown codec 'gsm'; known: pcmu, pcma"):
        pbx(codecs=("pcmu", "gsm"))
    with pytest.raises(ValueError, match="at least one audio codec is needed"):
        pbx(codecs=("telephone-event",))
    with pytest.raises(ValueError, match=r"direction must be one of .*not 'both'"):
        pbx(direction="both")
    with pytest.raises(ValueError, match=r"media port must be 1..65535, not 0"):
        SdpNegotiator("192.0.2.1", 0)
    with pytest.raises(ValueError, match="prefer must be 'offer' or 'local'"):
        pbx(prefer="mine")
    with pytest.raises(ValueError, match=r"bad telephone-event list '0-x'"):
        pbx(dtmf_events="0-x")


# --- answers to real-world offers -----------------------------------------------------------

def test_answer_sipp_offer_golden_and_negotiated():
    result = pbx(codecs=("pcma", "pcmu", "telephone-event")).answer(SIPP_OFFER)
    assert str(result.sdp) == sdp(
        "v=0",
        "o=labkit 1234 0 IN IP4 192.0.2.10",
        "s=labkit",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert result.audio == NegotiatedMedia(
        index=0, remote_address="127.0.0.1", remote_port=6000, remote_rtcp_port=6001,
        local_address="192.0.2.10", local_port=20000, codec="pcmu", payload_type=0,
        local_payload_type=0, clock_rate=8000, channels=1, fmtp=None, ptime=20,
        telephone_event_pt=101, local_telephone_event_pt=101, direction="sendrecv",
        remote_hold=False, codecs=((0, "pcmu"),))
    assert result.rejected == [] and result.changed
    assert result.audio.sends and result.audio.receives
    assert result.audio.codec_info.timestamp_increment(result.audio.ptime) == 160


def test_webrtc_offer_refused_on_plain_rtp_and_accepted_on_its_profile():
    with pytest.raises(OfferAnswerError) as err:
        pbx().answer(WEBRTC_OFFER)
    assert err.value.status == 488
    assert str(err.value) == ("nothing acceptable in the offer (m-line 1: transport "
                              "UDP/TLS/RTP/SAVPF is not supported (we take RTP/AVP))")
    gateway = pbx(codecs=("opus", "pcmu", "telephone-event"), protocols=("UDP/TLS/RTP/SAVPF",))
    result = gateway.answer(WEBRTC_OFFER)
    media = result.sdp.media[0]
    assert media.proto == "UDP/TLS/RTP/SAVPF" and media.formats == ["111", "110"]
    assert media.rtpmap[110].encoding == "telephone-event" and media.fmtp[110] == "0-15"
    audio = result.audio
    assert (audio.codec, audio.payload_type, audio.clock_rate, audio.channels) == ("opus", 111, 48000, 2)
    assert audio.telephone_event_pt == 110                 # 48 kHz events for a 48 kHz codec
    assert audio.fmtp == "minptime=10;useinbandfec=1"
    assert audio.remote_rtcp_port == 9                     # from a=rtcp
    # c=0.0.0.0 beside ICE candidates is ICE's placeholder, not an RFC 2543 hold
    assert not audio.remote_hold and audio.direction == "sendrecv"


def test_linphone_offer_dynamic_types_mapped_by_name_not_number():
    formats = offered_formats(SessionDescription.parse(LINPHONE_OFFER).media[0])
    assert [(f.payload_type, f.codec) for f in formats] == [
        (96, "opus"), (97, None), (98, None), (0, "pcmu"), (8, "pcma"), (18, None),
        (101, "telephone-event"), (99, "telephone-event"), (100, "telephone-event")]
    g711 = pbx(codecs=("pcma", "pcmu", "telephone-event")).answer(LINPHONE_OFFER)
    assert g711.sdp.media[0].formats == ["0", "100"]      # te/8000 is 100 here, not 101
    assert (g711.audio.codec, g711.audio.telephone_event_pt) == ("pcmu", 100)
    assert g711.sdp.media[0].fmtp[100] == "0-15"          # no fmtp offered: events 0-15
    wide = pbx(codecs=("pcmu", "opus", "telephone-event")).answer(LINPHONE_OFFER)
    assert str(wide.sdp).split("t=0 0\r\n")[1] == sdp(
        "m=audio 20000 RTP/AVP 96 101",
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 minptime=10;useinbandfec=1",
        "a=rtpmap:101 telephone-event/48000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert (wide.audio.codec, wide.audio.payload_type, wide.audio.fmtp) == ("opus", 96, "useinbandfec=1")


def test_codec_order_prefer_and_keep():
    offer = sdp("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1", "t=0 0",
                "m=audio 5004 RTP/AVP 8 0 9", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:9 G722/8000")
    mine = ("g722", "pcmu", "pcma")
    assert pbx(codecs=mine).answer(offer).audio.codecs == ((8, "pcma"),)
    assert pbx(codecs=mine, prefer="local").answer(offer).audio.codecs == ((9, "g722"),)
    every = pbx(codecs=mine, keep="all").answer(offer)
    assert every.sdp.media[0].formats == ["8", "0", "9"]
    assert every.audio.codecs == ((8, "pcma"), (0, "pcmu"), (9, "g722"))
    local_all = pbx(codecs=mine, keep="all", prefer="local").answer(offer)
    assert local_all.sdp.media[0].formats == ["9", "0", "8"] and local_all.audio.codec == "g722"


def test_answer_never_holds_what_was_not_offered():
    offers = [SIPP_OFFER, LINPHONE_OFFER,
              WEBRTC_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP")]
    mine = ["pcmu", "pcma", "g722", "opus", "l16", "telephone-event"]
    for offer_text, n in itertools.product(offers, range(1, len(mine))):
        for prefer, keep in itertools.product(("offer", "local"), ("first", "all")):
            offer = SessionDescription.parse(offer_text).media[0]
            result = pbx(codecs=mine[:n] + ["telephone-event"], prefer=prefer, keep=keep).answer(offer_text)
            answered = result.sdp.media[0]
            assert set(answered.formats) <= set(offer.formats)
            for pt, rtpmap in answered.rtpmap.items():
                theirs = offer.rtpmap.get(pt)
                if theirs is not None:
                    assert (rtpmap.encoding.lower(), rtpmap.clock_rate) == \
                        (theirs.encoding.lower(), theirs.clock_rate)


def test_streams_rejected_with_port_zero():
    offer = sdp("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1", "t=0 0",
                "m=audio 5004 RTP/AVP 18", "a=rtpmap:18 G729/8000",
                "m=audio 5006 RTP/AVP 8",
                "m=video 5008 RTP/AVP 96", "a=rtpmap:96 H264/90000",
                "m=audio 5010 RTP/AVP 0",
                "m=audio 0 RTP/AVP 0")
    result = pbx().answer(offer)
    assert [(m.kind, m.port, m.formats) for m in result.sdp.media] == [
        ("audio", 0, ["18"]), ("audio", 20000, ["8"]), ("video", 0, ["96"]),
        ("audio", 0, ["0"]), ("audio", 0, ["0"])]
    assert result.rejected == [
        (0, "no codec in common (offered G729/8000; we have PCMU/8000, PCMA/8000)"),
        (2, "video is not supported (audio only)"),
        (3, "only one audio stream per call"),
        (4, "disabled by the offerer (port 0)"),
    ]
    assert result.audio.index == 1 and result.audio.remote_port == 5006
    assert result.audio.telephone_event_pt is None            # none was offered


def test_nothing_acceptable_is_488_and_changes_nothing():
    neg = pbx()
    offer = sdp("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1", "t=0 0",
                "m=audio 5004 RTP/AVP 3 97", "a=rtpmap:97 iLBC/8000")
    with pytest.raises(OfferAnswerError) as err:
        neg.answer(offer)
    assert err.value.status == 488
    assert str(err.value) == ("nothing acceptable in the offer (m-line 1: no codec in common "
                              "(offered 3, iLBC/8000; we have PCMU/8000, PCMA/8000))")
    assert neg.current is None
    assert neg.answer(SIPP_OFFER).sdp.origin.session_version == 0   # the 488 used no version


def test_address_family_must_match_ours():
    v6_offer = sdp("v=0", "o=- 1 1 IN IP6 2001:db8::5", "s=-", "c=IN IP6 2001:db8::5", "t=0 0",
                   "m=audio 5004 RTP/AVP 0")
    with pytest.raises(OfferAnswerError, match=r"media address 2001:db8::5 is IP6, ours \(192.0.2.10\) is IP4"):
        pbx().answer(v6_offer)
    result = SdpNegotiator("2001:db8::10", 4000, session_id=5).answer(v6_offer)
    assert result.audio.remote_address == "2001:db8::5"
    assert "c=IN IP6 2001:db8::10\r\n" in str(result.sdp)


def test_bad_descriptions_are_400():
    with pytest.raises(OfferAnswerError) as err:
        pbx().answer("v=0\r\nthis is not sdp\r\n")
    assert err.value.status == 400
    assert str(err.value).startswith("bad SDP in the offer: SDP line 2")
    no_c = sdp("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "t=0 0", "m=audio 5004 RTP/AVP 0")
    with pytest.raises(OfferAnswerError, match=r"offer m-line 1 has no c= line") as err:
        pbx().answer(no_c)
    assert err.value.status == 400


def test_ptime_echoed_when_usable():
    def offer(ptime, pt="0", rtpmap="a=rtpmap:0 PCMU/8000"):
        lines = ["v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1", "t=0 0",
                 f"m=audio 5004 RTP/AVP {pt}", rtpmap]
        return sdp(*lines, *([f"a=ptime:{ptime}"] if ptime else []))
    assert pbx().answer(offer(30)).audio.ptime == 30
    assert pbx().answer(offer(30)).sdp.media[0].ptime == 30
    assert pbx(ptime=40).answer(offer(None)).audio.ptime == 40
    opus = pbx(codecs=("opus",))
    assert opus.answer(offer(30, "111", "a=rtpmap:111 opus/48000/2")).audio.ptime == 20  # no 30 ms Opus
    assert pbx().answer(offer(None)).audio.ptime == 20


def test_telephone_event_events_intersected():
    def offer(fmtp):
        return sdp("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1", "t=0 0",
                   "m=audio 5004 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000", f"a=fmtp:96 {fmtp}")
    assert pbx().answer(offer("0-15,66")).sdp.media[0].fmtp[96] == "0-15"
    assert pbx().answer(offer("0-255")).sdp.media[0].fmtp[96] == "0-16"
    only_66 = pbx().answer(offer("66"))
    assert only_66.sdp.media[0].formats == ["0"] and only_66.audio.telephone_event_pt is None
    no_dtmf = pbx(codecs=("pcmu",)).answer(offer("0-15"))
    assert no_dtmf.sdp.media[0].formats == ["0"]
    assert parse_events("0-15, 66,70-71") == set(range(16)) | {66, 70, 71}
    assert format_events({0, 1, 2, 3, 5, 7, 8}) == "0-3,5,7-8"
    with pytest.raises(ValueError, match=r"bad telephone-event range '9-3'"):
        parse_events("9-3")


# --- direction and hold ---------------------------------------------------------------------

def test_direction_answer_table():
    assert ANSWER_DIRECTION == {"sendrecv": "sendrecv", "sendonly": "recvonly",
                                "recvonly": "sendonly", "inactive": "inactive"}
    for offered, answered in ANSWER_DIRECTION.items():
        assert answer_direction(offered) == answered
    # when we hold ourselves the answer narrows further
    expected = {
        ("sendrecv", "sendonly"): "sendonly", ("sendrecv", "recvonly"): "recvonly",
        ("sendrecv", "inactive"): "inactive", ("sendonly", "sendonly"): "inactive",
        ("sendonly", "recvonly"): "recvonly", ("recvonly", "sendonly"): "sendonly",
        ("recvonly", "recvonly"): "inactive", ("inactive", "sendrecv"): "inactive",
    }
    for (offered, local), answered in expected.items():
        assert answer_direction(offered, local) == answered
    with pytest.raises(ValueError, match=r"offered direction must be one of"):
        answer_direction("send")


def test_hold_and_resume_between_two_negotiators():
    alice = SdpNegotiator("192.0.2.10", 20000, session_id=111)
    bob = SdpNegotiator("192.0.2.20", 30000, session_id=222)
    first = bob.answer(str(alice.create_offer()))
    alice.receive_answer(str(first.sdp))
    assert alice.current.audio.direction == "sendrecv" and first.sdp.origin.session_version == 0
    alice.hold()
    hold_offer = alice.create_offer()
    assert hold_offer.origin.session_id == "111" and hold_offer.origin.session_version == 1
    assert hold_offer.media[0].direction == "sendonly" and is_hold(hold_offer.media[0])
    at_bob = bob.answer(str(hold_offer))
    assert at_bob.audio.remote_hold and at_bob.audio.direction == "recvonly"
    assert not at_bob.audio.sends and at_bob.audio.receives
    assert at_bob.sdp.media[0].direction == "recvonly" and at_bob.sdp.origin.session_version == 1
    at_alice = alice.receive_answer(str(at_bob.sdp))
    assert at_alice.audio.direction == "sendonly" and at_alice.audio.sends
    alice.resume()
    resume_offer = alice.create_offer()
    assert resume_offer.origin.session_version == 2
    back = bob.answer(str(resume_offer))
    assert back.audio.direction == "sendrecv" and not back.audio.remote_hold
    assert alice.receive_answer(str(back.sdp)).audio.direction == "sendrecv"
    # hold with inactive: neither side sends
    alice.hold(inactive=True)
    inactive = bob.answer(str(alice.create_offer()))
    assert inactive.audio.direction == "inactive" and inactive.audio.remote_hold


def test_rfc2543_hold_with_zero_address():
    old_hold = sdp("v=0", "o=- 1 2 IN IP4 198.51.100.1", "s=-", "c=IN IP4 0.0.0.0", "t=0 0",
                   "m=audio 5004 RTP/AVP 0")
    result = pbx().answer(old_hold)
    assert result.audio.remote_hold and result.audio.remote_address == "0.0.0.0"
    assert result.audio.direction == "recvonly" and not result.audio.sends
    assert result.sdp.media[0].direction == "recvonly"


def test_session_level_direction_applies_to_its_media():
    offer = sdp("v=0", "o=- 1 2 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1", "t=0 0",
                "a=inactive", "m=audio 5004 RTP/AVP 0")
    result = pbx().answer(offer)
    assert result.audio.remote_hold and result.audio.direction == "inactive"
    assert result.sdp.media[0].direction == "inactive"
    # a media-level attribute wins over the session's
    result = pbx().answer(offer + "a=sendrecv\r\n")
    assert not result.audio.remote_hold and result.audio.direction == "sendrecv"


def test_session_versions_and_unchanged_reoffers():
    neg = pbx()
    first = neg.create_offer()
    neg.cancel_offer()
    assert neg.create_offer().origin.session_version == first.origin.session_version == 0
    neg.cancel_offer()
    neg.set_local(port=20002)
    moved = neg.create_offer()
    assert moved.origin.session_version == 1 and moved.media[0].port == 20002
    neg.receive_answer(SIPP_OFFER.replace("2353687637", "1"))
    assert neg.create_offer().origin.session_version == 1   # nothing changed: same version
    with pytest.raises(OfferAnswerError) as err:
        neg.create_offer()
    assert err.value.status == 491


def test_unchanged_remote_reoffer_is_flagged():
    neg = pbx()
    assert neg.answer(SIPP_OFFER).changed
    again = neg.answer(SIPP_OFFER)
    assert not again.changed and again.sdp.origin.session_version == 0
    newer = neg.answer(SIPP_OFFER.replace("2353687637", "2353687638").replace("6000", "6002"))
    assert newer.changed and newer.audio.remote_port == 6002
    assert newer.sdp.origin.session_version == 0   # our answer itself did not change


def test_reoffer_keeps_payload_types_bound_by_an_earlier_answer():
    neg = pbx(codecs=("opus", "pcmu", "telephone-event"))
    neg.answer(LINPHONE_OFFER)                     # opus was 96 and te/48000 101 in this session
    reoffer = neg.create_offer()
    # te/8000 would customarily be 101, which now means te/48000, and 96-100 are the peer's:
    # it takes the first number nobody has used in this session
    assert reoffer.media[0].formats == ["96", "0", "101", "102"]
    assert [str(r) for r in reoffer.media[0].rtpmap.values()] == [
        "96 opus/48000/2", "0 PCMU/8000", "101 telephone-event/48000", "102 telephone-event/8000"]


# --- receiving answers ----------------------------------------------------------------------

def test_answer_with_other_payload_numbers():
    neg = pbx(codecs=("opus", "pcmu", "telephone-event"))
    neg.create_offer()
    answer = sdp("v=0", "o=- 5 5 IN IP4 203.0.113.5", "s=-", "c=IN IP4 203.0.113.5", "t=0 0",
                 "m=audio 40000 RTP/AVP 98 97", "a=rtpmap:98 OPUS/48000/2",
                 "a=rtpmap:97 telephone-event/48000", "a=fmtp:97 0-15", "a=ptime:40",
                 "a=rtcp:40005")
    audio = neg.receive_answer(answer).audio
    assert (audio.codec, audio.payload_type, audio.local_payload_type) == ("opus", 98, 111)
    assert (audio.telephone_event_pt, audio.local_telephone_event_pt) == (97, 110)
    assert (audio.remote_address, audio.remote_port, audio.remote_rtcp_port) == ("203.0.113.5", 40000, 40005)
    assert audio.ptime == 40 and audio.local_port == 20000 and neg.pending_offer is None


def test_answer_errors_and_rejections():
    neg = pbx()
    with pytest.raises(OfferAnswerError, match="we have no offer pending") as err:
        neg.receive_answer(SIPP_OFFER)
    assert err.value.status == 400
    neg.create_offer()
    with pytest.raises(OfferAnswerError) as err:
        neg.answer(SIPP_OFFER)
    assert (err.value.status, str(err.value)) == (491, "offer glare: our own offer is still pending")
    two = SIPP_OFFER + "m=audio 6002 RTP/AVP 0\r\n"
    with pytest.raises(OfferAnswerError, match=r"the answer has 2 m-lines, our offer had 1 \(RFC 3264 §6\)"):
        neg.receive_answer(two)
    stranger = SIPP_OFFER.replace("RTP/AVP 0 101", "RTP/AVP 9").replace(
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:9 G722/8000")
    result = neg.receive_answer(stranger)
    assert result.audio is None and result.rejected == [(0, "the answer holds no codec we offered")]
    neg.create_offer()
    refused = neg.receive_answer(SIPP_OFFER.replace("m=audio 6000", "m=audio 0"))
    assert refused.audio is None and refused.rejected == [(0, "rejected by the answerer (port 0)")]


# --- whatever a peer sends: an answer or an OfferAnswerError, never a crash --------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_ENCODINGS = ["PCMU/8000", "pcma/8000", "G722/8000", "opus/48000/2", "opus/48000", "L16/8000",
              "telephone-event/8000", "telephone-event/48000", "speex/16000", "PCMU", "PCMU/x", "x"]
_m_line = st.fixed_dictionaries({
    "kind": st.sampled_from(["audio", "video", "audio"]),
    "port": st.sampled_from([0, 9, 5004, 65535]),
    "proto": st.sampled_from(["RTP/AVP", "RTP/AVP", "RTP/SAVP"]),
    "pts": st.lists(st.sampled_from([0, 3, 8, 9, 13, 18, 96, 97, 101, 111, 127, 200]), min_size=1,
                    max_size=6),
    "rtpmaps": st.lists(st.tuples(st.sampled_from([0, 8, 96, 97, 101, 111, 200]),
                                  st.sampled_from(_ENCODINGS)), max_size=5),
    "extra": st.lists(st.sampled_from([
        "a=ptime:20", "a=ptime:30", "a=ptime:abc", "a=ptime:0", "a=ptime:2.5", "a=sendonly",
        "a=recvonly", "a=inactive", "a=fmtp:101 0-15", "a=fmtp:101 x-y", "a=fmtp:101 15-0",
        "a=fmtp:97 0-16,300", "a=rtcp:99999", "a=rtcp:5005 IN IP4 198.51.100.1",
        "c=IN IP4 0.0.0.0", "a=candidate:1 1 udp 1 127.0.0.1 9 typ host"]), max_size=4),
})


@settings(max_examples=150, deadline=None)
@given(st.lists(_m_line, max_size=3), st.booleans(), st.sampled_from(["offer", "local"]),
       st.sampled_from(["first", "all"]))
def test_any_offer_gives_an_answer_or_a_clear_error(m_lines, session_c, prefer, keep):
    lines = ["v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-"]
    lines += ["c=IN IP4 198.51.100.1"] if session_c else []
    lines += ["t=0 0"]
    for m in m_lines:
        lines.append(f"m={m['kind']} {m['port']} {m['proto']} " + " ".join(map(str, m["pts"])))
        extra = [e for e in m["extra"] if e.startswith("c=")][:1]
        lines += extra + [f"a=rtpmap:{pt} {enc}" for pt, enc in m["rtpmaps"]]
        lines += [e for e in m["extra"] if not e.startswith("c=")]
    offer_text = sdp(*lines)
    negotiator = pbx(codecs=("pcmu", "opus", "g722", "telephone-event"), prefer=prefer, keep=keep)
    try:
        result = negotiator.answer(offer_text)
    except OfferAnswerError as err:
        assert err.status in (400, 488) and str(err)
        return
    offer = SessionDescription.parse(offer_text)
    assert len(result.sdp.media) == len(offer.media)
    for offered, answered in zip(offer.media, result.sdp.media):
        assert set(answered.formats) <= set(offered.formats)
        assert answered.port in (0, 20000)
    audio = result.audio
    assert 0 <= audio.payload_type <= 127 and audio.codec in ("pcmu", "opus", "g722")
    assert audio.ptime > 0
    if audio.remote_rtcp_port is None:   # no port left above 65535 and no a=rtcp
        assert audio.remote_port == 65535
    else:
        assert 0 < audio.remote_rtcp_port <= 65535
    # the payload types the answer binds are what its accepted m-lines say, read back
    read_back = {}
    for answered in result.sdp.media:
        for f in offered_formats(answered):
            key = f"telephone-event/{f.clock_rate}" if f.is_telephone_event else f.codec
            if answered.port and key:
                read_back[key] = f.payload_type
    assert negotiator.bound_payload_types == read_back
    # and the answer, given back to an offerer, is understood
    SessionDescription.parse(str(result.sdp))


def test_offered_formats_follow_each_m_line_not_a_remembered_one():
    """offered_formats remembers what it read per m-line: a changed rtpmap or format list
    must be read again, and a caller changing the list it got must not change the next one."""
    sdp = ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
           "m=audio 4000 RTP/AVP 96 101\r\na=rtpmap:96 {enc}/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
    pcmu = SessionDescription.parse(sdp.format(enc="PCMU")).media[0]
    pcma = SessionDescription.parse(sdp.format(enc="PCMA")).media[0]
    first = offered_formats(pcmu)
    assert [f.codec for f in first] == ["pcmu", "telephone-event"]
    first.clear()
    assert [f.codec for f in offered_formats(pcmu)] == ["pcmu", "telephone-event"]
    assert [f.codec for f in offered_formats(pcma)] == ["pcma", "telephone-event"]
    pcma.formats = ["101"]
    assert [f.payload_type for f in offered_formats(pcma)] == [101]
