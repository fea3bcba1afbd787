"""The media stream: sans-I/O clock and sender, then real UDP sockets on 127.0.0.1."""
import asyncio
import random

import numpy as np
import pytest

from labkit.lab.impair import ImpairmentProxy
from labkit.rtp.packet import RtpPacket, parse_rtcp, SenderReport, unix_from_ntp
from labkit.rtp.stream import MediaStream, RtcpTimer, RtpSender, SendClock

from ..net import has_ipv6_loopback


def test_send_clock_is_absolute():
    clock = SendClock(100.0, 0.02)
    assert [clock.due(n) for n in (0, 1, 50)] == [100.0, 100.02, pytest.approx(101.0)]
    assert clock.packets_due(99.0) == 0
    assert clock.packets_due(100.0) == 1
    assert clock.packets_due(100.095) == 5  # a late wake-up owes the missed packets, not a shift


def test_sender_numbers_packets_and_marks_talkspurts():
    s = RtpSender(0, ssrc=5, rng=random.Random(1))
    s.sequence, s.timestamp = 65535, 2**32 - 160
    p1 = s.packet(b"a" * 160, 160, now=1.0)
    p2 = s.packet(b"b" * 160, 160, now=1.02)
    s.silence(160)
    p3 = s.packet(b"c" * 160, 160, now=1.06)
    assert [(p.sequence_number, p.timestamp, p.marker) for p in (p1, p2, p3)] == [
        (65535, 2**32 - 160, True), (0, 0, False), (1, 320, True)]
    assert (s.packets_sent, s.octets_sent) == (3, 480)
    sr = s.sender_report(wallclock=1_700_000_000.0, now=1.07, clock_rate=8000)
    assert sr.rtp_timestamp == 320 + 80  # extrapolated 10 ms past the last packet
    assert unix_from_ntp(sr.ntp_timestamp) == pytest.approx(1_700_000_000.0)


def test_rtcp_interval_is_randomised_around_nominal():
    t = RtcpTimer(5.0, random.Random(3))
    first = t.start(0.0)
    assert 1.25 <= first <= 3.75  # the first report comes after about half an interval
    assert not t.expired(first - 0.01) and t.expired(first)
    times, now = [first], first
    while len(times) < 200:
        now += 0.01
        if t.expired(now):
            times.append(now)
    gaps = np.diff(times)
    assert 2.5 <= gaps.min() and gaps.max() <= 7.51 and abs(gaps.mean() - 5.0) < 0.3


def tone(seconds, rate=8000, freq=440.0):
    """A tone with a little seeded noise, so that no two frames are alike."""
    t = np.arange(int(seconds * rate)) / rate
    x = 8000 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return (x + np.random.default_rng(0).normal(0, 300, len(t))).astype(np.int16)


def frames_found(sent, got, codec_name, frame=160):
    """Where each sent frame, after the codec round trip, appears bit-exact in ``got`` (sample
    offsets; -1 if it does not). Concealment only ever touches frames around a gap."""
    from labkit.codecs import get_codec

    codec = get_codec(codec_name)
    haystack = np.asarray(got, np.int16).tobytes()
    out, start = [], 0
    for k in range(len(sent) // frame):
        expect = codec.decoder().decode(codec.encoder().encode(sent[k * frame : (k + 1) * frame])).tobytes()
        at = haystack.find(expect, start)
        while at >= 0 and at % 2:  # only whole samples count
            at = haystack.find(expect, at + 1)
        if at >= 0:
            out.append(at // 2)
            start = at + len(expect)
    return out


async def _pair(**receiver_kw):
    rx = MediaStream("pcmu", rtcp_interval=0.4, **receiver_kw)
    await rx.start()
    tx = MediaStream("pcmu", remote=rx.address, rtcp_interval=0.4)
    await tx.start()
    return tx, rx


def test_sender_to_receiver_audio_rtcp_and_bye():
    async def main():
        # a deep buffer: no start-up shrink, and a busy machine's stalls do not cost frames
        tx, rx = await _pair(jitter={"min_delay": 0.200, "initial_delay": 0.200})
        sent = tone(1.5)
        tx.play(sent)
        await tx.drain(timeout=5)
        await asyncio.sleep(0.3)
        await tx.stop()
        await asyncio.sleep(0.1)
        await rx.stop()
        return tx, rx, sent

    tx, rx, sent = asyncio.run(main())
    assert tx.sender.packets_sent == 75 and rx.packets_received == 75
    assert rx.stats.lost == 0 and rx.malformed == 0
    got = rx.received_audio()
    found = frames_found(sent, got, "pcmu")
    assert found == [found[0] + 160 * k for k in range(75)]  # every frame, bit-exact, in order
    assert rx.latched and rx.remote == tx.address  # symmetric RTP: learnt the sender
    assert tx.rtcp_received >= 1 and tx.peer_report is not None  # the receiver's RR reached us
    assert tx.peer_report.ssrc == tx.sender.ssrc and tx.peer_report.cumulative_lost == 0
    assert tx.rtt is not None and 0 <= tx.rtt < 0.5
    assert rx.peer_bye


def test_malformed_and_foreign_packets_are_counted_not_fatal():
    async def main():
        tx, rx = await _pair()
        loop = asyncio.get_running_loop()
        junk, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        tx.play(tone(0.4))
        await asyncio.sleep(0.1)
        for data in (b"\x00", bytes.fromhex("8200 0001 00000000 00000001"), b"\x80\x00garbage"):
            junk.sendto(data, rx.address)
        junk.sendto(bytes(RtpPacket(0, 1, 1, 99, b"\xff" * 160)), rx.address)  # valid, wrong source
        await tx.drain(timeout=5)
        await asyncio.sleep(0.2)
        junk.close()
        await tx.stop()
        await rx.stop()
        return tx, rx

    tx, rx = asyncio.run(main())
    assert rx.malformed == 3 and rx.foreign == 1
    assert rx.packets_received == tx.sender.packets_sent == 20


def test_loss_through_the_impairment_proxy_matches_receiver_statistics():
    async def main():
        rx = MediaStream("pcmu", rtcp=False)
        await rx.start()
        proxy = ImpairmentProxy(rx.address, delay=0.02, jitter=0.004, loss=0.1, seed=11)
        await proxy.start()
        tx = MediaStream("pcmu", remote=proxy.address, rtcp=False)
        await tx.start()
        tx.play(tone(2.0))
        await tx.drain(timeout=5)
        await asyncio.sleep(0.3)
        await tx.stop()
        await proxy.stop()
        await rx.stop()
        return tx, rx, proxy

    tx, rx, proxy = asyncio.run(main())
    assert proxy.dropped > 0
    delivered = [i for i, (_, t) in enumerate(proxy.log) if t is not None]
    lost_before_last = sum(1 for _, t in proxy.log[: delivered[-1]] if t is None)
    # RFC 3550 counts losses up to the highest sequence number received (minus the probation packet)
    assert rx.stats.lost == lost_before_last - sum(1 for _, t in proxy.log[: delivered[1]] if t is None)
    assert rx.packets_received == len(delivered)
    assert rx.jitter_buffer.concealed >= rx.stats.lost


def test_bad_play_input():
    s = MediaStream("pcmu")
    with pytest.raises(TypeError, match="1-D int16"):
        s.play(np.zeros(10))


def test_rfc4733_dtmf_between_streams():
    async def main():
        rx = MediaStream("pcmu", rtcp=False)
        await rx.start()
        tx = MediaStream("pcmu", remote=rx.address, rtcp=False)
        await tx.start()
        loop = asyncio.get_running_loop()
        raw, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        seen = []
        rx.on_dtmf = seen.append
        tx.play(tone(0.2))
        tx.send_dtmf("5", duration_ms=100)
        tx.send_dtmf("#", duration_ms=60)
        tx.play(tone(0.2))
        await tx.drain(timeout=5)
        await asyncio.sleep(0.2)
        await tx.stop()
        await rx.stop()
        raw.close()
        return tx, rx, seen

    tx, rx, seen = asyncio.run(main())
    assert [(e.digit, e.duration) for e in rx.dtmf_events] == [("5", 800), ("#", 480)]
    assert seen == rx.dtmf_events
    # 100 ms = 5 updates (the last is the end, sent 3 times), 60 ms = 3: 7 + 5 event packets
    assert tx.sender.packets_sent == 20 + 12
    assert rx.packets_received == 20 and rx.unexpected_payload == 0 and rx.malformed == 0
    assert rx.stats.lost == 0  # event packets share the audio's sequence numbers


def test_dtmf_rejects_non_digits():
    s = MediaStream("pcmu")
    with pytest.raises(ValueError, match="not a DTMF digit: 'x'"):
        s.send_dtmf("x")


def test_two_sessions_in_memory_through_a_seeded_network():
    """The whole media path without sockets: a fake clock, datagrams carried by the impairment model."""
    from labkit.lab.impair import Impairment
    from labkit.rtp.stream import MediaSession

    A, B = ("10.0.0.1", 4000), ("10.0.0.2", 5000)
    a = MediaSession("pcmu", remote=B, rtcp_interval=1.0, rng=random.Random(1))
    b = MediaSession("pcmu", remote=None, rtcp_interval=1.0, rng=random.Random(2))
    net = Impairment(delay=0.030, jitter=0.005, loss=0.05, seed=9)
    rtcp_delay = 0.030
    in_flight = []  # (delivery time, receiver, data, source)
    a.play(tone(3.0))
    wall0 = 1_700_000_000.0
    lost_seqs, now = [], 0.0
    a.rtcp_due(0.0), b.rtcp_due(0.0)
    while now < 3.6:
        for t, who, data, src, kind in sorted(x for x in in_flight if x[0] <= now):
            if kind == "rtp":
                who.receive_rtp(data, src, t)
            else:
                who.receive_rtcp(data, src, t, wall0 + t)
        in_flight = [x for x in in_flight if x[0] > now]
        for data, dest in a.tick(now):
            times = net.schedule(now)
            if not times:
                lost_seqs.append(RtpPacket.parse(data).sequence_number)
            in_flight += [(t, b, data, A, "rtp") for t in times]
        b.tick(now)
        for session, src, dst in ((a, (A[0], A[1] + 1), b), (b, (B[0], B[1] + 1), a)):
            if session.rtcp_due(now):
                report = session.rtcp_report(now, wall0 + now)
                if report:
                    in_flight.append((now + rtcp_delay, dst, report[0], src, "rtcp"))
        now = round(now + 0.020, 6)
    assert b.latched and b.remote == A  # learnt where to send from the first packet
    # RFC 3550 counts from the first valid packet to the highest received
    first, span = b.stats.base_seq, (b.stats.max_seq - b.stats.base_seq) % 65536
    expected_lost = sum(1 for s in lost_seqs if 0 < (s - first) % 65536 < span)
    assert b.stats.lost == expected_lost and expected_lost > 0
    assert b.packets_received == 150 - len(lost_seqs)
    # the receiver's RR tells the sender its round trip: 30 ms each way, to 1/65536 s
    assert a.rtt == pytest.approx(2 * rtcp_delay, abs=2 / 65536)
    assert 0 <= a.peer_report.cumulative_lost <= b.stats.lost  # as of the last RR
    played = b.received_audio()
    assert len(played) >= 150 * 160 * 0.95
    assert b.jitter_buffer.late == 0 and b.jitter_buffer.concealed >= expected_lost


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_ipv6_loopback_media_and_rtcp():
    async def main():
        rx = MediaStream("pcmu", local=("::1", 0), rtcp_interval=0.3)
        await rx.start()
        tx = MediaStream("pcmu", local=("::1", 0), remote=rx.address, rtcp_interval=0.3)
        await tx.start()
        tx.play(tone(1.0))
        await tx.drain(timeout=5)
        await asyncio.sleep(0.4)
        await tx.stop()
        await rx.stop()
        return tx, rx

    tx, rx = asyncio.run(main())
    assert rx.packets_received == 50 and rx.remote == tx.address and rx.remote[0] == "::1"
    assert tx.rtt is not None


@pytest.mark.parametrize("peer_ptime", [30, 10])
def test_receiver_follows_the_peers_packet_duration(peer_ptime):
    """a=ptime is only a wish: a phone may send 30 ms packets to a 20 ms receiver."""
    from labkit.rtp.stream import MediaSession

    A, B = ("10.0.0.1", 4000), ("10.0.0.2", 5000)
    a = MediaSession("pcmu", remote=B, ptime=peer_ptime, rng=random.Random(1))
    b = MediaSession("pcmu", ptime=20, jitter={"min_delay": 0.06}, rng=random.Random(2))
    sent = tone(1.2)
    a.play(sent)
    in_flight, t_a, t_b = [], 0.0, 0.0
    while min(t_a, t_b) < 1.8:  # each side on its own ptime clock
        if t_a <= t_b:
            in_flight += [(t_a + 0.030, data) for data, _ in a.tick(t_a)]
            t_a = round(t_a + peer_ptime / 1000, 6)
        else:
            for t, data in [x for x in in_flight if x[0] <= t_b]:
                b.receive_rtp(data, A, t)
            in_flight = [x for x in in_flight if x[0] > t_b]
            b.tick(t_b)
            t_b = round(t_b + 0.020, 6)
    assert b.rx_duration_changes == 1 and b.rx_frame_samples == 8 * peer_ptime
    found = frames_found(sent, b.received_audio(), "pcmu", frame=8 * peer_ptime)
    n = len(sent) // (8 * peer_ptime)
    assert found == [found[0] + 8 * peer_ptime * k for k in range(n)]  # every frame, bit-exact, in order


def test_latching_needs_packets_in_sequence_so_one_stray_packet_cannot_hijack():
    from labkit.rtp.stream import MediaSession

    real, stray = ("192.0.2.10", 30000), ("198.51.100.7", 40000)
    s = MediaSession("pcmu", remote=("192.0.2.1", 4000), latch_after=4)  # SDP said 192.0.2.1
    s.receive_rtp(bytes(RtpPacket(0, 500, 0, 77, bytes(160))), stray, 0.0)
    for i in range(3):
        s.receive_rtp(bytes(RtpPacket(0, 10 + i, 160 * i, 5, bytes(160))), real, 0.02 * (i + 1))
    assert not s.latched and s.remote == ("192.0.2.1", 4000)  # still learning
    s.receive_rtp(bytes(RtpPacket(0, 13, 480, 5, bytes(160))), real, 0.08)
    assert s.latched and s.remote == real and s.remote_rtcp == ("192.0.2.10", 30001)
    s.receive_rtp(bytes(RtpPacket(0, 501, 160, 77, bytes(160))), stray, 0.09)
    assert s.foreign == 1
