"""Calls per second through labkit's PBX and, in the same run, through Sippy's B2BUA (SIPp on loopback).

    .venv/bin/python benchmarks/bench_calls.py [--rates 50,100,150,200,250,300,400,600] [--seconds 6]
                                               [--hold 1] [--servers labkit,sippy]

Each server runs as a subprocess pinned to CPU 0; both SIPp instances (the callee that answers,
the caller that dials at a fixed rate) are pinned to CPU 1. A call is INVITE, 180, 200, ACK, a
hold of --hold seconds and BYE, relayed to the callee: signalling only, no RTP is sent.

  * labkit — `python -m labkit.pbx --quiet` with its real configuration: the callee registers
    (digest), every call authenticates (INVITE, 401, ACK, INVITE with MD5 digest), runs the
    dialplan (`_1XX` → Dial), looks the callee up in the location service (SQLite), and opens
    an RTP relay (two port pairs) that stays idle.
  * sippy  — `python -m sippy.b2bua_simple`, which routes every INVITE statically to the callee:
    no authentication, no registrar, no dialplan, no media relay (rtpproxy is not used).

Every rate runs --seconds seconds of new calls. A rate is *sustained* when every call completed
(no failed call, none left over) and the caller had to retransmit almost nothing (≤ 1 % of calls:
on loopback a retransmission means the server answered more than 500 ms late). Steps stop at the
first rate a server does not sustain. Printed per rate: calls, successful, failed, the caller's
retransmissions, mean set-up time (first INVITE to 200 OK), the server's CPU use (% of one core),
its CPU time per call, and the rate SIPp really offered; then the highest sustained rate of each,
labkit/Sippy, and the CPU per call of both (steadier than rates when other processes share the
CPUs). Results and where labkit's time goes: benchmarks/README.md.

    .venv/bin/python benchmarks/bench_calls.py --in-process 200

prints instead labkit's own CPU per call for the same call flow handed to the PBX object in
this process (no sockets, no SIPp, no Sippy): a figure to compare with itself, before and
after a change, that a busy machine moves much less than the runs above.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "sipp"
HOST = "127.0.0.1"
SERVER_CPU, SIPP_CPU = 0, 1
RTP_PORTS = (33000, 43999)            # labkit's relay ports: 5500 pairs, other suites use other ranges
MAX_RETRANS_SHARE = 0.01
TARGET_RATIO = 2.0

LABKIT_CONFIG = f"""
[security]
digest_algorithms = ["MD5"]   # SIPp 3.6 answers the first challenge only, and only MD5
max_failures = 1000          # a stumbling SIPp must not get itself banned mid-run
[rtp]
bind = "{HOST}"
port_min = {RTP_PORTS[0]}
port_max = {RTP_PORTS[1]}
[endpoints.100]
password = "bench100"
context = "internal"
callerid = "Caller <100>"
[endpoints.101]
password = "bench101"
context = "internal"
callerid = "Callee <101>"
"""


@dataclass
class Step:
    rate: int
    calls: int
    successful: int
    failed: int
    retransmissions: int
    setup_ms: float
    cpu: float
    offered: float
    cpu_ms_per_call: float

    @property
    def sustained(self) -> bool:
        return (self.failed == 0 and self.successful == self.calls
                and self.retransmissions <= MAX_RETRANS_SHARE * self.calls)


# ---- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_port_block(count: int = 4) -> int:
    """An even port with `count` free UDP ports from it: SIPp's -mp takes audio and video RTP/RTCP."""
    for _ in range(50):
        base = free_port() & ~1
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free UDP ports for SIPp's media")


def pinned(cpu: int):
    """preexec_fn that pins the child to one CPU (when the machine has it)."""
    def pin() -> None:
        if (os.cpu_count() or 1) > cpu:
            os.sched_setaffinity(0, {cpu})
    return pin


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen) -> None:
    """End a process this script started: SIGTERM, then SIGKILL after 5 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_for_sip(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Ready once the server answers an OPTIONS (any response will do)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(0.3)
        me = s.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            n += 1
            s.sendto((f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
                      f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bK-ready{n};rport\r\n"
                      f"From: <sip:bench@{HOST}>;tag=ready\r\nTo: <sip:{HOST}>\r\n"
                      f"Call-ID: ready-{n}@bench\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\n"
                      f"Content-Length: 0\r\n\r\n").encode(), (HOST, port))
            try:
                if s.recv(4096).startswith(b"SIP/2.0"):
                    return
            except socket.timeout:
                pass
    raise RuntimeError(f"no SIP answer on {HOST}:{port} within {timeout:g} s")


def sipp_cmd(scenario: str, server_port: int, local_port: int, *args: str) -> list[str]:
    return ["sipp", f"{HOST}:{server_port}", "-sf", str(SCENARIOS / scenario), "-i", HOST,
            "-p", str(local_port), "-t", "u1", "-nostdin", "-mp", str(free_port_block()), *args]


def run_sipp(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=pinned(SIPP_CPU), env=dict(os.environ, TERM="dumb"))


def wait_idle(pid: int, limit: float = 8.0, window: float = 0.5, share: float = 0.05) -> None:
    """Let the server finish the previous step (timers, teardown) before the next one starts."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < share * window:
            return


# ---- SIPp statistics ---------------------------------------------------------------------------
def elapsed_seconds(text: str) -> float:
    """SIPp's 'HH:MM:SS' or 'HH:MM:SS:uuuuuu' → seconds."""
    parts = text.split(":")
    seconds = int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2])
    return seconds + (int(parts[3]) / 1e6 if len(parts) > 3 else 0.0)


def read_stats(path: Path, calls: int) -> dict:
    """The caller's totals from SIPp's -trace_stat CSV (the last row is the final one)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    if not rows:
        raise RuntimeError(f"SIPp wrote no statistics to {path}")
    last = rows[-1]
    # the offered rate: calls created / time until the last one was created (1 s resolution)
    offered = 0.0
    for row in rows:
        created = int(row["OutgoingCall(C)"])
        took = elapsed_seconds(row["ElapsedTime(C)"])
        if took <= 0:
            continue
        if created >= calls:      # the last call was created within this row's second
            offered = offered or calls / took
            break
        offered = created / took  # still creating: the rate so far
    return {
        "successful": int(last["SuccessfulCall(C)"]),
        "failed": int(last["FailedCall(C)"]),
        "retransmissions": int(last["Retransmissions(C)"]),
        "setup_ms": elapsed_seconds(last["ResponseTime1(C)"]) * 1000,
        "offered": offered,
    }


# ---- one server ------------------------------------------------------------------------------
class Server:
    """A B2BUA under test: how to start it, and what the caller scenario needs for it."""

    name = ""
    caller_scenario = ""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.callee_port = free_port()
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        log = open(self.workdir / f"{self.name}.log", "w")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=pinned(SERVER_CPU), env=self.env())
        wait_for_sip(self.port, self.proc)

    def env(self) -> dict:
        return dict(os.environ)

    def prepare_callee(self) -> None:
        """Anything the callee must do before it answers (labkit: register)."""

    def caller_args(self) -> list[str]:
        return ["-s", "100", "-key", "callee", "101"]


class Labkit(Server):
    name = "labkit"
    caller_scenario = "uac_auth.xml"

    def command(self) -> list[str]:
        config = self.workdir / "pbx.toml"
        config.write_text(LABKIT_CONFIG)
        return [sys.executable, "-u", "-m", "labkit.pbx", "--config", str(config), "--quiet",
                "--port", str(self.port), "--data-dir", str(self.workdir / "data")]

    def prepare_callee(self) -> None:
        r = run_sipp(sipp_cmd("register.xml", self.port, self.callee_port, "-m", "1", "-s", "101",
                              "-au", "101", "-ap", "bench101", "-timeout", "10s", "-timeout_error"), 20)
        if r.returncode != 0:
            raise RuntimeError("the callee could not register:\n" + r.stdout[-2000:])

    def caller_args(self) -> list[str]:
        return super().caller_args() + ["-au", "100", "-ap", "bench100",
                                        "-auth_uri", f"101@{HOST}:{self.port}"]


class Sippy(Server):
    name = "sippy"
    caller_scenario = "uac.xml"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sippy.b2bua_simple", "-f", "-l", HOST, "-p", str(self.port),
                "-n", f"{HOST}:{self.callee_port}"]

    def env(self) -> dict:
        return dict(os.environ, SIPLOG_BEND="none")   # Sippy's SIP log off, as labkit's --quiet


def measure(server: Server, rates: list[int], seconds: float, hold: float) -> list[Step]:
    steps: list[Step] = []
    server.start()
    callee = None
    try:
        server.prepare_callee()
        callee = subprocess.Popen(
            sipp_cmd("uas.xml", server.port, server.callee_port),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(SIPP_CPU),
            env=dict(os.environ, TERM="dumb"))
        time.sleep(0.5)   # let the callee bind and start reading
        for rate in rates:
            calls = max(1, int(rate * seconds))
            stats_file = server.workdir / f"{server.name}_{rate}.csv"
            cmd = sipp_cmd(server.caller_scenario, server.port, free_port(), *server.caller_args(),
                           "-r", str(rate), "-m", str(calls), "-d", str(int(hold * 1000)),
                           "-trace_stat", "-stf", str(stats_file), "-fd", "1",
                           "-timeout", f"{int(seconds + hold + 20)}s", "-max_recv_loops", "10000")
            wait_idle(server.proc.pid)
            cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
            try:
                run_sipp(cmd, timeout=seconds + hold + 40)
            except subprocess.TimeoutExpired:
                pass   # the statistics file still says how far it got
            cpu = (cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - t0) * 100
            wait_idle(server.proc.pid)     # work after the last BYE (teardown) belongs to the step too
            used = cpu_seconds(server.proc.pid) - cpu0
            s = read_stats(stats_file, calls)
            step = Step(rate, calls, s["successful"], s["failed"], s["retransmissions"], s["setup_ms"], cpu,
                        s["offered"], used * 1000 / max(1, s["successful"] + s["failed"]))
            steps.append(step)
            print(f"{server.name:>7} {rate:>6} {step.offered:>8.0f} {calls:>6} {step.successful:>6} "
                  f"{step.failed:>6} {step.retransmissions:>7} {step.setup_ms:>8.1f} {cpu:>5.0f}%"
                  f" {step.cpu_ms_per_call:>7.2f}"
                  f"  {'ok' if step.sustained else 'NOT sustained'}", flush=True)
            if not step.sustained:
                break
    finally:
        if callee is not None:
            stop(callee)
        stop(server.proc)
    return steps


def best(steps: list[Step]) -> int:
    return max((s.rate for s in steps if s.sustained), default=0)


# ---- in process: labkit's CPU per call without sockets or SIPp (a steadier figure) -------------
def sip(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [start] + [f"{name}: {value}" for name, value in headers] + [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


CALL_SDP = (b"v=0\r\no=sipp 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            b"a=fmtp:101 0-16\r\na=ptime:20\r\n")


class InProcess:
    """The PBX object with the benchmark's call flow handed to its transport layer (and what
    it sends caught before the socket): INVITE, 401, ACK, INVITE with digest, the callee's
    180 and 200, ACK, BYE, as SIPp does it. Only the PBX's own work is timed (process CPU
    around each delivery and each turn of its event loop), so other processes on the
    machine move the figure far less than the SIPp runs; sockets and SIPp are not in it."""

    def __init__(self, pbx):
        from labkit.sip import parse
        from labkit.sip.transport import Peer

        self.pbx, self.parse, self.sent, self.cpu = pbx, parse, [], 0.0
        self.caller, self.callee = Peer("udp", HOST, 40000), Peer("udp", HOST, 40002)
        self.transport = pbx.endpoint.transport
        self.transport.send_bytes = lambda data, peer: self.sent.append((data, peer)) or True

    def deliver(self, data: bytes, peer) -> None:
        t0 = time.process_time()
        self.transport._deliver(data, peer)
        self.cpu += time.process_time() - t0

    async def turn(self) -> None:
        t0 = time.process_time()
        await asyncio.sleep(0)
        self.cpu += time.process_time() - t0

    async def expect(self, what: str, status: int | None = None, method: str | None = None, to=None):
        """The first message sent that matches (a response status + CSeq method, or a request)."""
        for _ in range(200):
            for i, (data, peer) in enumerate(self.sent):
                m = self.parse(data)
                if (getattr(m, "status", None) == status and m.cseq.method == method if status else
                        getattr(m, "method", None) == method and (to is None or peer == to)):
                    del self.sent[i]
                    return m
            await self.turn()
        raise RuntimeError(f"the PBX sent no {what}")

    def answer(self, request, status: int, reason: str, body: bytes = b"") -> bytes:
        headers = [(name, request.get(name)) for name in ("Via", "From", "To", "Call-ID", "CSeq")]
        headers[2] = ("To", headers[2][1] + ("" if ";tag=" in headers[2][1] else ";tag=callee"))
        headers.append(("Contact", f"<sip:101@{HOST}:40002>"))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return sip(f"SIP/2.0 {status} {reason}", headers, body)

    async def authenticate(self, start: str, headers, peer, user: str, password: str, uri: str, body=b""):
        from labkit.sip.digest import DigestChallenge, authorization_for

        method = start.split()[0]
        self.deliver(sip(start, headers(1, method, ""), body), peer)
        challenge = await self.expect("401", 401, method)
        if method == "INVITE":
            self.deliver(sip(f"ACK {uri} SIP/2.0", headers(1, "ACK", f";tag={challenge.to.tag}")), peer)
        auth = authorization_for(DigestChallenge.parse(challenge.get("WWW-Authenticate")), user, password,
                                 method, uri)
        self.deliver(sip(start, headers(2, method, "") + [("Authorization", auth)], body), peer)

    async def register_callee(self, port: int) -> None:
        def headers(cseq, method, _tag):
            return [("Via", f"SIP/2.0/UDP {HOST}:40002;branch=z9hG4bK-reg{cseq};rport"),
                    ("From", f"<sip:101@{HOST}>;tag=reg"), ("To", f"<sip:101@{HOST}>"), ("Call-ID", "reg@bench"),
                    ("CSeq", f"{cseq} {method}"), ("Contact", f"<sip:101@{HOST}:40002>"), ("Expires", "3600")]
        await self.authenticate(f"REGISTER sip:{HOST}:{port} SIP/2.0", headers, self.callee, "101", "bench101",
                                f"sip:{HOST}:{port}")
        await self.expect("200 to REGISTER", 200, "REGISTER")

    async def call(self, n: str, port: int) -> None:
        uri = f"sip:101@{HOST}:{port}"

        def headers(cseq, method, to_tag, branch=None):
            return [("Via", f"SIP/2.0/UDP {HOST}:40000;branch=z9hG4bK-{n}-{branch or cseq};rport"),
                    ("From", f"sipp <sip:100@{HOST}>;tag={n}"), ("To", f"<sip:101@{HOST}>{to_tag}"),
                    ("Call-ID", f"{n}@bench"), ("CSeq", f"{cseq} {method}"), ("Max-Forwards", "70")] + (
                [("Contact", f"<sip:100@{HOST}:40000>"), ("Content-Type", "application/sdp")]
                if method == "INVITE" else [])
        await self.authenticate(f"INVITE {uri} SIP/2.0", headers, self.caller, "100", "bench100", uri, CALL_SDP)
        invite = await self.expect("INVITE to the callee", method="INVITE", to=self.callee)
        self.deliver(self.answer(invite, 180, "Ringing"), self.callee)
        self.deliver(self.answer(invite, 200, "OK", CALL_SDP.replace(b"6000", b"6002")), self.callee)
        await self.expect("ACK to the callee", method="ACK", to=self.callee)
        ok = await self.expect("200 to the caller", 200, "INVITE")
        tag, target = f";tag={ok.to.tag}", ok.contact[0].uri
        self.deliver(sip(f"ACK {target} SIP/2.0", headers(2, "ACK", tag, "ack")), self.caller)
        self.deliver(sip(f"BYE {target} SIP/2.0", headers(3, "BYE", tag)), self.caller)
        await self.expect("200 to BYE", 200, "BYE")
        bye = await self.expect("BYE to the callee", method="BYE", to=self.callee)
        self.deliver(self.answer(bye, 200, "OK"), self.callee)
        for _ in range(20):   # the teardown tasks
            await self.turn()
        self.sent.clear()


def in_process(calls: int, rounds: int = 5) -> float:
    """labkit's least PBX CPU per call (ms) over `rounds` rounds of `calls` calls (InProcess)."""
    import gc

    from labkit.pbx.config import loads
    from labkit.pbx.loop import run
    from labkit.pbx.server import PBX

    async def go() -> float:
        with tempfile.TemporaryDirectory(prefix="bench_calls_") as tmp:
            config = loads(LABKIT_CONFIG + "\n[server]\nport = 0\n")
            config.data_dir = Path(tmp)
            pbx = PBX(config)
            await pbx.start()
            try:
                rig, port = InProcess(pbx), pbx.address[1]
                await rig.register_callee(port)
                gc.collect()
                gc.freeze()
                gc.disable()      # as `python -m labkit.pbx` runs (its collector runs on a timer)
                for n in range(50):
                    await rig.call(f"warm{n}", port)
                best = float("inf")
                for r in range(rounds):
                    rig.cpu = 0.0
                    for n in range(calls):
                        await rig.call(f"r{r}c{n}", port)
                    best = min(best, rig.cpu * 1000 / calls)
                return best
            finally:
                gc.enable()
                await pbx.stop()

    return run(go())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="50,100,150,200,250,300,400,600", help="calls per second to try, in order")
    p.add_argument("--seconds", type=float, default=6.0, help="how long each rate places new calls")
    p.add_argument("--hold", type=float, default=1.0, help="seconds between the ACK and the BYE")
    p.add_argument("--servers", default="labkit,sippy", help="which of labkit,sippy to measure")
    p.add_argument("--in-process", type=int, metavar="CALLS",
                   help="instead: labkit's CPU per call with the call flow handed to the PBX object in this "
                        "process (no sockets, no SIPp, no reference server): steadier on a busy machine")
    args = p.parse_args()
    if args.in_process:
        ms = in_process(args.in_process)
        print(f"labkit in process: {ms:.3f} ms of PBX CPU per call (least of 5 rounds of {args.in_process} calls; "
              "no sockets, no SIPp: compare it only with itself)")
        return 0
    rates = [int(r) for r in args.rates.split(",")]
    names = [n.strip() for n in args.servers.split(",")]

    if shutil.which("sipp") is None:
        print("SIPp is not installed (Debian package sip-tester: scripts/sysdeps.sh installs it)")
        return 2
    kinds = {"labkit": Labkit, "sippy": Sippy}
    if "sippy" in names:
        if importlib.util.find_spec("sippy") is None:
            print("Sippy is not installed (pip install sippy): measuring labkit only")
            names.remove("sippy")
    unknown = [n for n in names if n not in kinds]
    if unknown:
        p.error(f"unknown server(s) {', '.join(unknown)}; choose from labkit, sippy")

    print(f"SIPp caller + callee on CPU {SIPP_CPU}, server on CPU {SERVER_CPU}; "
          f"{args.seconds:g} s of new calls per rate, hold {args.hold:g} s, signalling only; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'server':>7} {'rate':>6} {'offered':>8} {'calls':>6} {'ok':>6} {'failed':>6} "
          f"{'retrans':>7} {'setup ms':>8} {'CPU':>6} {'ms/call':>7}")
    results: dict[str, list[Step]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_calls_") as tmp:
        for name in names:
            workdir = Path(tmp) / name
            workdir.mkdir()
            try:
                results[name] = measure(kinds[name](workdir), rates, args.seconds, args.hold)
            except (RuntimeError, OSError) as exc:
                print(f"{name}: {exc}")
                log = workdir / f"{name}.log"
                if log.exists():
                    print(log.read_text()[-2000:])
                results[name] = []

    print()
    for name, steps in results.items():
        top = best(steps)
        at = next((s for s in steps if s.rate == top), None)
        cpu = f", server CPU {at.cpu:.0f}% of a core, set-up {at.setup_ms:.1f} ms" if at else ""
        print(f"{name:>7}: {top} calls/s sustained with zero failed calls{cpu}")
    print(f"  load average at the end {os.getloadavg()[0]:.1f}: other processes on these CPUs lower "
          "every server's figures alike; the CPU per call below depends less on them")
    for name, steps in results.items():
        ok = [s for s in steps if s.sustained]
        if ok:
            per_call = min(s.cpu_ms_per_call for s in ok)
            print(f"{name:>7}: {per_call:.2f} ms of CPU per call at best -> at most ~{1000 / per_call:.0f} "
                  "calls/s on one whole core")
    if "labkit" in results and "sippy" in results:
        ours, ref = best(results["labkit"]), best(results["sippy"])
        both = sorted({s.rate for s in results["labkit"] if s.sustained}
                      & {s.rate for s in results["sippy"] if s.sustained})
        if both:
            at = both[-1]
            mine = next(s for s in results["labkit"] if s.rate == at).cpu_ms_per_call
            theirs = next(s for s in results["sippy"] if s.rate == at).cpu_ms_per_call
            print(f"  CPU per call at {at} calls/s: labkit {mine:.2f} ms, Sippy {theirs:.2f} ms "
                  f"(Sippy/labkit {theirs / mine:.2f})")
        if ref:
            ratio = ours / ref
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            print(f"  ratio labkit/Sippy: {ratio:.2f} (target ≥ {TARGET_RATIO:g}×: {verdict}); labkit "
                  "authenticates every call (digest), runs the dialplan and opens an RTP relay; "
                  "Sippy does none of these")
        if results["sippy"] and all(s.sustained for s in results["sippy"]):
            print("  Sippy sustained every rate tried: add higher --rates for its ceiling")
        if results["labkit"] and all(s.sustained for s in results["labkit"]):
            print("  labkit sustained every rate tried: add higher --rates for its ceiling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
