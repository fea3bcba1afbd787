"""Send a WAV file (or the microphone) as RTP: ``python -m labkit.rtp.send -d HOST:PORT -f audio.wav``.

A thin shell over :class:`labkit.rtp.stream.MediaStream`: read the file, resample it to the
codec's rate (scipy ``resample_poly``), queue it, and let the stream's drift-free 20 ms clock
packetise it, with RTCP sender reports on port+1. Introduced in notebook 05.

    python -m labkit.rtp.send -d 127.0.0.1:40000 -f data/audio/speech_en_8k.wav --codec pcmu
    python -m labkit.rtp.send -d 127.0.0.1:40000 --mic --duration 10
"""
from __future__ import annotations

import argparse
import asyncio
import sys

import numpy as np

from .stream import MediaStream

CODEC_CHOICES = ("pcmu", "pcma", "g722", "opus", "l16")


def parse_destination(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def load_audio(path: str, rate: int) -> np.ndarray:
    """A WAV (any rate, any channels) as mono int16 at ``rate``."""
    import soundfile as sf

    from labkit.dsp.resample import resample

    try:
        data, file_rate = sf.read(path, dtype="int16", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise SystemExit(f"cannot read audio file {path!r}: {exc}")
    mono = data.mean(axis=1).astype(np.int16) if data.shape[1] > 1 else data[:, 0]
    return resample(mono, int(file_rate), rate)


def open_microphone(rate: int, frame: int):
    """A sounddevice input stream, or a clear message when there is no device."""
    try:
        import sounddevice as sd  # raises OSError, not ImportError, without PortAudio
    except (OSError, ImportError) as exc:
        raise SystemExit(f"no microphone: sounddevice/PortAudio is not available ({exc})")
    try:
        return sd.InputStream(samplerate=rate, channels=1, dtype="int16", blocksize=frame)
    except Exception as exc:  # PortAudioError subclasses Exception; no device, bad rate…
        raise SystemExit(f"no microphone: {exc}")


async def run(args) -> int:
    stream = MediaStream(args.codec, local=(args.bind, 0), remote=args.destination, ptime=args.ptime,
                         latching=False)
    await stream.start()
    codec = stream.codec
    interval = max(1, round(args.report_every * 1000 / args.ptime))
    reported = 0

    def progress(final: bool = False) -> None:
        nonlocal reported
        sent = stream.sender.packets_sent
        if final or sent - reported >= interval:
            reported = sent
            print(f"sent {sent} packets ({sent * args.ptime / 1000:.2f} s), {stream.late_sends} late", flush=True)

    try:
        if args.mic:
            mic = open_microphone(codec.sample_rate, stream.frame_samples)
            loop = asyncio.get_running_loop()
            with mic:
                end = loop.time() + (args.duration or float("inf"))
                while loop.time() < end:
                    block, _ = await loop.run_in_executor(None, mic.read, stream.frame_samples)
                    stream.play(block[:, 0].copy())
                    progress()
        else:
            pcm = load_audio(args.file, codec.sample_rate)
            if args.duration:
                pcm = pcm[: int(args.duration * codec.sample_rate)]
            print(f"sending {args.file} ({len(pcm) / codec.sample_rate:.2f} s) as {codec.name} "
                  f"to {args.destination[0]}:{args.destination[1]} from port {stream.address[1]}", flush=True)
            stream.play(pcm)
            while stream.queued_seconds > 0 or stream.sender.packets_sent == 0:
                await asyncio.sleep(0.05)
                progress()
            await stream.drain(timeout=5)
            await asyncio.sleep(2 * args.ptime / 1000)
    finally:
        progress(final=True)
        await stream.stop()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.rtp.send", description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--destination", required=True, type=parse_destination, help="HOST:PORT of the receiver")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("-f", "--file", help="WAV file to send (resampled to the codec rate)")
    src.add_argument("--mic", action="store_true", help="send the default microphone (sounddevice)")
    ap.add_argument("--codec", default="pcmu", choices=CODEC_CHOICES)
    ap.add_argument("--ptime", type=int, default=20, help="packet time in ms (default 20)")
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    ap.add_argument("--bind", default="127.0.0.1", help="local address to send from")
    ap.add_argument("--report-every", type=float, default=5.0, help="seconds between progress lines")
    args = ap.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
