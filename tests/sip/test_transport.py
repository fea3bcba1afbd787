"""The SIP server over real loopback sockets: UDP and TCP framing, rport, 400/501, robustness."""
from __future__ import annotations

import socket
import threading

import pytest

from labkit.lab import serve
from labkit.pbx.config import load
from labkit.pbx.server import PBX
from labkit.sip import parse


def options(branch="z9hG4bK-t1", port=5099, call_id="call-1", extra="", transport="UDP", method="OPTIONS",
            cseq_method=None, version="SIP/2.0", rport=True):
    via = f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch={branch}{';rport' if rport else ''}\r\n"
    return (
        f"{method} sip:100@127.0.0.1 {version}\r\n{via}"
        f"From: <sip:test@127.0.0.1>;tag=abc\r\nTo: <sip:100@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {cseq_method or method}\r\nMax-Forwards: 70\r\n{extra}"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
def server(tmp_path):
    cfg = load()
    cfg.port = 0
    cfg.data_dir = tmp_path
    with serve(PBX(cfg)) as srv:
        yield srv


def udp_exchange(address, data, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        s.sendto(data, address)
        reply, _ = s.recvfrom(70000)
        return parse(reply), s.getsockname()


def test_udp_options_gets_200_with_capabilities_and_rport(server):
    reply, (_, my_port) = udp_exchange(server.address, options(port=5099))
    assert reply.status == 200
    assert "OPTIONS" in reply.get_all("Allow")
    assert reply.get("Accept") == "application/sdp" and reply.get("Supported")
    via = reply.via[0]
    # RFC 3581: the server filled in rport with our real source port; received is set too
    assert via.rport == my_port and via.received == "127.0.0.1"
    assert reply.cseq.method == "OPTIONS" and reply.call_id == "call-1"


def test_response_goes_to_rport_not_to_the_via_port(server):
    # sent-by says 5099 (nobody listens there): only rport brings the answer back to us
    reply, _ = udp_exchange(server.address, options(port=5099, rport=True))
    assert reply.status == 200


def test_unknown_method_gets_501_with_allow(server):
    reply, _ = udp_exchange(server.address, options(method="FROBNICATE"))
    assert (reply.status, reply.reason) == (501, "Not Implemented")
    assert "OPTIONS" in reply.get_all("Allow")


def test_wrong_version_gets_505(server):
    reply, _ = udp_exchange(server.address, options(version="SIP/3.0"))
    assert reply.status == 505


def test_missing_header_gets_400_with_reason(server):
    data = options().replace(b"Max-Forwards: 70\r\n", b"").replace(b"From: <sip:test@127.0.0.1>;tag=abc\r\n", b"")
    reply, _ = udp_exchange(server.address, data)
    assert reply.status == 400 and "From" in reply.reason


def test_mismatched_cseq_method_gets_400(server):
    reply, _ = udp_exchange(server.address, options(cseq_method="INVITE"))
    assert reply.status == 400 and "CSeq" in reply.reason


def test_garbage_is_dropped_and_server_keeps_serving(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for junk in (b"\x00\xff garbage", b"HELLO\r\n\r\n", b"SIP/2.0 200\r\n\r\n", b"\r\n\r\n" * 3):
            s.sendto(junk, server.address)
        with pytest.raises(socket.timeout):
            s.recvfrom(2000)
    reply, _ = udp_exchange(server.address, options())
    assert reply.status == 200
    assert server.server.transport.dropped >= 3


def tcp_connect(address):
    s = socket.create_connection(address, timeout=3)
    return s


def read_responses(sock, count):
    buf = b""
    out = []
    while len(out) < count:
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        buf += chunk
        while b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            if len(rest) < length:
                break
            out.append(parse(head + b"\r\n\r\n" + rest[:length]))
            buf = rest[length:]
    return out


def test_tcp_framing_two_messages_in_one_segment_and_one_split(server):
    with tcp_connect(server.address) as s:
        a = options(branch="z9hG4bK-a", call_id="a", transport="TCP")
        b = options(branch="z9hG4bK-b", call_id="b", transport="TCP")
        c = options(branch="z9hG4bK-c", call_id="c", transport="TCP")
        s.sendall(a + b + c[:40])
        s.sendall(c[40:])
        replies = read_responses(s, 3)
    assert [r.call_id for r in replies] == ["a", "b", "c"]
    assert all(r.status == 200 for r in replies)


def test_tcp_large_message_near_64k(server):
    big = "X-Padding: " + "p" * 60000 + "\r\n"
    with tcp_connect(server.address) as s:
        s.sendall(options(transport="TCP", extra=big))
        [reply] = read_responses(s, 1)
    assert reply.status == 200


def test_many_concurrent_clients_all_answered(server):
    results = []

    def client(n):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            ok = 0
            for i in range(10):
                s.sendto(options(branch=f"z9hG4bK-{n}-{i}", call_id=f"{n}-{i}"), server.address)
                reply = parse(s.recvfrom(4000)[0])
                ok += reply.status == 200 and reply.call_id == f"{n}-{i}"
            results.append(ok)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [10] * 40



# ---- stamping received/rport: the text path for a trailing ';rport' against Via.stamp ---------
_STAMP_VIAS = [
    "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1;rport",
    "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-2;rport",          # sent-by differs from the source
    "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK-3;rport",         # no port, a name
    "SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK-4;rport",
    "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-5;RPORT",
    "SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bK-6",          # rport not last: Via.stamp path
    "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-7;rport=1234",     # rport with a value
    "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-8;received=10.1.1.1;rport",
    "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-9",                # no rport: received only if needed
    "SIP/2.0/UDP 127.0.0.1:40000 ;branch=z9hG4bK-10 ; rport",
    "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-11;ttl=3;rport",
    "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-12;rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-x",
]


def _request_with_via(via: str):
    return parse((f"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: {via}\r\nFrom: <sip:t@127.0.0.1>;tag=abc\r\n"
                  f"To: <sip:100@127.0.0.1>\r\nCall-ID: stamp-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                  f"Content-Length: 0\r\n\r\n").encode())


@pytest.mark.parametrize("via", _STAMP_VIAS)
@pytest.mark.parametrize("source", [("127.0.0.1", 40000), ("198.51.100.4", 5062), ("2001:db8::1", 5999)])
def test_stamp_received_gives_what_via_stamp_gives(via, source):
    """Whichever path stamps it, the request ends with the Via list Via.stamp describes, and
    a Via ending in a valueless rport keeps the client's text with the two values appended."""
    from labkit.sip.transport import Peer, stamp_received

    original = _request_with_via(via)
    expected = [original.via[0].stamp(*source)] + original.via[1:]
    msg = _request_with_via(via)
    stamp_received(msg, Peer("udp", *source))
    assert msg.via == expected
    assert parse(bytes(msg)).via == expected            # and that is what goes on the wire
    top = via.split(",")[0]
    if top.lower().endswith(";rport") and "received" not in top:
        assert f"Via: {top}={source[1]};received={source[0]}" in bytes(msg).decode()


@pytest.mark.parametrize("via", ["SIP/2.0/UDP ;branch=z9hG4bK-1;rport", "SIP/2.0/UDP ;branch=z9hG4bK-1"])
def test_stamp_received_refuses_a_malformed_via_on_either_path(via):
    from labkit.sip import ParseError
    from labkit.sip.transport import Peer, stamp_received

    with pytest.raises(ParseError):
        stamp_received(_request_with_via(via), Peer("udp", "127.0.0.1", 5060))


def test_udp_listener_asks_for_a_large_receive_buffer(server):
    """A burst that meets a busy loop must not overflow the kernel's ~208 KiB default buffer
    (datagrams, e.g. an ACK, would be dropped silently). The kernel caps at rmem_max and reports
    twice what it grants (bookkeeping), so compare with the cap."""
    from pathlib import Path

    from labkit.sip.transport import UDP_RECEIVE_BUFFER

    rmem_max = Path("/proc/sys/net/core/rmem_max")
    if not rmem_max.exists():
        pytest.skip("not Linux: no net.core.rmem_max to compare with")
    cap = int(rmem_max.read_text())
    (udp,) = server.server.transport._udp.values()      # the PBX's one UDP listener
    granted = udp.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert granted >= 2 * min(UDP_RECEIVE_BUFFER, cap)
