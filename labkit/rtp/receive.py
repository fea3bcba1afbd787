"""Receive RTP into a WAV file: ``python -m labkit.rtp.receive -p PORT -o out.wav``.

A thin shell over :class:`labkit.rtp.stream.MediaStream`: packets go through the RFC 3550
statistics, the adaptive jitter buffer and packet-loss concealment; the played-out audio is
written with soundfile. Stops after ``--duration`` seconds, on RTCP BYE, or when the sender has
been silent for ``--idle`` seconds. Introduced in notebook 04.

    python -m labkit.rtp.receive -p 40000 -o out.wav --duration 10
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import sys

import numpy as np

from .stream import MediaStream


class Playback:
    """Plays frames on the sound card from PortAudio's own thread, so a slow audio device never
    blocks the event loop (the stream's clock). Frames wait in a short queue; an empty queue
    plays silence."""

    def __init__(self, rate: int) -> None:
        import sounddevice as sd  # raises OSError, not ImportError, without PortAudio

        self.rate = rate
        self._pending = collections.deque()
        self._buffer = np.zeros(0, np.int16)
        self._stream = sd.OutputStream(samplerate=rate, channels=1, dtype="int16", callback=self._fill)
        self._stream.start()

    def write(self, frame: np.ndarray) -> None:
        self._pending.append(frame)
        while len(self._pending) > 50:  # never fall more than a second behind
            self._pending.popleft()

    def _fill(self, out, frames, time_info, status) -> None:
        while len(self._buffer) < frames and self._pending:
            self._buffer = np.concatenate([self._buffer, self._pending.popleft()])
        n = min(frames, len(self._buffer))
        out[:n, 0] = self._buffer[:n]
        out[n:, 0] = 0
        self._buffer = self._buffer[n:]

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


def open_playback(rate: int) -> Playback | None:
    """Sound-card playback, or None with a clear message when there is no device."""
    try:
        return Playback(rate)
    except (OSError, ImportError) as exc:
        print(f"no audio output device ({exc}); writing the WAV file only", flush=True)
    except Exception as exc:  # PortAudioError: no default device, unsupported rate…
        print(f"no audio output device ({exc}); writing the WAV file only", flush=True)
    return None


def report_line(stream: MediaStream) -> str:
    s = stream.summary()
    return (f"received {s['received']} packets, lost {max(0, s['lost'])} ({100 * max(0.0, s['loss']):.1f}%), "
            f"jitter {s['jitter_ms']:.1f} ms")


async def run(args) -> int:
    player = None
    stream = MediaStream(args.codec, local=(args.host, args.port), ptime=args.ptime)
    if args.playback:
        opened = False

        def to_speaker(frame: np.ndarray) -> None:
            nonlocal player, opened
            if not opened:  # the codec (and so the rate) may only be known from the first packet
                opened = True
                player = open_playback(stream.codec.sample_rate)
            if player is not None:
                player.write(frame)

        stream.on_audio = to_speaker
    try:
        await stream.start()
    except OSError as exc:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    print(f"listening on {stream.address[0]}:{stream.address[1]} (RTCP {stream.address[1] + 1})", flush=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    last_count, last_change = 0, started
    next_report = started + args.report_every
    try:
        while True:
            await asyncio.sleep(0.05)
            now = loop.time()
            if stream.packets_received != last_count:
                last_count, last_change = stream.packets_received, now
            if args.duration and now - started >= args.duration:
                break
            if stream.peer_bye:
                await asyncio.sleep(0.2)  # let the jitter buffer play out
                break
            if last_count and now - last_change >= args.idle:
                break
            if now >= next_report and last_count:
                next_report = now + args.report_every
                print(report_line(stream), flush=True)
    finally:
        await stream.stop()
        if player is not None:
            player.close()
    print(report_line(stream), flush=True)
    audio = stream.received_audio()
    if stream.codec is None:
        print("no RTP received; nothing written", flush=True)
        return 1
    import soundfile as sf

    sf.write(args.output, audio.astype(np.int16), stream.codec.sample_rate, subtype="PCM_16")
    print(f"wrote {args.output} ({len(audio) / stream.codec.sample_rate:.2f} s, {stream.codec.name}, "
          f"{stream.codec.sample_rate} Hz)", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.rtp.receive", description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--port", type=int, required=True, help="RTP port (RTCP on port+1)")
    ap.add_argument("-o", "--output", required=True, help="WAV file to write")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--codec", default=None, choices=("pcmu", "pcma", "g722", "opus", "l16"),
                    help="expected codec (default: from the first packet's payload type)")
    ap.add_argument("--ptime", type=int, default=20)
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    ap.add_argument("--idle", type=float, default=2.0, help="stop after this long without packets")
    ap.add_argument("--playback", action="store_true", help="also play to the sound card (sounddevice)")
    ap.add_argument("--report-every", type=float, default=5.0)
    args = ap.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
