"""The notebook SIP client and load generator against the real PBX on loopback."""
import socket

import pytest

from labkit.lab import serve
from labkit.lab.sipclient import SipClient, options_load, run_in_thread
from labkit.pbx.config import load
from labkit.pbx.server import PBX
from labkit.sip import digest


@pytest.fixture
def pbx(tmp_path):
    cfg = load()
    cfg.port = 0
    cfg.data_dir = tmp_path
    with serve(PBX(cfg)) as srv:
        yield srv


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_options_round_trip(pbx, transport):
    with SipClient(pbx.address, transport) as c:
        request = c.request("OPTIONS")
        assert request.via[0].transport == transport.upper() and request.cseq.seq == 1
        answer = c.exchange(request)
        assert answer.status == 200 and answer.call_id == request.call_id
        assert answer.via[0].rport == c.local[1] and answer.via[0].received == "127.0.0.1"
        assert c.exchange(c.request("OPTIONS")).cseq.seq == 2


def test_register_with_digest_by_hand(pbx):
    with SipClient(pbx.address, user="100") as c:
        challenge = c.exchange(c.request("REGISTER", contact=True, headers=[("Expires", "60")]))
        assert challenge.status == 401
        value = digest.authorization_for(challenge.get_all("WWW-Authenticate")[0], "100", "labkit100",
                                         "REGISTER", f"sip:127.0.0.1:{pbx.address[1]}")
        ok = c.exchange(c.request("REGISTER", contact=True, headers=[("Expires", "60"), ("Authorization", value)]))
        assert ok.status == 200
        assert ok.contact[0].uri.port == c.local[1]


def test_timeout_and_bad_arguments_are_clear():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with SipClient(silent.getsockname(), timeout=0.1) as c:
            with pytest.raises(TimeoutError, match=r"no final response to OPTIONS from 127\.0\.0\.1:"):
                c.exchange(c.request("OPTIONS"))
    with pytest.raises(ValueError, match="unsupported transport 'sctp'"):
        SipClient(("127.0.0.1", 5060), "sctp")
    with pytest.raises(ValueError, match="clients must be at least 1"):
        options_load(("127.0.0.1", 5060), 0)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_load_generator_counts_answers(pbx, transport):
    result = options_load(pbx.address, clients=4, duration=0.3, transport=transport)
    assert result.clients == 4 and result.answered > 4 and result.timeouts == 0
    assert result.rate == pytest.approx(result.answered / result.seconds)
    assert len(result.latencies) == result.answered and 0 < result.latency_ms(0.5) < 1000


def test_load_generator_counts_timeouts_against_a_silent_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        result = options_load(silent.getsockname(), clients=2, duration=0.2, timeout=0.05)
    assert result.answered == 0 and result.timeouts >= 2 and result.rate == 0


def test_run_in_thread_returns_and_raises():
    async def ok():
        return 42

    async def boom():
        raise RuntimeError("inner failure")

    assert run_in_thread(ok()) == 42
    with pytest.raises(RuntimeError, match="inner failure"):
        run_in_thread(boom())
