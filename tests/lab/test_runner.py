"""The background-thread runner used by every notebook: start, report, stop, leave nothing behind."""
import asyncio
import socket
import threading

import pytest

from labkit.lab import serve


class EchoUdp:
    """A tiny UDP echo server: the smallest thing `serve` can run."""

    def __init__(self, port: int = 0):
        self.port = port
        self.address = None
        self.transport = None
        self.stopped = 0

    async def start(self):
        loop = asyncio.get_running_loop()

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(data.upper(), addr)

        self.transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", self.port))
        self.address = self.transport.get_extra_info("sockname")[:2]

    async def stop(self):
        self.stopped += 1
        self.transport.close()


def udp_roundtrip(address, payload=b"ping"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(payload, address)
        return s.recvfrom(100)[0]


def test_serve_reports_free_port_and_answers():
    srv = serve(EchoUdp())
    try:
        host, port = srv.address
        assert host == "127.0.0.1" and port > 0
        assert udp_roundtrip(srv.address) == b"PING"
    finally:
        srv.stop()


def test_stop_is_idempotent_and_leaves_no_thread_or_socket():
    before = {t.name for t in threading.enumerate()}
    server = EchoUdp()
    srv = serve(server)
    address = srv.address
    srv.stop()
    srv.stop()
    assert server.stopped == 1
    assert not srv.running
    assert {t.name for t in threading.enumerate()} <= before
    # the port is free again: we can bind it ourselves
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(address)


def test_context_manager_and_call_runs_on_server_loop():
    with serve(EchoUdp()) as srv:
        loop_thread = srv.call(lambda: threading.current_thread().name)
        assert loop_thread != threading.current_thread().name

        async def double(x):
            await asyncio.sleep(0)
            return 2 * x

        assert srv.call(double, 21) == 42
    assert not srv.running
    with pytest.raises(RuntimeError, match="not running"):
        srv.call(lambda: None)


def test_failed_start_raises_and_cleans_up():
    class Broken:
        async def start(self):
            raise OSError("address already in use (test)")

        async def stop(self):
            pass

    before = threading.active_count()
    with pytest.raises(OSError, match="already in use"):
        serve(Broken())
    assert threading.active_count() == before
