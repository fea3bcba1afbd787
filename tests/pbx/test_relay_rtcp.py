"""The relay's own RTCP while it transcodes (labkit/pbx/media/rtcp_reports.py): each phone gets
an SR about the stream the relay sends it and a report block about the stream it sends, not the
other phone's reports (whose SSRCs and numbers name a stream it never sees)."""
from __future__ import annotations

import asyncio

import pytest

from labkit.pbx.media import MediaRelay, PortAllocator
from labkit.pbx.media.rtcp_reports import LegReports
from labkit.rtp.packet import (
    SDES_CNAME, Bye, ReceiverReport, SenderReport, SourceDescription, build_compound, ntp_from_unix,
    ntp_middle32, parse_rtcp,
)
from labkit.rtp.stats import ReceiverStats

from .test_relay import Phone, arun, rtp  # noqa: F401  (arun is a fixture)

PORTS = (21500, 21599)


async def phones_with_rtcp():
    """Two phones, each an RTP socket and an RTCP socket on the port above (as SDP implies)."""
    for _ in range(20):
        rtp_a, rtp_b = await Phone.open(), await Phone.open()
        try:
            rtcp_a = await Phone.open(rtp_a.address[1] + 1)
            rtcp_b = await Phone.open(rtp_b.address[1] + 1)
            return rtp_a, rtcp_a, rtp_b, rtcp_b
        except OSError:                  # the port above was taken: try another pair
            rtp_a.close()
            rtp_b.close()
    pytest.fail("no two free even/odd port pairs on loopback")


async def transcoding_call(now):
    a, a_rtcp, b, b_rtcp = await phones_with_rtcp()
    relay = await MediaRelay(PortAllocator("127.0.0.1", *PORTS), clock=lambda: now[0]).open()
    relay.a.configure(remote=a.address, codec="pcmu", dtmf_payload_type=101)
    relay.b.configure(remote=b.address, codec="pcma", dtmf_payload_type=101)
    return relay, a, a_rtcp, b, b_rtcp


def rtcp_port(leg):
    return (leg.local[0], leg.local[1] + 1)


def test_a_transcoding_relay_reports_to_each_phone_on_its_own_and_says_bye(arun):
    async def main():
        now = [100.0]
        relay, a, a_rtcp, b, b_rtcp = await transcoding_call(now)
        assert relay.modes == {"a->b": "transcode pcmu->pcma", "b->a": "transcode pcma->pcmu"}
        # phone A: 50 packets, 20 ms apart, sequence 10 lost on the way
        for i in range(50):
            now[0] = 100.0 + i * 0.02
            if i != 10:
                a.send(rtp(1000 + i, pt=0, ssrc=0xA, ts=8000 + 160 * i), relay.a.local)
                await b.recv()
        # phone B: 20 packets, none lost
        for i in range(20):
            b.send(rtp(i, pt=8, ssrc=0xB, ts=160 * i), relay.b.local)
            await a.recv()
        # phone A's SR: its LSR/DLSR come back in our block about A; it is not passed to B
        sr_time = 1_800_000_000.0
        a_rtcp.send(build_compound([SenderReport(0xA, ntp_from_unix(sr_time), 0, 49, 49 * 160),
                                    SourceDescription([(0xA, [(SDES_CNAME, "phone-a")])])]),
                    rtcp_port(relay.a))
        reports_a = relay.a.reports
        for _ in range(200):
            if reports_a.received:
                break
            await asyncio.sleep(0.005)
        assert reports_a.received == 1

        assert relay.send_rtcp(now[0], sr_time + 1.0) == 0          # starts the RFC 3550 timers
        now[0] += 10.0                                               # > 1.5 x 5 s: both due
        assert relay.send_rtcp(now[0], sr_time + 2.0) == 2
        to_a = parse_rtcp((await a_rtcp.recv())[0])
        to_b = parse_rtcp((await b_rtcp.recv())[0])

        sr, sdes = to_a[0], to_a[1]        # to A: we send it B's stream transcoded to PCMU
        assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
        assert sr.ssrc == relay.transcoder("b->a").out_ssrc and (sr.packet_count, sr.octet_count) == (20, 3200)
        assert sdes.cname(sr.ssrc) == relay.cname
        [block] = sr.reports               # ... and we receive A's own stream
        assert (block.ssrc, block.cumulative_lost, block.highest_sequence) == (0xA, 1, 1049)
        assert block.fraction_lost == (1 << 8) // 49    # RFC 3550 A.1: counted from the 2nd packet
        assert block.lsr == ntp_middle32(ntp_from_unix(sr_time)) and block.dlsr > 0

        sr_b = to_b[0]                     # to B: A's stream, transcoded to PCMA; B's, received
        assert isinstance(sr_b, SenderReport)
        assert sr_b.ssrc == relay.transcoder("a->b").out_ssrc and sr_b.packet_count == 49
        assert [(r.ssrc, r.cumulative_lost, r.highest_sequence) for r in sr_b.reports] == [(0xB, 0, 19)]
        assert all(p.ssrc != 0xA for p in to_b if isinstance(p, SenderReport))   # A's SR stayed here

        await relay.close()                # leaving: a last report with BYE to each phone
        for sock, leg_ssrc in ((a_rtcp, relay.transcoder("b->a").out_ssrc),
                               (b_rtcp, relay.transcoder("a->b").out_ssrc)):
            last = parse_rtcp((await sock.recv())[0])
            assert isinstance(last[-1], Bye) and last[-1].sources == [leg_ssrc]
        for phone in (a, a_rtcp, b, b_rtcp):
            phone.close()
    arun(main)


def test_pass_through_has_no_reports_of_its_own(arun):
    async def main():
        now = [0.0]
        relay, a, a_rtcp, b, b_rtcp = await transcoding_call(now)
        relay.b.configure(codec="pcmu")
        assert relay.modes == {"a->b": "pass", "b->a": "pass"}
        assert relay.a.reports is None and relay.b.reports is None
        assert relay.send_rtcp(10.0, 0.0, bye=True) == 0
        await relay.close()
        for phone in (a, a_rtcp, b, b_rtcp):
            phone.close()
    arun(main)


def test_leg_reports_alone_are_sans_io():
    """Only receiving from a phone: an RR from an SSRC of the relay's own about that phone."""
    reports = LegReports("relay@test")
    assert reports.report(0.0, 0.0) is None                      # nothing moved yet
    for i in range(10):
        reports.from_phone(rtp(i, ssrc=0x55, ts=160 * i), i * 0.02, 8000)
    # RFC 3550 A.1: a source is on probation until two packets in sequence; counting starts then
    assert isinstance(reports.stats, ReceiverStats) and reports.stats.received == 9
    [rr, sdes] = parse_rtcp(reports.report(1.0, 1_800_000_000.0))
    assert isinstance(rr, ReceiverReport) and rr.reports[0].ssrc == 0x55
    assert sdes.cname(rr.ssrc) == "relay@test"
    reports.from_phone_rtcp(b"\x80garbage", 1.0, 0.0)
    assert reports.malformed == 1
    reports.from_phone(rtp(0, ssrc=0x66), 2.0, 8000)              # the phone restarted its stream
    assert reports.stats.ssrc == 0x66 and reports.stats.received == 0
