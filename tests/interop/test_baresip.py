"""Interop: a real softphone (baresip, headless) registers with and calls through `python -m labkit.pbx`.

Each phone's microphone is a sine tone and the `sndfile` module records what it heard, so the
tests check real media: the echo test returns the phone's own tone, the prompt test delivers
the prompt's waveform, and two phones calling each other hear each other's tone through the
B2BUA relay. Loopback only; every process is started here and ended here.
"""
from __future__ import annotations

import re
import time

import pytest
import soundfile as sf

from . import baresip
from .conftest import PASSWORDS, PBX_CONFIG, require_baresip
from ..net import has_ipv6_loopback
from ..pbxproc import SOUNDS, start_pbx

#: libre (baresip's SIP stack) learned SHA-256 digest in baresip/re 3.11 (PR 1103, April 2024).
SHA256_SINCE = (3, 11, 0)


def test_baresip_registers_with_md5_digest_and_is_listed(pbx, phone_factory):
    phone = phone_factory("alice")
    mark = pbx.mark()
    event = phone.add_account(baresip.account_line("100", PASSWORDS["100"], pbx.host, pbx.port))
    assert event.type == "REGISTER_OK", (event.data, phone.log()[-2000:])
    # the PBX challenged (401), then bound the contact baresip sent from its loopback port
    pbx.wait_for(r"-> udp .*401 Unauthorized .*REGISTER", since=mark)
    bound = pbx.wait_for(rf"registered 100 -> (sip:100-\S+@127\.0\.0\.1:{phone.sip_port}) \(expires in 60 s",
                         since=mark)
    listing = pbx.cli("--list")
    assert listing.returncode == 0, listing.stderr
    assert re.search(rf"^100\s+-> {re.escape(bound.group(1))}\s+expires in \d+ s", listing.stdout, re.M), listing.stdout
    reginfo = phone.command("reginfo")["data"]
    assert "OK" in reginfo and "labkit PBX" in reginfo, reginfo


def test_baresip_unregisters_on_quit(pbx, phone_factory):
    phone = phone_factory("alice")
    assert phone.add_account(baresip.account_line("100", PASSWORDS["100"], pbx.host, pbx.port)).type == "REGISTER_OK"
    mark = pbx.mark()
    phone.close()
    assert phone.proc.returncode == 0, phone.log()[-2000:]
    pbx.wait_for(rf"unregistered 100 -> sip:100-\S+@127\.0\.0\.1:{phone.sip_port}", since=mark)
    assert "100 ->" not in pbx.cli("--list").stdout


def test_wrong_password_is_refused_and_logged(tmp_path):
    """Its own PBX: the failures count towards the fail2ban-like ban of 127.0.0.1."""
    require_baresip()
    pbx = start_pbx(tmp_path / "pbx", PBX_CONFIG)
    phone = baresip.Baresip(tmp_path / "mallory")
    try:
        phone.start()
        event = phone.add_account(baresip.account_line("100", "not-the-password", pbx.host, pbx.port))
        assert event.type == "REGISTER_FAIL", event.data
        assert re.search(r"40[13]", event.data.get("param", "")), event.data
        pbx.wait_for(r"authentication failed from .*'100'")
        assert "registered 100" not in pbx.output()
    finally:
        phone.close()
        pbx.stop()


@pytest.mark.parametrize("offer", [["SHA-256", "MD5"], ["MD5", "SHA-256"]], ids=["sha256-first", "md5-first"])
def test_sha256_offered_registers_only_if_baresip_knows_sha256(tmp_path, offer):
    """The PBX's default offers SHA-256 and MD5 (RFC 8760). libre before 3.11 stops at the first
    challenge it cannot compute ("Function not implemented"), in either order: Debian 12's baresip
    1.0 needs an MD5-only offer. When the installed baresip is newer, it must register."""
    require_baresip()
    knows_sha256 = (baresip.version() or (0,)) >= SHA256_SINCE
    algorithms = ", ".join(f'"{a}"' for a in offer)
    config = (f'[security]\ndigest_algorithms = [{algorithms}]\n'
              '[endpoints.100]\npassword = "secret100"\ncontext = "internal"\n')
    pbx = start_pbx(tmp_path / "pbx", config)
    phone = baresip.Baresip(tmp_path / "alice")
    try:
        phone.start()
        event = phone.add_account(baresip.account_line("100", "secret100", pbx.host, pbx.port))
        if knows_sha256:
            assert event.type == "REGISTER_OK", (event.data, phone.log()[-2000:])
        else:
            assert event.type == "REGISTER_FAIL", event.data
            assert "Function not implemented" in phone.log(), phone.log()[-2000:]
            assert "registered 100" not in pbx.output()
    finally:
        phone.close()
        pbx.stop()


def test_echo_test_600_answers_and_returns_the_phones_own_tone(pbx, alice):
    mark, since = pbx.mark(), alice.mark()
    assert alice.command("dial", "600")["ok"]
    established = alice.wait_event("CALL_ESTABLISHED", since=since)
    assert established.data["direction"] == "outgoing"
    pbx.wait_for(r"new call from 100 to 600 in \[internal\]", since=mark)
    alice.wait_event("CALL_RTPESTAB", since=since)   # baresip receives RTP from the PBX
    prompt = sf.info(str(SOUNDS / "demo-echotest.wav")).duration
    time.sleep(prompt + 1.5)                         # the prompt, then a second and a half of echo
    assert alice.command("hangup")["ok"]
    closed = alice.wait_event("CALL_CLOSED", since=since)
    assert established.data["id"] == closed.data["id"]
    pbx.wait_for(r"BYE from the phone", since=mark)
    media = pbx.wait_for(r"media .* caller->callee (\d+) packets", since=mark)
    assert int(media.group(1)) >= 50 * (prompt + 1), media.string     # 20 ms packets for the whole call
    heard, rate = alice.heard()
    assert len(heard) >= rate * (prompt + 1.0)
    tail = heard[-rate:]                                              # the last second: the echo
    assert abs(baresip.dominant_frequency(tail, rate) - 440) < 10
    assert abs(tail.astype(float)).mean() > 300                        # loud, not comfort noise


def test_prompt_test_700_plays_hello_world_and_the_pbx_hangs_up(pbx, alice):
    mark, since = pbx.mark(), alice.mark()
    assert alice.command("dial", "700")["ok"]
    alice.wait_event("CALL_ESTABLISHED", since=since)
    closed = alice.wait_event("CALL_CLOSED", since=since, timeout=10)   # the PBX sends BYE
    assert "reset by peer" in closed.data.get("param", ""), closed.data
    pbx.wait_for(r"-> udp .* BYE sip:100-", since=mark)
    heard, rate = alice.heard()
    reference, ref_rate = sf.read(str(SOUNDS / "hello-world.wav"), dtype="int16")
    assert ref_rate == rate == 8000
    # what baresip decoded is the prompt's waveform (G.711 is near-transparent)
    assert baresip.best_correlation(heard, reference) > 0.95


def test_two_baresip_phones_call_each_other_through_the_b2bua(pbx, alice, phone_factory):
    bob = phone_factory("bob", tone_hz=1000)
    event = bob.add_account(baresip.account_line("101", PASSWORDS["101"], pbx.host, pbx.port, answer="auto"))
    assert event.type == "REGISTER_OK", event.data
    mark, a_since, b_since = pbx.mark(), alice.mark(), bob.mark()
    assert alice.command("dial", "101")["ok"]
    alice.wait_event("CALL_ESTABLISHED", since=a_since)
    answered = bob.wait_event("CALL_ESTABLISHED", since=b_since)          # auto-answer
    assert answered.data["direction"] == "incoming"
    assert answered.data["peeruri"].startswith("sip:100@"), answered.data  # the caller is 100
    pbx.wait_for(r"bridged ", since=mark)
    time.sleep(2.0)
    assert alice.command("hangup")["ok"]
    alice.wait_event("CALL_CLOSED", since=a_since)
    bob.wait_event("CALL_CLOSED", since=b_since)          # the PBX relayed the hang-up as a BYE
    media = pbx.wait_for(r"media .* caller->callee (\d+) packets, callee->caller (\d+) packets, dropped (\d+)",
                         since=mark)
    there, back = int(media.group(1)), int(media.group(2))
    assert there >= 80 and back >= 80, media.string
    # each phone hears the other's tone: Alice (440 Hz) -> Bob, Bob (1000 Hz) -> Alice
    heard_by_alice, rate = alice.heard()
    heard_by_bob, _ = bob.heard()
    assert abs(baresip.dominant_frequency(heard_by_alice[-rate:], rate) - 1000) < 10
    assert abs(baresip.dominant_frequency(heard_by_bob[-rate:], rate) - 440) < 10


def test_dtmf_from_baresip_drives_the_ivr_to_the_echo_test(pbx, alice):
    """800 is the IVR demo: '1' goes to the echo test. baresip sends the digit as RFC 4733
    telephone-events; what it hears afterwards is the echo test's prompt, not the menu again."""
    mark, since = pbx.mark(), alice.mark()
    assert alice.command("dial", "800")["ok"]
    alice.wait_event("CALL_ESTABLISHED", since=since)
    pbx.wait_for(r"new call from 100 to 800", since=mark)
    time.sleep(1.0)
    alice.keys("1")
    menu = sf.info(str(SOUNDS / "demo-instruct.wav")).duration
    time.sleep(menu + 1.5)                      # the menu prompt plays out, then the next prompt starts
    assert alice.command("hangup")["ok"]
    alice.wait_event("CALL_CLOSED", since=since)
    assert "send DTMF digit: '1'" in alice.log()
    heard, rate = alice.heard()
    echo_prompt, _ = sf.read(str(SOUNDS / "demo-echotest.wav"), dtype="int16")
    invalid, _ = sf.read(str(SOUNDS / "option-is-invalid.wav"), dtype="int16")
    assert baresip.best_correlation(heard, echo_prompt[:rate]) > 0.95
    assert baresip.best_correlation(heard, invalid[:rate]) < 0.5


def test_baresip_registers_and_calls_over_tcp(pbx, phone_factory):
    phone = phone_factory("alice-tcp")
    line = baresip.account_line("100", PASSWORDS["100"], pbx.host, pbx.port).replace("transport=udp", "transport=tcp")
    mark = pbx.mark()
    assert phone.add_account(line).type == "REGISTER_OK", phone.log()[-2000:]
    pbx.wait_for(r"registered 100 -> sip:100-\S+;transport=tcp .*from tcp:127\.0\.0\.1:\d+\)", since=mark)
    since = phone.mark()
    assert phone.command("dial", "700")["ok"]
    phone.wait_event("CALL_ESTABLISHED", since=since)
    phone.wait_event("CALL_CLOSED", since=since, timeout=10)    # the PBX's BYE, over the same connection
    pbx.wait_for(r"-> tcp .* BYE sip:100-", since=mark)
    heard, rate = phone.heard()
    reference, _ = sf.read(str(SOUNDS / "hello-world.wav"), dtype="int16")
    assert baresip.best_correlation(heard, reference) > 0.95


def test_baresip_over_ipv6_loopback(tmp_path):
    """SIP and RTP on ::1: bracketed hosts in Via/Contact/URIs, `c=IN IP6` in SDP, the prompt heard."""
    require_baresip()
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    config = PBX_CONFIG.replace("[rtp]\n", '[server]\nbind = "::1"\n[rtp]\nbind = "::1"\n')
    pbx = start_pbx(tmp_path / "pbx", config, bind="::1")
    phone = baresip.Baresip(tmp_path / "alice6", host="::1")
    try:
        phone.start()
        event = phone.add_account(baresip.account_line("100", PASSWORDS["100"], pbx.host, pbx.port))
        assert event.type == "REGISTER_OK", (event.data, phone.log()[-2000:])
        assert re.search(r"^100\s+-> sip:100-\S+@\[::1\]:\d+\s+expires in \d+ s\s+\(via udp:\[::1\]:\d+\)",
                         pbx.cli("--list").stdout, re.M), pbx.cli("--list").stdout
        since = phone.mark()
        assert phone.command("dial", "700")["ok"]
        phone.wait_event("CALL_ESTABLISHED", since=since)
        phone.wait_event("CALL_CLOSED", since=since, timeout=10)
        assert "receiving from [::1]:" in phone.log()
        heard, rate = phone.heard()
        reference, _ = sf.read(str(SOUNDS / "hello-world.wav"), dtype="int16")
        assert baresip.best_correlation(heard, reference) > 0.95
    finally:
        phone.close()
        pbx.stop()
