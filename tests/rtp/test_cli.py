"""Sender and receiver CLIs as real subprocesses on 127.0.0.1."""
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from labkit.rtp.send import load_audio

from .test_stream import frames_found

ROOT = Path(__file__).resolve().parents[2]


def free_port_pair() -> int:
    """An even port whose successor (RTCP) is free too."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                    b.bind(("127.0.0.1", port + 1))
                    return port
            except OSError:
                continue
    raise RuntimeError("no free port pair")


def test_send_wav_to_receiver_subprocess(tmp_path):
    rate = 48000  # the sender must resample 48 kHz to G.711's 8 kHz
    t = np.arange(int(2.0 * rate)) / rate
    signal = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    signal += np.random.default_rng(0).normal(0, 0.01, len(t))  # no two frames alike
    wav_in, wav_out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(wav_in, signal, rate, subtype="PCM_16")
    port = free_port_pair()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "labkit.rtp.receive", "-p", str(port), "-o", str(wav_out),
         "--duration", "15", "--idle", "1.0", "--codec", "pcma"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = receiver.stdout.readline()  # wait until it listens
        assert line.startswith(f"listening on 127.0.0.1:{port}"), line + receiver.stderr.read()
        sender = subprocess.run(
            [sys.executable, "-m", "labkit.rtp.send", "-d", f"127.0.0.1:{port}", "-f", str(wav_in),
             "--codec", "pcma", "--report-every", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert sender.returncode == 0, sender.stderr
        out, err = receiver.communicate(timeout=30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert receiver.returncode == 0, err
    progress = re.findall(r"^sent (\d+) packets \((\d+\.\d\d) s\), (\d+) late$", sender.stdout, re.M)
    assert progress and progress[-1][:2] == ("100", "2.00")
    stats = re.findall(r"^received (\d+) packets, lost (\d+) \((\d+\.\d)%\), jitter (\d+\.\d) ms$", out, re.M)
    assert stats and stats[-1][:3] == ("100", "0", "0.0")
    got, got_rate = sf.read(wav_out, dtype="int16")
    assert got_rate == 8000
    # what the sender sent: the file resampled to 8 kHz; each frame must come out bit-exact after
    # A-law, except the odd frame the adaptive buffer dropped or blended while it settled
    sent = load_audio(str(wav_in), 8000)
    found = frames_found(sent, got, "pcma")
    assert len(found) >= 0.9 * (len(sent) // 160)


def test_sender_rejects_bad_destination():
    r = subprocess.run([sys.executable, "-m", "labkit.rtp.send", "-d", "nohost", "-f", "x.wav"],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "expected HOST:PORT, got 'nohost'" in r.stderr


def test_sender_reports_unreadable_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    r = subprocess.run([sys.executable, "-m", "labkit.rtp.send", "-d", "127.0.0.1:9", "-f", str(bad)],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"cannot read audio file {str(bad)!r}" in r.stderr
