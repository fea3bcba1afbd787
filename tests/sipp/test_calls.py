"""Interop: SIPp phones call each other through `python -m labkit.pbx` (B2BUA + RTP relay)."""
import re
import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from .conftest import SCENARIOS, free_port, sipp, start_pbx, stop_pbx

CONFIG = """
[security]
digest_algorithms = ["MD5"]   # SIPp 3.6 answers the first challenge only, and only MD5
[rtp]
port_min = 32000
port_max = 32999
[endpoints.100]
password = "secret100"
context = "internal"
[endpoints.101]
password = "secret101"
context = "internal"
"""


def register_callee(pbx, port):
    r = sipp("register_auth.xml", (pbx.host, pbx.port), "-s", "101", "-au", "101", "-ap", "secret101",
             "-key", "expires", "300", local_port=port)
    assert r.returncode == 0, r.stdout[-2000:]


def wait_until_bound(port: int, timeout: float = 10.0) -> None:
    """SIPp is ready once its UDP port is taken (binding it ourselves then fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                time.sleep(0.2)   # give SIPp a moment past bind() to start reading
                return
        time.sleep(0.05)
    raise AssertionError(f"SIPp did not bind 127.0.0.1:{port}")


def background_sipp(*args, local_port: int, **kw):
    """Run SIPp in a thread (the callee side) while the test drives the caller."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", sipp(*args, local_port=local_port, **kw)))
    thread.start()
    wait_until_bound(local_port)
    return thread, box


@pytest.fixture
def pbx(tmp_path):
    p = start_pbx(tmp_path, CONFIG)
    yield p
    stop_pbx(p)


def test_sipp_call_with_rtp_relayed_both_ways_and_bye(pbx, tmp_path):
    tone = (np.sin(2 * np.pi * 440 * np.arange(8000 * 2) / 8000) * 8000).astype(np.int16)
    rtp_file = tmp_path / "tone_ulaw.wav"
    sf.write(str(rtp_file), tone, 8000, subtype="ULAW")
    callee_port, media_port = free_port(), free_port()
    register_callee(pbx, callee_port)
    thread, box = background_sipp("uas_answer.xml", (pbx.host, pbx.port), "-rtp_echo", "-mp", str(media_port),
                                  local_port=callee_port, timeout=25)
    # SIPp does not substitute keywords inside <exec>/<pause> attributes: write them in
    scenario = tmp_path / "uac_call.xml"
    scenario.write_text((SCENARIOS / "uac_call_auth.xml").read_text()
                        .replace("[rtp_file]", str(rtp_file)).replace("[talk_ms]", "2000"))
    r = sipp(str(scenario), (pbx.host, pbx.port), "-s", "100", "-au", "100", "-ap", "secret100",
             "-key", "callee", "101",
             "-auth_uri", f"101@{pbx.host}:{pbx.port}", "-mp", str(free_port()), timeout=25)
    thread.join(30)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert box["result"].returncode == 0, box["result"].stdout[-3000:]
    time.sleep(0.5)
    log = pbx.output()
    (tmp_path / "pbx.log").write_text(log)
    # the relay's summary: packets went caller -> callee and (echoed) back
    m = re.search(r"media .* caller->callee (\d+) packets, callee->caller (\d+) packets", log)
    assert m, log[-3000:]
    there, back = int(m.group(1)), int(m.group(2))
    assert there >= 50 and back >= 50, (there, back, log[-4000:])


def caller_and_callee(pbx, caller_scenario: str, callee_scenario: str) -> None:
    """Register SIPp as 101, run it with `callee_scenario`, call it from an authenticated SIPp 100
    running `caller_scenario`; both must finish their scenario."""
    callee_port = free_port()
    register_callee(pbx, callee_port)
    thread, box = background_sipp(callee_scenario, (pbx.host, pbx.port), local_port=callee_port, timeout=20)
    r = sipp(caller_scenario, (pbx.host, pbx.port), "-s", "100", "-au", "100", "-ap", "secret100",
             "-key", "callee", "101",
             "-auth_uri", f"101@{pbx.host}:{pbx.port}", "-mp", str(free_port()), timeout=20)
    thread.join(25)
    assert r.returncode == 0, r.stdout[-3000:]
    assert box["result"].returncode == 0, box["result"].stdout[-3000:]


def test_sipp_busy_callee_486_reaches_the_caller(pbx):
    caller_and_callee(pbx, "uac_busy.xml", "uas_busy.xml")


def test_sipp_cancel_before_answer_gives_487_and_cancels_the_callee(pbx):
    caller_and_callee(pbx, "uac_cancel.xml", "uas_ring.xml")
