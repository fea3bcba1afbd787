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
import sys

import numpy as np

from .stream import MediaStream


def open_playback(rate: int):
    """A sounddevice output stream, or None with a clear message when there is no device."""
    try:
        import sounddevice as sd  # raises OSError, not ImportError, without PortAudio
        out = sd.OutputStream(samplerate=rate, channels=1, dtype="int16")
        out.start()
        return out
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
        rate_hint = 8000
        try:
            from labkit.codecs import get_codec

            rate_hint = get_codec(args.codec).sample_rate if args.codec else 8000
        except ValueError:
            pass
        player = open_playback(rate_hint)
        if player is not None:
            stream.on_audio = lambda frame: player.write(frame.reshape(-1, 1))
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
            player.stop()
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
    ap.add_argument("--codec", default=None, help="expected codec (default: from the static payload type)")
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
