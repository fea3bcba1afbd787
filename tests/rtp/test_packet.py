"""RTP/RTCP wire format (RFC 3550) and telephone-event payloads (RFC 4733)."""
import struct

import pytest

from labkit.rtp.packet import (
    Bye, ReceiverReport, ReportBlock, RtpError, RtpPacket, SenderReport, SourceDescription,
    TelephoneEvent, UnknownRtcp, build_compound, is_rtcp, ntp_from_unix, ntp_middle32,
    parse_rtcp, unix_from_ntp, SDES_CNAME,
)

# A hand-assembled G.711 packet: V=2, no P/X/CC, M=1, PT=0, seq 4660, ts 0x01020304, SSRC 0xDEADBEEF
HAND_MADE = bytes.fromhex("8080 1234 01020304 deadbeef") + b"\xff" * 4


def test_parse_hand_decoded_header():
    p = RtpPacket.parse(HAND_MADE)
    assert (p.payload_type, p.marker, p.sequence_number) == (0, True, 0x1234)
    assert (p.timestamp, p.ssrc, p.payload, p.csrc) == (0x01020304, 0xDEADBEEF, b"\xff" * 4, [])
    assert bytes(p) == HAND_MADE


def test_round_trip_with_csrc_extension_padding():
    p = RtpPacket(payload_type=111, sequence_number=65535, timestamp=2**32 - 1, ssrc=7,
                  payload=b"opus", marker=False, csrc=[1, 2, 3], extension=(0xBEDE, b"\x10\xaa\x00\x00"),
                  padding=3)
    data = bytes(p)
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert len(data) == 12 + 12 + 4 + 4 + 4 + 3
    q = RtpPacket.parse(data)
    assert q == p


@pytest.mark.parametrize("data, message", [
    (b"\x80\x00\x00", "RTP packet too short: 3 bytes, header needs 12"),
    (bytes.fromhex("4000 0001 00000000 00000001"), "RTP version 1, expected 2"),
    (bytes.fromhex("8200 0001 00000000 00000001 00000009"), "RTP packet has truncated CSRC list"),
    (bytes.fromhex("9000 0001 00000000 00000001 bede"), "RTP packet has truncated extension header"),
    (bytes.fromhex("9000 0001 00000000 00000001 bede0002 00000000"), "RTP packet has truncated extension"),
    (bytes.fromhex("a000 0001 00000000 00000001 0000 0009"), "RTP packet padding longer than payload"),
    (bytes.fromhex("a000 0001 00000000 00000001 0000 0000"), "RTP packet has padding bit set but padding length 0"),
])
def test_malformed_rtp_raises_specific_error(data, message):
    with pytest.raises(RtpError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == message


def test_local_misuse_is_a_value_error_not_rtp_error():
    with pytest.raises(ValueError, match="sequence number 70000"):
        RtpPacket(sequence_number=70000)
    with pytest.raises(ValueError, match="at most 15 CSRCs"):
        RtpPacket(csrc=list(range(16)))


def test_rtcp_demultiplexing():
    assert is_rtcp(bytes(ReceiverReport(1)))
    assert not is_rtcp(HAND_MADE)


def test_ntp_conversion_round_trips():
    t = 1_700_000_000.25
    ntp = ntp_from_unix(t)
    assert ntp >> 32 == 1_700_000_000 + 2_208_988_800
    assert (ntp & 0xFFFFFFFF) == 1 << 30
    assert abs(unix_from_ntp(ntp) - t) < 1e-9
    assert ntp_middle32(ntp) == ((ntp >> 16) & 0xFFFFFFFF)


def test_sender_report_round_trip_with_negative_cumulative_loss():
    block = ReportBlock(ssrc=0xABC, fraction_lost=64, cumulative_lost=-3, highest_sequence=70000,
                        jitter=12, lsr=0x12345678, dlsr=65536)
    sr = SenderReport(ssrc=9, ntp_timestamp=ntp_from_unix(1e9), rtp_timestamp=160, packet_count=50,
                      octet_count=8000, reports=[block])
    data = bytes(sr)
    assert len(data) == 28 + 24 and data[1] == 200
    assert struct.unpack_from("!H", data, 2)[0] == len(data) // 4 - 1
    assert parse_rtcp(data) == [sr]


def test_compound_rr_sdes_bye_round_trip():
    packets = [
        ReceiverReport(5, [ReportBlock(6, cumulative_lost=10, highest_sequence=100)]),
        SourceDescription([(5, [(SDES_CNAME, "alice@labkit")])]),
        Bye([5], reason="hang up"),
    ]
    data = build_compound(packets)
    assert len(data) % 4 == 0
    parsed = parse_rtcp(data)
    assert parsed == packets
    assert parsed[1].cname(5) == "alice@labkit"


def test_unknown_rtcp_type_kept_raw():
    app = UnknownRtcp(204, 1, b"\x00\x00\x00\x05name" + b"data")
    assert parse_rtcp(bytes(app)) == [app]


def test_compound_must_start_with_report():
    with pytest.raises(ValueError, match="must start with an SR or RR"):
        build_compound([Bye([1])])


@pytest.mark.parametrize("data, message", [
    (b"\x80\xc9", "RTCP packet too short: 2 bytes"),
    (bytes.fromhex("81c9 0007 00000001"), "RTCP packet type 201 length 32 exceeds datagram"),
    (bytes.fromhex("81c9 0001 00000001"), "RTCP RR has truncated report blocks"),
    (bytes.fromhex("80c8 0001 00000001"), "RTCP SR too short for sender info"),
    (bytes.fromhex("40c9 0001 00000001"), "RTCP version 1, expected 2"),
    (bytes.fromhex("81ca 0002 00000001 0105 6162"), "RTCP SDES item truncated"),
    (bytes.fromhex("80c9 0001 00000001 0000"), "RTCP compound packet has trailing bytes"),
])
def test_malformed_rtcp_raises_specific_error(data, message):
    with pytest.raises(RtpError) as info:
        parse_rtcp(data)
    assert str(info.value) == message


def test_telephone_event_wire_format():
    ev = TelephoneEvent.for_digit("5", end=True, volume=10, duration=800)
    assert bytes(ev) == bytes([5, 0x80 | 10, 800 >> 8, 800 & 0xFF])
    back = TelephoneEvent.parse(bytes(ev))
    assert back == ev and back.digit == "5"
    assert TelephoneEvent.for_digit("#").event == 11
    assert TelephoneEvent(16).digit is None  # flash and other named events have no digit


def test_telephone_event_errors():
    with pytest.raises(RtpError, match="telephone-event payload too short: 3 bytes"):
        TelephoneEvent.parse(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="not a DTMF digit: 'x'"):
        TelephoneEvent.for_digit("x")
    with pytest.raises(ValueError, match="volume 64 outside"):
        TelephoneEvent(1, volume=64)


# --- property tests: any bytes either parse or raise RtpError; valid packets round-trip ---------
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_never_crash_the_parsers(data):
    for parse in (RtpPacket.parse, parse_rtcp, TelephoneEvent.parse):
        try:
            parse(data)
        except RtpError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    pt=st.integers(0, 127), seq=st.integers(0, 65535), ts=st.integers(0, 2**32 - 1),
    ssrc=st.integers(0, 2**32 - 1), marker=st.booleans(), payload=st.binary(max_size=200),
    csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15), padding=st.integers(0, 255),
    ext=st.one_of(st.none(), st.tuples(st.integers(0, 65535), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4)))),
)
def test_any_valid_packet_round_trips(pt, seq, ts, ssrc, marker, payload, csrc, padding, ext):
    p = RtpPacket(pt, seq, ts, ssrc, payload, marker, csrc, ext, padding)
    assert RtpPacket.parse(bytes(p)) == p
