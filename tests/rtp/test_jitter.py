"""Adaptive jitter buffer behaviour, driven by explicit arrival and playout times (no sleeping)."""
import numpy as np
import pytest

from labkit.rtp.jitter import AUDIO, CONCEAL, IDLE, JitterBuffer
from labkit.rtp.packet import RtpPacket

F = 0.020


def pkt(i, ssrc=1, seq0=1000, ts0=5000, marker=False):
    return RtpPacket(0, (seq0 + i) % 65536, (ts0 + 160 * i) % 2**32, ssrc, bytes([i % 256]), marker)


class Driver:
    """Feeds packets at their arrival times and ticks the buffer every 20 ms."""

    def __init__(self, jb, phase=0.0005):
        self.jb, self.tick, self.out = jb, phase, []
        self.pending = []  # (arrival, packet)
        self.delays = []  # playout delay after each tick

    def send(self, packet, arrival):
        self.pending.append((arrival, packet))

    def run_until(self, t):
        self.pending.sort(key=lambda x: x[0])
        while self.tick < t:
            while self.pending and self.pending[0][0] <= self.tick:
                a, p = self.pending.pop(0)
                self.jb.put(p, a)
            self.out.append((self.tick, self.jb.get(self.tick)))
            self.delays.append(self.jb.playout_delay(self.tick))
            self.tick += F

    def played(self):
        return [o.packet.payload[0] for _, o in self.out if o.kind == AUDIO]


def steady():
    """A buffer held at >= 60 ms, so these tests see ordering logic, not adaptation."""
    return JitterBuffer(min_delay=0.060)


def test_plays_in_order_without_gaps():
    d = Driver(steady())
    for i in range(100):
        d.send(pkt(i), 0.030 + i * F)
    d.run_until(3.0)
    assert d.played() == list(range(100))
    first = next(k for k, (_, o) in enumerate(d.out) if o.kind == AUDIO)
    kinds = [o.kind for _, o in d.out[first : first + 100]]
    assert kinds == [AUDIO] * 100
    assert d.jb.late == 0 and d.jb.duplicates == 0


def test_reorders_and_drops_duplicates():
    d = Driver(steady())
    for i in range(60):  # 20 and 21 are held up behind 22
        d.send(pkt(i), 0.030 + i * F + (0.045 if i in (20, 21) else 0))
    d.send(pkt(30), 0.030 + 30 * F + 0.002)  # a duplicate while still queued
    d.send(pkt(5), 2.0)  # a duplicate of something long played
    d.run_until(3.0)
    assert d.played() == list(range(60))
    assert d.jb.duplicates == 2 and d.jb.late == 0


def test_late_packet_is_reported_and_not_played():
    jb = JitterBuffer(adaptive=False, initial_delay=0.040)
    for i in (0, 1, 3):
        assert jb.put(pkt(i), 0.0 + i * F) == "queued"
    now, kinds = 0.0, []
    while now < 0.16:
        kinds.append(jb.get(now).kind)
        now += F
    assert kinds == [IDLE, IDLE, AUDIO, AUDIO, CONCEAL, AUDIO, CONCEAL, CONCEAL]
    assert jb.put(pkt(2), now) == "late" and jb.late == 1


def test_sequence_and_timestamp_wrap():
    d = Driver(steady())
    for i in range(40):  # seq 65520.., ts crossing 2**32
        d.send(pkt(i, seq0=65520, ts0=2**32 - 160 * 10), 0.030 + i * F)
    d.run_until(1.5)
    assert d.played() == list(range(40)) and d.jb.late == 0 and d.jb.resyncs == 0


def test_ssrc_change_restarts_the_buffer():
    d = Driver(steady())
    for i in range(30):
        d.send(pkt(i, ssrc=1), 0.030 + i * F)
    for i in range(30):  # a new source with unrelated numbering
        d.send(pkt(100 + i, ssrc=2, seq0=7, ts0=123456), 0.030 + (30 + i) * F)
    d.send(pkt(29, ssrc=1), 0.030 + 45 * F)  # a straggler from the old source
    d.run_until(2.5)
    flushed = d.jb.flushed  # what the old source still had queued when the new one began
    assert flushed == 3  # 60 ms of 20 ms frames
    assert d.played() == list(range(30 - flushed)) + [100 + i for i in range(30)]
    assert d.jb.ssrc_changes == 1 and d.jb.stale_ssrc == 1


def test_empty_buffer_means_late_not_lost():
    """A packet held up in the network, with nothing behind it yet, is waited for."""
    d = Driver(steady())
    for i in range(200):
        extra = 0.150 if i == 120 else 0.0
        d.send(pkt(i), 0.030 + i * F + extra + (0.150 - (i - 120) * F if 120 < i < 128 else 0.0))
    d.run_until(6.0)
    played = d.played()
    assert 120 in played and d.jb.late == 0
    k = next(k for k, (_, o) in enumerate(d.out) if o.packet and o.packet.payload[0] == 120)
    waited = [o.action for _, o in d.out[k - 5 : k]]
    assert waited == ["", "insert", "insert", "insert", "insert"]  # 150 ms late, 20 ms ticks
    # then it shrank back by dropping frames, never the one it waited for
    assert played == sorted(played) and len(played) + d.jb.dropped == 200
    assert d.jb.dropped >= 4


def _jittery(d, start, count, sigma, rng, i0):
    for k in range(count):
        i = i0 + k
        d.send(pkt(i), start + k * F + 0.030 + abs(rng.normal(0, sigma)))
    return i0 + count


def test_depth_adapts_up_under_jitter_and_back_down():
    jb = JitterBuffer()
    d = Driver(jb)
    rng = np.random.default_rng(7)
    i = _jittery(d, 0.0, 250, 0.0, rng, 0)  # 5 s clean
    d.run_until(5.0)
    calm = jb.target_delay
    assert calm == pytest.approx(jb.margin, abs=1e-9)  # no jitter: only the safety margin
    i = _jittery(d, 5.0, 250, 0.030, rng, i)  # 5 s of heavy jitter
    d.run_until(10.0)
    rough = jb.target_delay
    delay_rough = jb.playout_delay(d.tick)
    assert rough > calm + 0.040 and delay_rough > 0.040
    _jittery(d, 10.0, 750, 0.0, rng, i)  # 15 s clean again
    d.run_until(25.0)
    assert jb.target_delay == pytest.approx(calm, abs=1e-9)
    assert jb.playout_delay(d.tick) <= calm + 1.25 * F + 1e-9
    assert jb.dropped > 0  # it shrank by dropping frames


@pytest.mark.parametrize("ppm", [+500, -500])
def test_no_delay_growth_under_clock_drift(ppm):
    jb = JitterBuffer()
    d = Driver(jb)
    n = int(120 / F)
    for i in range(n):
        d.send(pkt(i), 0.030 + i * F / (1 + ppm * 1e-6))
    delays = []
    for t in np.arange(1.0, 119.0, 1.0):
        d.run_until(t)
        delays.append(jb.playout_delay(d.tick))
        if t == 20.0:  # start-up shrink from the initial 60 ms is over
            moves_before = jb.dropped if ppm > 0 else jb.inserted
    delays = np.array(delays[20:])
    # the playout point stays inside the dead band above the target the whole two minutes
    assert delays.max() - delays.min() <= 1.5 * F + 1e-6
    # 500 ppm over the last 100 s is 50 ms = 2.5 frames to drop (fast sender) or insert (slow)
    moves = (jb.dropped if ppm > 0 else jb.inserted) - moves_before
    assert 2 <= moves <= 3


def test_talkspurt_start_resyncs_to_target():
    jb = JitterBuffer(min_delay=0.060)
    d = Driver(jb)
    for i in range(100):  # first talkspurt, arriving with 60 ms extra queueing
        d.send(pkt(i, marker=(i == 0)), 0.090 + i * F)
    for i in range(150, 250):  # 1 s of silence, then a talkspurt over a fast path
        d.send(pkt(i, marker=(i == 150)), 0.030 + i * F)
    d.run_until(5.2)
    assert d.played() == list(range(100)) + list(range(150, 250))
    resync = [o for _, o in d.out if o.action == "resync"]
    assert len(resync) == 1 and resync[0].packet.payload[0] == 150
    k = next(k for k, (_, o) in enumerate(d.out) if o.packet and o.packet.payload[0] == 200)
    assert d.delays[k] <= jb.target_delay + 1.25 * F


def test_fixed_buffer_never_adapts():
    jb = JitterBuffer(adaptive=False, initial_delay=0.060)
    d = Driver(jb)
    rng = np.random.default_rng(3)
    _jittery(d, 0.0, 300, 0.040, rng, 0)
    d.run_until(7.0)
    assert jb.inserted == 0 and jb.dropped == 0 and jb.target_delay == 0.060
    assert jb.late > 0


def test_rejects_bad_configuration():
    with pytest.raises(ValueError, match="quantile must be in 0.5..1, got 2"):
        JitterBuffer(quantile=2)


def test_waiting_for_a_lost_packet_costs_no_delay():
    """Buffer runs dry in a loss burst: it waits (conceals), then finds the frame was lost and
    catches up by the frames it already concealed, so nothing is dropped and delay is unchanged."""
    d = Driver(steady())
    for i in range(250):
        if not 100 <= i < 105:  # 100 ms lost: longer than the 60 ms the buffer holds
            d.send(pkt(i), 0.030 + i * F)
    d.run_until(5.5)
    assert d.played() == [i for i in range(250) if not 100 <= i < 105]
    assert d.jb.dropped == 0 and d.jb.late == 0
    start = next(k for k, (_, o) in enumerate(d.out) if o.kind == AUDIO)
    kinds = [o.kind for _, o in d.out[start : start + 250]]
    assert kinds.count(CONCEAL) == 5 and kinds[-1] == AUDIO  # exactly the lost frames, no more
    before = d.delays[start + 90]
    after = d.delays[start + 200]
    assert after == pytest.approx(before, abs=1e-9)
