"""The loopback impairment proxy: the seeded model exactly, then the proxy on real sockets."""
import socket
import time

import numpy as np
import pytest

from labkit.lab import serve
from labkit.lab.impair import Impairment, ImpairmentProxy


def test_no_impairment_delivers_everything_after_the_delay():
    m = Impairment(delay=0.05)
    assert [m.schedule(t) for t in (0.0, 0.02)] == [[0.05], [0.07]]


def test_same_seed_same_network():
    a = Impairment(delay=0.01, jitter=0.005, loss=0.1, reorder=0.1, duplicate=0.1, seed=42)
    b = Impairment(delay=0.01, jitter=0.005, loss=0.1, reorder=0.1, duplicate=0.1, seed=42)
    assert [a.schedule(i * 0.02) for i in range(500)] == [b.schedule(i * 0.02) for i in range(500)]


def test_random_loss_rate_and_jitter_never_negative():
    m = Impairment(delay=0.03, jitter=0.01, loss=0.2, seed=1)
    out = [m.schedule(i * 0.02) for i in range(20000)]
    lost = np.mean([not o for o in out])
    assert 0.19 < lost < 0.21
    extra = np.array([o[0] - i * 0.02 - 0.03 for i, o in enumerate(out) if o])
    assert extra.min() >= 0 and 0.007 < extra.mean() < 0.009  # half-normal mean = 0.8 sigma


def test_bursty_loss_has_the_requested_mean_and_burst_length():
    m = Impairment(loss=0.1, burst=4, seed=3)
    lost = np.array([not m.schedule(i) for i in range(200000)])
    assert abs(lost.mean() - 0.1) < 0.01
    edges = np.flatnonzero(np.diff(np.r_[0, lost.astype(int), 0]))
    bursts = edges[1::2] - edges[::2]
    assert abs(bursts.mean() - 4) < 0.2


def test_reorder_and_duplicate():
    m = Impairment(reorder=1.0, reorder_delay=0.05, duplicate=1.0, duplicate_delay=0.001)
    assert m.schedule(1.0) == [1.05, pytest.approx(1.051)]


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": 1.5}, "loss is a probability in 0..1, got 1.5"),
    ({"delay": -1}, "delay must be >= 0 seconds, got -1"),
    ({"burst": 0.5}, "burst is a mean burst length in packets (>= 1), got 0.5"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError) as info:
        Impairment(**kwargs)
    assert str(info.value) == message


def _udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    return s


def test_proxy_on_loopback_delays_drops_and_answers_back():
    receiver, sender = _udp(), _udp()
    try:
        proxy = ImpairmentProxy(receiver.getsockname(), delay=0.05, loss=0.5, seed=7)
        with serve(proxy) as srv:
            host, port = srv.address
            assert host == "127.0.0.1" and port > 0
            t0 = time.monotonic()
            for i in range(20):
                sender.sendto(bytes([i]), srv.address)
            got, first = [], None
            receiver.settimeout(0.5)
            try:
                while len(got) < 20:
                    data, _ = receiver.recvfrom(100)
                    first = first or time.monotonic() - t0
                    got.append(data[0])
            except socket.timeout:
                pass
            # the same seeded model decides which get through
            model = Impairment(delay=0.05, loss=0.5, seed=7)
            survivors = [i for i in range(20) if model.schedule(0)]
            assert sorted(got) == survivors and proxy.dropped == 20 - len(survivors)
            assert first >= 0.045
            # replies from the target go back to the last client, unimpaired
            receiver.sendto(b"pong", srv.address)
            assert sender.recvfrom(100)[0] == b"pong"
    finally:
        receiver.close()
        sender.close()


def test_both_ways_impairs_the_replies_too():
    receiver, sender = _udp(), _udp()
    try:
        proxy = ImpairmentProxy(receiver.getsockname(), delay=0.08, both_ways=True, seed=1)
        with serve(proxy) as srv:
            sender.sendto(b"ping", srv.address)
            assert receiver.recvfrom(100)[0] == b"ping"
            t0 = time.monotonic()
            receiver.sendto(b"pong", srv.address)
            assert sender.recvfrom(100)[0] == b"pong"
            assert time.monotonic() - t0 >= 0.075
            assert proxy.returned == 1 and proxy.forwarded == 2
    finally:
        receiver.close()
        sender.close()
