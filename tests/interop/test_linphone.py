"""Interop: Linphone's console client (linphonec) registers with SHA-256 digest and calls through the PBX.

Linphone answers the PBX's default challenge order (SHA-256 first, RFC 8760), unlike Debian
12's baresip; with `play`/`record` the tests hear real media: the echo test returns the
phone's own tone, and Linphone calling baresip through the B2BUA carries both tones.
Loopback only; every process is started here and ended here.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from . import baresip, linphone
from .conftest import PASSWORDS, PBX_CONFIG
from ..pbxproc import SOUNDS, start_pbx

DEFAULT_DIGEST_CONFIG = """
[rtp]
port_min = 35000
port_max = 35999
[endpoints.100]
password = "secret100"
context = "internal"
"""


def require_linphonec() -> None:
    if linphone.installed() is None:
        pytest.skip("linphonec is not installed (Debian package linphone-cli)")


def tone_file(path, hz: float, seconds: float = 12.0, rate: int = 8000):
    pcm = (np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate) * 8000).astype(np.int16)
    sf.write(str(path), pcm, rate)
    return path


@pytest.fixture
def default_pbx(tmp_path):
    """A PBX with the default digest offer: SHA-256, then MD5."""
    require_linphonec()
    p = start_pbx(tmp_path / "pbx", DEFAULT_DIGEST_CONFIG)
    yield p
    p.stop()


@pytest.fixture
def linphonec(tmp_path):
    require_linphonec()
    phone = linphone.Linphonec(tmp_path / "linphone")
    yield phone.start()
    phone.close()


def test_linphone_registers_with_sha256_digest_and_is_listed(default_pbx, linphonec):
    state = linphonec.register("100", "secret100", default_pbx.host, default_pbx.port)
    assert state == "LinphoneRegistrationOk", linphonec.output()[-2000:]
    bound = default_pbx.wait_for(rf"registered 100 -> (sip:100@127\.0\.0\.1:{linphonec.sip_port}\S*)")
    assert bound.group(1) in default_pbx.cli("--list").stdout
    # the credentials Linphone sent used the first algorithm offered
    assert "algorithm=SHA-256" in linphonec.debug_log()


def test_linphone_echo_test_returns_its_own_tone(default_pbx, linphonec, tmp_path):
    assert linphonec.register("100", "secret100", default_pbx.host, default_pbx.port) == "LinphoneRegistrationOk"
    mark, since = default_pbx.mark(), linphonec.mark()
    linphonec.send(f"call sip:600@{default_pbx.host}:{default_pbx.port}")
    linphonec.wait_output(r"Call \d+ with .* connected", since=since)
    default_pbx.wait_for(r"new call from 100 to 600", since=mark)
    heard_path = tmp_path / "heard.wav"
    linphonec.send(f"play {tone_file(tmp_path / 'tone.wav', 440)}")
    linphonec.send(f"record {heard_path}")
    prompt = sf.info(str(SOUNDS / "demo-echotest.wav")).duration
    time.sleep(prompt + 1.5)
    linphonec.send("terminate")
    linphonec.wait_output(r"Call \d+ with .* ended", since=since)
    media = default_pbx.wait_for(r"media .* caller->callee (\d+) packets", since=mark)
    assert int(media.group(1)) >= 50 * prompt, media.string
    heard, rate = sf.read(str(heard_path), dtype="int16", always_2d=True)
    tail = heard[-rate:, 0]
    assert abs(baresip.dominant_frequency(tail, rate) - 440) < 10
    assert abs(tail.astype(float)).mean() > 300


def test_linphone_calls_baresip_through_the_b2bua(tmp_path):
    """Two vendors, one PBX (MD5-only, for baresip 1.0): each phone hears the other's tone."""
    require_linphonec()
    if baresip.installed() is None:
        pytest.skip("baresip is not installed (Debian package baresip-core)")
    pbx = start_pbx(tmp_path / "pbx", PBX_CONFIG)
    bob = baresip.Baresip(tmp_path / "bob", tone_hz=1000, name="bob")
    alice = linphone.Linphonec(tmp_path / "alice")
    try:
        bob.start()
        assert bob.add_account(baresip.account_line("101", PASSWORDS["101"], pbx.host, pbx.port,
                                                    answer="auto")).type == "REGISTER_OK"
        alice.start()
        assert alice.register("100", PASSWORDS["100"], pbx.host, pbx.port) == "LinphoneRegistrationOk"
        mark, a_since, b_since = pbx.mark(), alice.mark(), bob.mark()
        heard_path = tmp_path / "alice-heard.wav"
        alice.send(f"call sip:101@{pbx.host}:{pbx.port}")
        alice.wait_output(r"Call \d+ with .* connected", since=a_since)
        answered = bob.wait_event("CALL_ESTABLISHED", since=b_since)
        assert answered.data["peeruri"].startswith("sip:100@"), answered.data
        alice.send(f"play {tone_file(tmp_path / 'tone.wav', 440)}")
        alice.send(f"record {heard_path}")
        time.sleep(2.5)
        alice.send("terminate")
        bob.wait_event("CALL_CLOSED", since=b_since)
        media = pbx.wait_for(r"media (\{.*?\}) caller->callee (\d+) packets, callee->caller (\d+) packets", since=mark)
        assert int(media.group(2)) >= 80 and int(media.group(3)) >= 80, media.string
        heard_by_bob, rate = bob.heard()
        assert abs(baresip.dominant_frequency(heard_by_bob[-rate:], rate) - 440) < 10
        heard, rate = sf.read(str(heard_path), dtype="int16", always_2d=True)
        assert abs(baresip.dominant_frequency(heard[-rate:, 0], rate) - 1000) < 10
    finally:
        alice.close()
        bob.close()
        pbx.stop()
