"""Drive a real baresip softphone headless: a config dir, the ctrl_tcp control socket, its events.

baresip (Debian `baresip-core`) runs with no sound card: the microphone is a sine generator
(`ausine`), the speaker a null device (`aubridge`), and the `sndfile` module writes what the
phone sent and heard to WAV files, so a test can check the audio itself. Commands (`dial 600`,
`hangup`) and events (REGISTER_OK, CALL_ESTABLISHED, CALL_CLOSED) go over ctrl_tcp: JSON in
netstrings on a loopback TCP port. Everything binds 127.0.0.1; `close()` ends only the process
this object started.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from ..pbxproc import free_port, wait_or_kill

MODULE_PATH = "/usr/lib/baresip/modules"

CONFIG_TEMPLATE = """\
# baresip config written by tests/interop/baresip.py: loopback only, no sound card
poll_method\t\tepoll
sip_listen\t\t{listen}
net_interface\t\t{host}
call_local_timeout\t30
call_max_calls\t\t2
# microphone: a {tone_hz} Hz sine (ausine only makes 48 kHz stereo; baresip resamples to 8 kHz)
audio_source\t\tausine,{tone_hz}
audio_player\t\taubridge,{name}
audio_alert\t\taubridge,{name}
ausrc_srate\t\t48000
auplay_srate\t\t48000
ausrc_channels\t\t2
auplay_channels\t\t2
audio_level\t\tno
rtp_ports\t\t{rtp_min}-{rtp_max}
jitter_buffer_delay\t1-5
module_path\t\t{module_path}
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
snd_path\t\t{record_dir}
module_tmp\t\taccount.so
module\t\t\tstdio.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}
"""


def installed() -> str | None:
    """Path of the baresip executable, or None."""
    return shutil.which("baresip")


def version() -> tuple[int, ...] | None:
    """baresip's version (from the first line of `baresip -h`), e.g. (1, 0, 0)."""
    exe = installed()
    if exe is None:
        return None
    out = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=10)
    m = re.search(r"baresip v(\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return tuple(int(g) for g in m.groups()) if m else None


def account_line(user: str, password: str, pbx_host: str, pbx_port: int, *, regint: int = 60,
                 answer: str | None = None) -> str:
    """One line of baresip's `accounts` file: the AOR on the PBX, digest password, re-register interval."""
    host = f"[{pbx_host}]" if ":" in pbx_host else pbx_host
    line = f"<sip:{user}@{host}:{pbx_port};transport=udp>;auth_pass={password};regint={regint}"
    if answer:
        line += f";answermode={answer}"       # 'auto': answer incoming calls at once
    return line


def netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class NetstringReader:
    """Split a byte stream into netstrings (`<len>:<payload>,`), as ctrl_tcp speaks."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        out = []
        while True:
            colon = self.buffer.find(b":")
            if colon < 0:
                if len(self.buffer) > 10:
                    raise ValueError(f"not a netstring: {self.buffer[:40]!r}")
                return out
            length = int(self.buffer[:colon])
            end = colon + 1 + length
            if len(self.buffer) < end + 1:
                return out
            if self.buffer[end:end + 1] != b",":
                raise ValueError(f"netstring without its trailing comma: {self.buffer[:end + 1][:60]!r}")
            out.append(self.buffer[colon + 1:end])
            self.buffer = self.buffer[end + 1:]


class PortTaken(RuntimeError):
    """baresip could not bind a port we picked (another process took it first)."""


@dataclass
class Event:
    """A ctrl_tcp event (`type` like CALL_ESTABLISHED) with the local time it arrived."""

    type: str
    data: dict
    at: float   # time.time() on arrival


@dataclass
class Baresip:
    """One baresip process: `start()`, `wait_event('REGISTER_OK')`, `command('dial', '600')`, `close()`."""

    workdir: Path
    accounts: list[str] = field(default_factory=list)   # registered at start (see add_account)
    tone_hz: int = 440
    name: str = "phone"
    host: str = "127.0.0.1"          # the loopback address baresip binds and advertises (or "::1")
    sip_port: int = field(default_factory=free_port)
    ctrl_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    rtp_range: tuple[int, int] = (40000, 40999)
    max_seconds: int = 60            # baresip's own -t: it quits by itself after this
    proc: subprocess.Popen | None = None
    events: list[Event] = field(default_factory=list)
    responses: list[dict] = field(default_factory=list)
    _sock: socket.socket | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _token: int = 0

    @property
    def record_dir(self) -> Path:
        return self.workdir / "recordings"

    @property
    def log_path(self) -> Path:
        return self.workdir / "baresip.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(exist_ok=True)
        (self.workdir / "config").write_text(CONFIG_TEMPLATE.format(
            listen=f"[{self.host}]:{self.sip_port}" if ":" in self.host else f"{self.host}:{self.sip_port}",
            host=self.host, ctrl_port=self.ctrl_port, tone_hz=self.tone_hz, name=self.name,
            rtp_min=self.rtp_range[0], rtp_max=self.rtp_range[1], module_path=MODULE_PATH,
            record_dir=self.record_dir))
        (self.workdir / "accounts").write_text("\n".join(self.accounts) + "\n")
        (self.workdir / "contacts").write_text("")

    def start(self, timeout: float = 10.0, attempts: int = 3) -> "Baresip":
        """Launch baresip and connect to its ctrl_tcp. Our free ports are only free when we looked:
        if another process took one in between, baresip says so and we try fresh ports."""
        for attempt in range(attempts):
            try:
                return self._launch(timeout)
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                self.sip_port, self.ctrl_port = free_port(), free_port(socket.SOCK_STREAM)
        raise AssertionError("unreachable")

    def _launch(self, timeout: float) -> "Baresip":
        exe = installed()
        if exe is None:
            raise FileNotFoundError("baresip is not installed (Debian package baresip-core)")
        self.write_config()
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen([exe, "-f", str(self.workdir), "-t", str(self.max_seconds)],
                                     stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:   # ctrl_tcp listens once baresip has loaded its modules
            if self.proc.poll() is not None:
                text = self.log()
                if "Address already in use" in text:
                    raise PortTaken(text)
                raise RuntimeError(f"baresip exited with {self.proc.returncode}:\n{text}")
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"baresip's ctrl_tcp did not listen on {self.ctrl_port} "
                                       f"within {timeout} s:\n{self.log()}")
                time.sleep(0.05)
        self._sock.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def log(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)                    # colour codes
        return re.sub(r"\[\d+:\d\d:\d\d\] audio=\S+ \(bit/s\)\s*", "", text)   # the call-status ticker

    def _read(self) -> None:
        reader = NetstringReader()
        sock = self._sock
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            for message in reader.feed(data):
                item = json.loads(message)
                with self._changed:
                    if item.get("event"):
                        self.events.append(Event(item.get("type", ""), item, time.time()))
                    elif item.get("response"):
                        self.responses.append(item)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict:
        """Run a baresip command (as typed after '/') and return its response."""
        with self._changed:
            self._token += 1
            token = str(self._token)
        payload = {"command": name, "token": token}
        if params:
            payload["params"] = params
        self._sock.sendall(netstring(json.dumps(payload).encode()))
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for r in self.responses:
                    if r.get("token") == token:
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"baresip did not answer {name!r} within {timeout} s:\n{self.log()[-3000:]}")
                self._changed.wait(min(left, 0.2))

    def wait_event(self, *types: str, timeout: float = 10.0, since: int = 0) -> Event:
        """The first event (at index >= `since`) of one of `types`; AssertionError with baresip's log if none."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for ev in self.events[since:]:
                    if ev.type in types:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None):
                    seen = [e.type for e in self.events]
                    raise AssertionError(f"no baresip event {types} within {timeout} s (saw {seen}):\n"
                                         + self.log()[-3000:])
                self._changed.wait(min(left, 0.2))

    def keys(self, keys: str) -> None:
        """Type on baresip's console (the stdio module): in a call, digits go out as DTMF
        (RFC 4733 telephone-events). ctrl_tcp cannot do this in baresip 1.0."""
        self.proc.stdin.write(keys.encode())
        self.proc.stdin.flush()

    def mark(self) -> int:
        with self._changed:
            return len(self.events)

    def add_account(self, line: str, timeout: float = 10.0) -> Event:
        """`uanew <account line>`: create the user agent now, so we see its REGISTER_OK or _FAIL.

        (Accounts in the `accounts` file register before ctrl_tcp accepts us: we would miss the event.)
        """
        since = self.mark()
        response = self.command("uanew", line)
        if not response.get("ok"):
            raise AssertionError(f"baresip refused the account {line!r}: {response}")
        return self.wait_event("REGISTER_OK", "REGISTER_FAIL", timeout=timeout, since=since)

    def recordings(self, kind: str = "dec") -> list[Path]:
        """WAV files the sndfile module wrote: 'dec' = what the phone heard, 'enc' = what it sent."""
        return sorted(self.record_dir.glob(f"dump-*-{kind}.wav"))

    def heard(self) -> tuple[np.ndarray, int]:
        """The audio of the latest call as the phone decoded it (int16 samples, rate)."""
        files = self.recordings("dec")
        if not files:
            raise AssertionError(f"baresip recorded nothing in {self.record_dir}:\n{self.log()[-2000:]}")
        data, rate = sf.read(str(files[-1]), dtype="int16", always_2d=True)
        return data[:, 0], rate

    def close(self, timeout: float = 5.0) -> None:
        """Ask baresip to quit (it un-registers first); kill our own process if it does not."""
        if self.proc is None:
            return
        if self.proc.poll() is None and self._sock is not None:
            try:
                self._sock.sendall(netstring(json.dumps({"command": "quit"}).encode()))
            except OSError:
                pass
        wait_or_kill(self.proc, timeout)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> "Baresip":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    """The strongest frequency in `pcm` (Hann-windowed FFT peak), in Hz."""
    x = pcm.astype(np.float64)
    x -= x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def best_correlation(heard: np.ndarray, reference: np.ndarray) -> float:
    """Peak normalised cross-correlation of `reference` inside `heard` (1.0 = the same waveform)."""
    a = heard.astype(np.float64)
    b = reference.astype(np.float64)
    if len(a) < len(b):
        a = np.pad(a, (0, len(b) - len(a)))
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)[:len(a) - len(b) + 1]
    energy_b = np.sqrt(np.sum(b * b))
    window = np.concatenate([[0.0], np.cumsum(a * a)])
    energy_a = np.sqrt(np.maximum(window[len(b):] - window[:-len(b)], 1e-9))
    return float(np.max(corr / (energy_a * energy_b + 1e-9)))
