"""Fixtures for interop tests with real softphones: the PBX as a subprocess and baresip phones."""
from __future__ import annotations

import pytest

from . import baresip
from ..pbxproc import start_pbx

#: baresip 1.0 (Debian 12) answers only MD5 digest challenges: see docs/softphones.md.
PBX_CONFIG = """
[security]
digest_algorithms = ["MD5"]
[rtp]
port_min = 34000
port_max = 34999
[endpoints.100]
password = "secret100"
context = "internal"
callerid = "Alice <100>"
[endpoints.101]
password = "secret101"
context = "internal"
callerid = "Bob <101>"
"""

PASSWORDS = {"100": "secret100", "101": "secret101"}


def require_baresip() -> None:
    if baresip.installed() is None:
        pytest.skip("baresip is not installed (Debian package baresip-core; scripts/sysdeps.sh installs it as root)")


@pytest.fixture(scope="module")
def pbx(tmp_path_factory):
    require_baresip()
    p = start_pbx(tmp_path_factory.mktemp("pbx"), PBX_CONFIG)
    yield p
    p.stop()


@pytest.fixture
def phone_factory(tmp_path, pbx):
    """Start baresip phones (each in its own dir under tmp_path); all are closed after the test."""
    phones: list[baresip.Baresip] = []

    def make(name: str, tone_hz: int = 440) -> baresip.Baresip:
        phone = baresip.Baresip(tmp_path / name, tone_hz=tone_hz, name=name)
        phones.append(phone)
        return phone.start()

    yield make
    for phone in phones:
        phone.close()


@pytest.fixture
def alice(phone_factory, pbx):
    """baresip registered as 100 (its microphone a 440 Hz tone)."""
    phone = phone_factory("alice", tone_hz=440)
    event = phone.add_account(baresip.account_line("100", PASSWORDS["100"], pbx.host, pbx.port))
    assert event.type == "REGISTER_OK", (event.data, phone.log()[-2000:])
    return phone
