"""Interop harness: the real PBX as a subprocess, and SIPp (Debian `sip-tester`) talking to it."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).parent / "scenarios"


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PbxProcess:
    proc: subprocess.Popen
    host: str
    port: int
    data_dir: Path
    config: Path | None
    log: list[str]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run `python -m labkit.pbx ARGS` against the same config/data dir (e.g. --list)."""
        cmd = [sys.executable, "-m", "labkit.pbx", "--data-dir", str(self.data_dir)]
        if self.config:
            cmd += ["--config", str(self.config)]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=20)

    def output(self) -> str:
        return "".join(self.log)


def start_pbx(tmp_path: Path, config_text: str | None = None, extra: list[str] = ()) -> PbxProcess:
    config = None
    if config_text is not None:
        config = tmp_path / "pbx.toml"
        config.write_text(config_text)
    cmd = [sys.executable, "-u", "-m", "labkit.pbx", "--port", "0", "--data-dir", str(tmp_path / "data")]
    if config:
        cmd += ["--config", str(config)]
    proc = subprocess.Popen(cmd + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        log.append(line)
        m = re.search(r"ready on (\S+):(\d+)", line)
        if m:
            pbx = PbxProcess(proc, m.group(1), int(m.group(2)), tmp_path / "data", config, log)
            _drain(proc, log)
            return pbx
    proc.kill()
    raise RuntimeError("PBX did not start:\n" + "".join(log))


def _drain(proc: subprocess.Popen, log: list[str]) -> None:
    import threading

    def pump():
        for line in proc.stdout:
            log.append(line)

    threading.Thread(target=pump, daemon=True).start()


def stop_pbx(pbx: PbxProcess) -> int:
    if pbx.proc.poll() is None:
        pbx.proc.send_signal(signal.SIGTERM)
        try:
            return pbx.proc.wait(10)
        except subprocess.TimeoutExpired:
            pbx.proc.kill()
            pbx.proc.wait(5)
            raise AssertionError("PBX did not stop on SIGTERM")
    return pbx.proc.returncode


@pytest.fixture
def pbx(tmp_path):
    p = start_pbx(tmp_path)
    yield p
    stop_pbx(p)


def sipp(scenario: str, target: tuple[str, int], *args: str, calls: int = 1, timeout: float = 20,
         cwd: Path | None = None, transport: str = "u1", local_port: int | None = None) -> subprocess.CompletedProcess:
    """Run SIPp with one of our scenarios (or a built-in with -sn); returns the finished process."""
    exe = shutil.which("sipp")
    if exe is None:
        pytest.skip("SIPp is not installed (Debian package sip-tester; `make test` installs it as root)")
    scen = ["-sn", scenario[3:]] if scenario.startswith("sn:") else ["-sf", str(SCENARIOS / scenario)]
    cmd = [exe, f"{target[0]}:{target[1]}", *scen, "-i", "127.0.0.1", "-p", str(local_port or free_port()),
           "-m", str(calls), "-t", transport, "-timeout", f"{int(timeout)}s", "-timeout_error",
           "-max_recv_loops", "1000", "-nostdin", *args]
    env = dict(os.environ, TERM="dumb")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 15, cwd=cwd, env=env)
