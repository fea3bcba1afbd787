"""The real PBX (`python -m labkit.pbx`) as a subprocess, for interop tests (SIPp, real phones).

Started on 127.0.0.1 port 0 with a TOML config and its own data dir; the log is collected
line by line with the wall-clock time each line arrived, so tests can wait for a log line
and measure the PBX's side of a registration or a call from its own timestamps.
"""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


#: the project's prompts (what the PBX plays), to compare with what a phone heard
SOUNDS = Path(__file__).resolve().parents[1] / "data" / "audio"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on 127.0.0.1 right now (UDP by default; pass SOCK_STREAM for TCP)."""
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
    workdir: Path
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`python -m labkit.pbx ARGS` on the same config and data dir (e.g. `--list`)."""
        cmd = [sys.executable, "-m", "labkit.pbx", "--data-dir", str(self.data_dir)]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=20)

    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def mark(self) -> int:
        """A position in the log; `wait_for(..., since=mark)` only looks at lines after it."""
        with self._changed:
            return len(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10.0, since: int = 0) -> re.Match:
        """The first log line (after `since`) matching `pattern`; AssertionError with the log if none comes."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[since:]:
                    m = regex.search(line)
                    if m:
                        return m
                since = max(since, len(self.lines))
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no PBX log line matching {pattern!r} within {timeout} s:\n"
                                         + "".join(self.lines[-60:]))
                self._changed.wait(min(left, 0.2))

    def _pump(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def stop(self) -> int:
        """SIGTERM and wait; kill (and fail) only if it does not stop. The log is kept as pbx.log."""
        try:
            return self._stop()
        finally:
            (self.workdir / "pbx.log").write_text(self.output())

    def _stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("PBX did not stop on SIGTERM")
        return self.proc.returncode


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> None:
    """Give a process we started ``timeout`` s to end after being asked to; kill it if not."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_pbx(workdir: Path, config_text: str | None = None, timeout: float = 20.0,
              bind: str = "127.0.0.1") -> PbxProcess:
    """Run the PBX with this config (None: the embedded default) on `bind` (loopback), a free
    port; return once it says it is ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    cmd = [sys.executable, "-u", "-m", "labkit.pbx", "--bind", bind, "--port", "0", "--data-dir", str(data_dir)]
    config = None
    if config_text is not None:
        config = workdir / "pbx.toml"
        config.write_text(config_text)
        cmd += ["--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pbx = PbxProcess(proc, bind, 0, data_dir, config, workdir)
    threading.Thread(target=pbx._pump, daemon=True).start()
    try:
        m = pbx.wait_for(r"ready on (\S+):(\d+)", timeout)
    except AssertionError:
        proc.kill()
        proc.wait(5)
        raise RuntimeError("PBX did not start:\n" + pbx.output()) from None
    pbx.host, pbx.port = m.group(1), int(m.group(2))
    return pbx


_STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) ")


def log_time(line_match: re.Match) -> float:
    """Seconds since midnight (local time) of the PBX log line `line_match` was found in."""
    line = line_match.string
    m = _STAMP.match(line)
    if not m:
        raise ValueError(f"PBX log line without a time stamp: {line!r}")
    h, mi, s, ms = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000
