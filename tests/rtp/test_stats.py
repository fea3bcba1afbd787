"""RFC 3550 Appendix A statistics and the E-model, driven with explicit arrival times."""
import pytest

from labkit.rtp.packet import RtpPacket, SenderReport, ntp_from_unix
from labkit.rtp.stats import (
    MAX_DROPOUT, ReceiverStats, estimate_quality, mos_from_r, r_factor, round_trip_time,
)


def pkt(seq, ts=0):
    return RtpPacket(0, seq % 65536, ts % 2**32, 1, b"")


def feed(stats, seqs, t0=0.0):
    return [stats.update(pkt(s, 160 * i), t0 + 0.02 * i) for i, s in enumerate(seqs)]


def test_probation_then_counting():
    s = ReceiverStats(1, 8000)
    assert feed(s, [100, 101, 102]) == [False, True, True]  # MIN_SEQUENTIAL = 2
    assert (s.received, s.expected, s.lost, s.base_seq, s.extended_max) == (2, 2, 0, 101, 102)


def test_loss_and_fraction_lost():
    s = ReceiverStats(1, 8000)
    feed(s, [10, 11, 12, 13] + list(range(19, 23)))  # 14..18 lost
    assert s.lost == 5 and s.expected == 12
    assert s.fraction_lost() == (5 << 8) // 12
    feed(s, [23, 24])
    assert s.fraction_lost() == 0  # nothing lost in the new interval


def test_sequence_wrap_extends_the_sequence_number():
    s = ReceiverStats(1, 8000)
    feed(s, [65533, 65534, 65535, 0, 1, 2])
    assert s.cycles == 65536 and s.extended_max == 65536 + 2 and s.lost == 0


def test_duplicate_makes_loss_negative():
    s = ReceiverStats(1, 8000)
    feed(s, [1, 2, 3, 3, 4])
    assert s.lost == -1 and s.duplicates_or_reordered == 1


def test_large_jump_needs_two_sequential_packets_to_resync():
    s = ReceiverStats(1, 8000)
    feed(s, [1, 2, 3])
    jump = 3 + MAX_DROPOUT + 10
    assert s.update(pkt(jump), 1.0) is False  # treated as a stray packet
    assert s.received == 2
    assert s.update(pkt(jump + 1), 1.02) is True  # the source restarted: resync
    assert (s.base_seq, s.received, s.lost) == (jump + 1, 1, 0)


def test_jitter_is_zero_for_constant_transit():
    s = ReceiverStats(1, 8000)
    for i in range(50):
        s.update(pkt(i, 160 * i), 5.0 + 0.02 * i)
    assert s.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_follows_the_a8_recursion():
    # transit alternates by d samples, so |D| = d for every pair: J_n = d (1 - (15/16)^n)
    d = 40
    s = ReceiverStats(1, 8000)
    arrivals = [0.02 * i + (d / 8000 if i % 2 else 0.0) for i in range(40)]
    for i, a in enumerate(arrivals):
        s.update(pkt(i, 160 * i), a)
    n = 40 - 2  # first packet is probation, second only sets the transit
    assert s.jitter == pytest.approx(d * (1 - (15 / 16) ** n), rel=1e-9)
    assert s.jitter_seconds == pytest.approx(s.jitter / 8000)


def test_report_block_and_round_trip_time():
    s = ReceiverStats(0xAB, 8000)
    feed(s, range(10))
    t_sr = 1_700_000_000.0
    s.on_sender_report(SenderReport(0xAB, ntp_from_unix(t_sr), 0, 0, 0), arrival=t_sr + 0.05)
    block = s.report_block(now=t_sr + 0.25)
    assert block.dlsr == int(0.2 * 65536)
    assert block.highest_sequence == 9 and block.cumulative_lost == 0
    # the sender gets our report 0.05 s later: RTT = 0.05 out + 0.05 back
    assert round_trip_time(block, t_sr + 0.30) == pytest.approx(0.10, abs=2 / 65536)


def test_e_model_reference_points():
    assert r_factor(0.0) == pytest.approx(93.2)
    assert mos_from_r(93.2) == pytest.approx(1 + 0.035 * 93.2 + 93.2 * 33.2 * 6.8 * 7e-6)
    # Ie,eff = 95 Ppl / (Ppl + Bpl) for G.711 with PLC (Bpl 25.1)
    assert r_factor(0.05) == pytest.approx(93.2 - 95 * 5 / (5 + 25.1))
    assert r_factor(0.05, bpl=4.3) < r_factor(0.05)  # without concealment loss hurts more
    # delay costs little until 177 ms, then a lot
    assert r_factor(0, delay_ms=150) == pytest.approx(93.2 - 0.024 * 150)
    assert r_factor(0, delay_ms=300) < r_factor(0, delay_ms=150) - 15
    q = estimate_quality(0.01, jitter_ms=20, delay_ms=50)
    assert q.delay_ms == 90 and 4.0 < q.mos < 4.4
    assert mos_from_r(-5) == 1.0 and mos_from_r(120) == 4.5


def test_e_model_rejects_percent_instead_of_fraction():
    with pytest.raises(ValueError, match="loss must be a fraction in 0..1, got 5"):
        r_factor(5)
