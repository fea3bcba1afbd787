"""Codec cost per call leg: encode + decode of 20 ms frames, for every codec in the registry.

Prints, per codec, microseconds per 20 ms frame (encode and decode), how many times faster
than real time one core runs it (= how many simultaneous one-way streams it could carry),
and the ratio to PCMU measured in the same run. For G.722 it also times FFmpeg's G.722 (via
PyAV) on the same frames, as an outside reference for the libg722 wrapper.

    .venv/bin/python benchmarks/bench_codecs.py [--seconds 5]
"""
import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from labkit.codecs import CODECS
from labkit.dsp.resample import resample

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech_en.wav"


def frames_for(codec, speech16, seconds):
    pcm = resample(speech16, 16000, codec.sample_rate)
    n = codec.samples_per_frame(20)
    reps = int(np.ceil(seconds * codec.sample_rate / len(pcm)))
    pcm = np.tile(pcm, reps)[: int(seconds * codec.sample_rate) // n * n]
    return [pcm[i:i + n] for i in range(0, len(pcm), n)]


def time_codec(codec, frames):
    enc, dec = codec.encoder(), codec.decoder()
    t0 = time.perf_counter()
    payloads = [enc.encode(f) for f in frames]
    t1 = time.perf_counter()
    for p in payloads:
        dec.decode(p)
    t2 = time.perf_counter()
    return (t1 - t0) / len(frames), (t2 - t1) / len(frames)


def time_ffmpeg_g722(frames):
    import av
    ctx = av.CodecContext.create("g722", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 16000, "mono", "s16"
    ctx.open()
    dctx = av.CodecContext.create("g722", "r")
    dctx.sample_rate, dctx.layout = 16000, "mono"
    dctx.open()
    t0 = time.perf_counter()
    payloads = []
    for f in frames:
        frame = av.AudioFrame.from_ndarray(f.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        payloads.append(b"".join(bytes(p) for p in ctx.encode(frame)))
    t1 = time.perf_counter()
    for p in payloads:
        for fr in dctx.decode(av.Packet(p)):
            fr.to_ndarray()
    t2 = time.perf_counter()
    return (t1 - t0) / len(frames), (t2 - t1) / len(frames)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="audio per codec (default 5 s)")
    args = ap.parse_args()
    speech16, _ = sf.read(SPEECH, dtype="int16")
    print(f"20 ms frames, {args.seconds:g} s of espeak-ng speech per codec, one core")
    print(f"{'codec':9} {'enc µs':>8} {'dec µs':>8} {'x real time':>12} {'cost vs pcmu':>13}")
    results = {}
    for name, codec in CODECS.items():
        frames = frames_for(codec, speech16, args.seconds)
        results[name] = (time_codec(codec, frames), frames)
    base = sum(results["pcmu"][0])
    for name, ((enc, dec), _) in results.items():
        print(f"{name:9} {enc * 1e6:8.1f} {dec * 1e6:8.1f} {0.020 / (enc + dec):12.0f} "
              f"{(enc + dec) / base:12.1f}x")
    try:
        enc, dec = time_ffmpeg_g722(results["g722"][1])
    except ImportError:
        print("PyAV absent: FFmpeg G.722 reference skipped")
    else:
        ours = sum(results["g722"][0])
        print(f"{'ffmpeg-g722':9} {enc * 1e6:8.1f} {dec * 1e6:8.1f} {0.020 / (enc + dec):12.0f} "
              f"{(enc + dec) / base:12.1f}x   (labkit g722 / ffmpeg: {ours / (enc + dec):.2f})")


if __name__ == "__main__":
    main()
