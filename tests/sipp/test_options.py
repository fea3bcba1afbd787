"""Interop: SIPp (a client nobody here wrote) pings `python -m labkit.pbx` with OPTIONS."""
import time

from .conftest import sipp, start_pbx, stop_pbx


def test_sipp_options_gets_200(pbx):
    result = sipp("options.xml", (pbx.host, pbx.port), calls=5, transport="u1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    deadline = time.monotonic() + 5        # the log line may trail SIPp's exit by a moment
    while pbx.output().count("200 OK") < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    log = pbx.output()
    assert log.count("OPTIONS sip:") >= 5          # one readable line per message in ...
    assert log.count("200 OK") >= 5                # ... and out


def test_sipp_options_over_tcp(pbx):
    result = sipp("options.xml", (pbx.host, pbx.port), calls=3, transport="t1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_pbx_stops_cleanly_on_sigterm(tmp_path):
    pbx = start_pbx(tmp_path)
    assert stop_pbx(pbx) == 0
    assert "labkit PBX stopped" in pbx.output()
