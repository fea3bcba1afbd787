"""Interop harness: the real PBX as a subprocess, and SIPp (Debian `sip-tester`) talking to it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ..pbxproc import PbxProcess, free_port, start_pbx

SCENARIOS = Path(__file__).parent / "scenarios"


def stop_pbx(pbx: PbxProcess) -> int:
    return pbx.stop()


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
