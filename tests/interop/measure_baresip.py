"""How long a real softphone waits: baresip's registration and call set-up through the PBX.

    .venv/bin/python -m tests.interop.measure_baresip [--rounds 10]

Prints medians of (1) registration: `uanew` sent to baresip -> REGISTER_OK (REGISTER, 401,
REGISTER with MD5 digest, SQLite write, 200), (2) call set-up: `dial 600` -> CALL_ESTABLISHED
(INVITE, 401, ACK, INVITE with digest, dialplan Answer(), 200, ACK), and as the reference
measured in the same run, (3) one OPTIONS round trip from Python to the same PBX: the floor of
any SIP transaction here. Timing lives here, not in the tests (they assert behaviour).
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from . import baresip, linphone
from .conftest import PASSWORDS, PBX_CONFIG
from ..pbxproc import start_pbx


def options_round_trip(host: str, port: int) -> float:
    """Seconds for one OPTIONS -> 200 OK over UDP on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        me = s.getsockname()[1]
        branch, tag = uuid.uuid4().hex[:16], uuid.uuid4().hex[:8]
        request = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{branch};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag={tag}\r\nTo: <sip:{host}:{port}>\r\n"
                   f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
        start = time.perf_counter()
        s.sendto(request, (host, port))
        reply = s.recv(65535)
        elapsed = time.perf_counter() - start
        if not reply.startswith(b"SIP/2.0 200"):
            raise RuntimeError(f"OPTIONS got {reply[:40]!r}")
        return elapsed


def linphone_call_setups(workdir: Path, pbx, rounds: int) -> list[float]:
    """Seconds from `call sip:600@...` typed to linphonec until it prints 'connected' (empty without linphonec)."""
    if linphone.installed() is None:
        return []
    phone = linphone.Linphonec(workdir)
    try:
        phone.start()
        if phone.register("100", PASSWORDS["100"], pbx.host, pbx.port) != "LinphoneRegistrationOk":
            raise RuntimeError("linphonec did not register:\n" + phone.output()[-2000:])
        setups = []
        for _ in range(rounds):
            since = phone.mark()
            start = time.time()
            phone.send(f"call sip:600@{pbx.host}:{pbx.port}")
            at, _ = phone.wait_output(r"Call \d+ with .* connected", since=since)
            setups.append(at - start)
            phone.send("terminate")
            phone.wait_output(r"Call \d+ with .* ended", since=since)
            time.sleep(0.1)
        return setups
    finally:
        phone.close()


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=10)
    opts = args.parse_args(argv)
    if baresip.installed() is None:
        print("baresip is not installed (apt-get install baresip-core)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pbx = start_pbx(work / "pbx", PBX_CONFIG)
        phone = baresip.Baresip(work / "alice")
        try:
            phone.start()
            line = baresip.account_line("100", PASSWORDS["100"], pbx.host, pbx.port)
            aor = f"sip:100@{pbx.host}:{pbx.port}"
            registrations, setups, options = [], [], []
            for i in range(opts.rounds):
                if i:
                    phone.command("uadel", aor)
                    time.sleep(0.1)
                start = time.time()
                event = phone.add_account(line)
                if event.type != "REGISTER_OK":
                    raise RuntimeError(f"registration failed: {event.data}")
                registrations.append(event.at - start)
            for _ in range(opts.rounds):
                since = phone.mark()
                start = time.time()
                phone.command("dial", "600")
                established = phone.wait_event("CALL_ESTABLISHED", since=since)
                setups.append(established.at - start)
                phone.command("hangup")
                phone.wait_event("CALL_CLOSED", since=since)
                time.sleep(0.1)
            for _ in range(opts.rounds * 3):
                options.append(options_round_trip(pbx.host, pbx.port))
            lin_setups = linphone_call_setups(work / "linphone", pbx, opts.rounds)
        finally:
            phone.close()
            pbx.stop()
    reg, setup, ref = (statistics.median(x) * 1000 for x in (registrations, setups, options))
    print(f"baresip {'.'.join(map(str, baresip.version() or ()))} <-> labkit PBX on 127.0.0.1, "
          f"{opts.rounds} rounds, medians:")
    print(f"  registration (uanew -> REGISTER_OK, MD5 digest):   {reg:7.1f} ms  = {reg / ref:5.1f} x reference")
    print(f"  call set-up  (dial 600 -> CALL_ESTABLISHED):       {setup:7.1f} ms  = {setup / ref:5.1f} x reference")
    if lin_setups:
        lin = statistics.median(lin_setups) * 1000
        print(f"  linphonec call set-up (call 600 -> 'connected'):   {lin:7.1f} ms  = {lin / ref:5.1f} x reference")
    print(f"  reference    (one OPTIONS round trip from Python): {ref:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
