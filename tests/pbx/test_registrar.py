"""The registrar end to end over loopback, with labkit's own UA (SHA-256 digest) as the phone."""
import asyncio
import time

import pytest

from labkit.lab import serve
from labkit.pbx.config import loads
from labkit.pbx.server import PBX
from labkit.sip.uac import UserAgent, make_request

CONFIG = """
[server]
port = 0
[registrar]
min_expires = 30
default_expires = 120
max_expires = 600
[security]
max_failures = 4
window = 60
ban_seconds = 300
[endpoints.100]
password = "pw100"
max_contacts = 3
[endpoints.101]
ha1_sha256 = "%s"
ha1_md5 = "%s"
"""


def config(tmp_path):
    from labkit.sip.digest import compute_ha1
    text = CONFIG % (compute_ha1("SHA-256", "101", "labkit", "pw101"), compute_ha1("MD5", "101", "labkit", "pw101"))
    cfg = loads(text)
    cfg.data_dir = tmp_path
    return cfg


@pytest.fixture
def pbx(tmp_path):
    with serve(PBX(config(tmp_path))) as srv:
        yield srv


def run_ua(pbx, user, password, scenario):
    """Start a UserAgent on the PBX's loop (a second loop is not needed), run `scenario(ua)`."""
    async def go():
        ua = UserAgent(user, password)
        await ua.start()
        try:
            return await scenario(ua)
        finally:
            await ua.stop()
    return pbx.call(go)


def test_register_with_sha256_then_listed_with_remaining_expiry(pbx):
    async def scenario(ua):
        reg = await ua.register(pbx.address, expires=300)
        return reg, ua.contact
    reg, contact = run_ua(pbx, "100", "pw100", scenario)
    assert reg.challenged and reg.ok
    [listed] = reg.contacts
    assert listed.startswith(contact) and listed.endswith(";expires=300")
    [binding] = pbx.server.location.lookup("100")
    assert binding.source.startswith("udp:127.0.0.1:")


def test_ha1_credentials_work(pbx):
    reg = run_ua(pbx, "101", "pw101", lambda ua: ua.register(pbx.address, expires=60))
    assert reg.ok


def test_too_brief_interval_gets_423_with_min_expires(pbx):
    reg = run_ua(pbx, "100", "pw100", lambda ua: ua.register(pbx.address, expires=5))
    assert reg.response.status == 423 and reg.response.get("Min-Expires") == "30"


def test_expires_above_max_is_capped(pbx):
    reg = run_ua(pbx, "100", "pw100", lambda ua: ua.register(pbx.address, expires=99999))
    assert reg.contacts[0].endswith(";expires=600")


def test_several_contacts_q_values_and_star_removal(pbx):
    async def scenario(ua):
        host, port = ua.address
        a = f"<sip:100@127.0.0.1:{port + 1}>;q=0.5"
        b = f"<sip:100@127.0.0.1:{port + 2}>;q=1.0"
        first = await ua.register(pbx.address, expires=120, contact=f"{a}, {b}")
        query = await ua.register(pbx.address, expires=120, contact=None)
        star = await ua.register(pbx.address, expires=0, contact="*")
        return first, query, star
    first, query, star = run_ua(pbx, "100", "pw100", scenario)
    assert first.ok and len(first.contacts) == 2
    assert "q=1.0" in first.contacts[0] and "q=0.5" in first.contacts[1]   # highest q first
    assert len(query.contacts) == 3  # the UA's own contact joined the two
    assert star.ok and star.contacts == []
    assert pbx.server.location.lookup("100") == []


def test_star_without_expires_zero_is_400(pbx):
    reg = run_ua(pbx, "100", "pw100", lambda ua: ua.register(pbx.address, expires=60, contact="*"))
    assert reg.response.status == 400 and "wildcard" in reg.response.reason


def test_max_contacts_enforced(pbx):
    async def scenario(ua):
        port = ua.address[1]
        many = ", ".join(f"<sip:100@127.0.0.1:{port + i}>" for i in range(1, 5))
        return await ua.register(pbx.address, expires=60, contact=many)
    reg = run_ua(pbx, "100", "pw100", scenario)
    assert reg.response.status == 403 and "Too many contacts" in reg.response.reason


def test_cannot_register_someone_elses_aor(pbx):
    async def scenario(ua):
        ua.user = "101"   # authenticate as 100 but register 101's AOR
        ua.credentials.username = "100"
        return await ua.register(pbx.address, expires=60)
    reg = run_ua(pbx, "100", "pw100", scenario)
    assert reg.response.status == 403


def test_unknown_user_and_wrong_password_look_the_same(pbx):
    unknown = run_ua(pbx, "999", "whatever", lambda ua: ua.register(pbx.address, expires=60))
    wrong = run_ua(pbx, "100", "not-it", lambda ua: ua.register(pbx.address, expires=60))
    assert unknown.response.status == wrong.response.status == 401
    assert unknown.response.reason == wrong.response.reason
    strip = lambda r: sorted(n for n, _ in r.headers)
    assert strip(unknown.response) == strip(wrong.response)


def test_repeated_failures_ban_the_source(pbx):
    for _ in range(4):
        assert run_ua(pbx, "100", "bad", lambda ua: ua.register(pbx.address, expires=60)).response.status == 401
    banned = run_ua(pbx, "100", "pw100", lambda ua: ua.register(pbx.address, expires=60))
    assert banned.response.status == 403   # even the right password: the address is banned


def test_retransmitted_register_is_absorbed_not_reprocessed(pbx):
    """A REGISTER retransmission (same branch) gets the same response from the transaction."""
    import socket
    from labkit.sip import parse
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        req = make_request("REGISTER", "sip:127.0.0.1", local=s.getsockname(), from_uri="sip:100@127.0.0.1",
                           contact=f"<sip:100@127.0.0.1:{s.getsockname()[1]}>", headers=[("Expires", "60")])
        data = bytes(req)
        s.sendto(data, pbx.address)
        first = s.recvfrom(4000)[0]
        s.sendto(data, pbx.address)
        second = s.recvfrom(4000)[0]
    assert parse(first).status == 401
    assert first == second   # the very same bytes: same nonce, not a new challenge


def test_ignored_addresses_are_never_banned(tmp_path):
    cfg = config(tmp_path)
    cfg.ban_ignore = ["127.0.0.0/8"]
    with serve(PBX(cfg)) as srv:
        for _ in range(6):
            assert run_ua(srv, "100", "bad", lambda ua: ua.register(srv.address, expires=60)).response.status == 401
        assert run_ua(srv, "100", "pw100", lambda ua: ua.register(srv.address, expires=60)).ok


def test_malformed_contact_gets_400_with_reason_and_others_still_register(pbx):
    bad = run_ua(pbx, "100", "pw100", lambda ua: ua.register(pbx.address, expires=60,
                                                             contact="<sip:100@127.0.0.1:5000;transport=udp"))
    assert bad.challenged and bad.response.status == 400
    assert "Contact" in bad.response.reason
    assert run_ua(pbx, "101", "pw101", lambda ua: ua.register(pbx.address, expires=60)).ok
