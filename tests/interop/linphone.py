"""Drive Linphone's console client (`linphonec`, Debian `linphone-cli`) headless through its stdin.

What it takes to run linphonec 5.1 on a machine with no sound card and no desktop:
* a writable data dir (HOME): without it the core never leaves `LinphoneGlobalStartup` and
  never sends a REGISTER (calls still go out, which makes the failure confusing);
* `[sip] bind_address=127.0.0.1`, `use_ipv6=0` and `ipv6_migration_done=1` (else linphone turns
  IPv6 on once and offers media on the machine's IPv6/LAN address instead of loopback);
* `ports sip N` typed at run time (the config file's SIP port is not honoured);
* `soundcard use files`: the microphone is the file given to `play`, the speaker the file
  given to `record`.
Output lines ("Call 1 ... connected.", "... ended") are collected with their arrival time.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..pbxproc import free_port, wait_or_kill

LINPHONERC = """\
[sip]
use_ipv6=0
ipv6_migration_done=1
bind_address=127.0.0.1
[rtp]
audio_rtp_port={rtp_min}-{rtp_max}
[sound]
echocancellation=0
[video]
enabled=0
automatically_initiate=0
automatically_accept=0
"""


def installed() -> str | None:
    return shutil.which("linphonec")


@dataclass
class Linphonec:
    workdir: Path
    sip_port: int = field(default_factory=free_port)
    rtp_range: tuple[int, int] = (42000, 42999)
    proc: subprocess.Popen | None = None
    lines: list[tuple[float, str]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def log_path(self) -> Path:
        return self.workdir / "linphone-debug.log"

    def start(self) -> "Linphonec":
        exe = installed()
        if exe is None:
            raise FileNotFoundError("linphonec is not installed (Debian package linphone-cli)")
        home = self.workdir / "home"
        (home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        rc = self.workdir / "linphonerc"
        rc.write_text(LINPHONERC.format(rtp_min=self.rtp_range[0], rtp_max=self.rtp_range[1]))
        env = dict(os.environ, HOME=str(home))
        self.proc = subprocess.Popen([exe, "-c", str(rc), "-d", "4", "-l", str(self.log_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        self.send(f"ports sip {self.sip_port}")
        self.wait_output(rf"Setting sip port to {self.sip_port}")
        self.send("soundcard use files")
        self.wait_output(r"Using wav files instead of soundcard")
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            # the prompt and a command's output may share a line: split at each prompt
            for part in line.rstrip("\n").split("linphonec> "):
                if part.strip():
                    with self._changed:
                        self.lines.append((time.time(), part.strip()))
                        self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def mark(self) -> int:
        with self._changed:
            return len(self.lines)

    def output(self) -> str:
        with self._changed:
            return "\n".join(text for _, text in self.lines)

    def wait_output(self, pattern: str, timeout: float = 10.0, since: int = 0) -> tuple[float, re.Match]:
        """(arrival time, match) of the first output line after `since` matching `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, text in self.lines[since:]:
                    m = regex.search(text)
                    if m:
                        return at, m
                since = max(since, len(self.lines))
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no linphonec output matching {pattern!r} within {timeout} s:\n"
                                         + self.output()[-3000:])
                self._changed.wait(min(left, 0.2))

    def register(self, user: str, password: str, host: str, port: int, timeout: float = 10.0) -> str:
        """`register` in one line, then poll `states proxies` until Ok or Failed; returns the state."""
        self.send(f"register sip:{user}@{host}:{port} sip:{host}:{port} {password}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            since = self.mark()
            self.send("states proxies")
            _, m = self.wait_output(r"\|\s*(LinphoneRegistration\w+)", since=since)
            if m.group(1) in ("LinphoneRegistrationOk", "LinphoneRegistrationFailed"):
                return m.group(1)
            time.sleep(0.1)
        return m.group(1)

    def close(self, timeout: float = 10.0) -> None:
        """`quit` (it un-registers first); kill our own process if it does not end."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.send("quit")
            except (BrokenPipeError, OSError):
                pass
        wait_or_kill(self.proc, timeout)

    def debug_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
