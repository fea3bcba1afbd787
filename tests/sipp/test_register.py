"""Interop: SIPp registers with digest auth against `python -m labkit.pbx` in a subprocess."""
import socket
import time

from labkit.sip import parse

from .conftest import free_port, sipp, start_pbx, stop_pbx

SHORT = """
[server]
realm = "labkit"
[registrar]
min_expires = 1
default_expires = 60
max_expires = 3600
[security]
max_failures = 3
window = 60
ban_seconds = 600
digest_algorithms = ["MD5"]   # SIPp 3.6 answers the first challenge only, and only MD5
[endpoints.100]
password = "secret100"
[endpoints.101]
password = "secret101"
"""


def test_register_401_then_200_and_listed(tmp_path):
    pbx = start_pbx(tmp_path, SHORT)
    try:
        r = sipp("register_auth.xml", (pbx.host, pbx.port), "-s", "100", "-au", "100", "-ap", "secret100", "-key", "expires", "120")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        listing = pbx.cli("--list").stdout
        assert "100 -> sip:100@127.0.0.1:" in listing and "expires in" in listing
    finally:
        stop_pbx(pbx)
    # bindings survive a restart of the PBX
    again = start_pbx(tmp_path, SHORT)
    try:
        assert "100 -> sip:100@127.0.0.1:" in again.cli("--list").stdout
    finally:
        stop_pbx(again)


def test_wrong_password_never_200(tmp_path):
    pbx = start_pbx(tmp_path, SHORT)
    try:
        r = sipp("register_wrong_password.xml", (pbx.host, pbx.port), "-s", "100", "-au", "100", "-ap", "nope")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "200 OK (Call-ID" not in pbx.output().split("REGISTER")[-1]
        assert pbx.cli("--list").stdout.strip().startswith("no registrations")
    finally:
        stop_pbx(pbx)


def test_expiry_and_expires_zero_removal(tmp_path):
    pbx = start_pbx(tmp_path, SHORT)
    try:
        r = sipp("register_auth.xml", (pbx.host, pbx.port), "-s", "100", "-au", "100", "-ap", "secret100",
                 "-key", "expires", "2")
        assert r.returncode == 0, r.stdout[-3000:]
        assert "registered 100 -> sip:100@127.0.0.1" in pbx.output()
        # (no --list here: starting a CLI process may take longer than the 2 s binding lives)
        deadline = time.monotonic() + 10
        while "registration expired: 100" not in pbx.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "registration expired: 100" in pbx.output()      # removed on time, and logged
        assert "no registrations" in pbx.cli("--list").stdout

        phone_port = free_port()   # the same phone (same contact) registers, then unregisters
        r = sipp("register_auth.xml", (pbx.host, pbx.port), "-s", "101", "-au", "101", "-ap", "secret101",
                 "-key", "expires", "120", local_port=phone_port)
        assert r.returncode == 0
        assert "101 -> " in pbx.cli("--list").stdout
        r = sipp("unregister_auth.xml", (pbx.host, pbx.port), "-s", "101", "-au", "101", "-ap", "secret101",
                 local_port=phone_port)
        assert r.returncode == 0, r.stdout[-3000:]
        assert "101 -> " not in pbx.cli("--list").stdout
    finally:
        stop_pbx(pbx)


def test_malformed_authorization_gets_400_and_registrar_keeps_serving(tmp_path):
    pbx = start_pbx(tmp_path, SHORT)
    try:
        bad = (
            "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-bad1;rport\r\n"
            "From: <sip:100@127.0.0.1>;tag=x\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: bad-auth\r\n"
            "CSeq: 1 REGISTER\r\nContact: <sip:100@127.0.0.1:5999>\r\n"
            'Authorization: Digest username="100", realm="labkit", nonce=\r\n'
            "Content-Length: 0\r\n\r\n"
        ).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(bad, (pbx.host, pbx.port))
            reply = parse(s.recvfrom(4000)[0])
        assert reply.status == 400 and "Authorization" in reply.reason
        r = sipp("register_auth.xml", (pbx.host, pbx.port), "-s", "100", "-au", "100", "-ap", "secret100", "-key", "expires", "120")
        assert r.returncode == 0
    finally:
        stop_pbx(pbx)
