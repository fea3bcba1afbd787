"""G.711 speed: labkit's numpy tables against audioop (C) on the same bytes, same run.

Prints, for μ-law and A-law encode and decode, labkit's throughput, the reference's, and
the ratio (>1 means labkit is faster). The reference is ``audioop`` where Python still has
it (<= 3.12); elsewhere a plain-Python per-sample G.711 stands in (said in the output).
Both sides do what an RTP path needs: encode int16 samples (numpy array) -> payload
bytes, decode payload bytes -> int16 samples (numpy array; audioop's bytes are wrapped by
np.frombuffer, which copies nothing), so both produce the full int16 output from bytes.

Decode is timed on two payloads, because labkit's two-codes-per-lookup table is faster
when lookups stay in cache and audioop's cost does not depend on the data: the encoded
speech prompt ``data/audio/speech_en_8k.wav`` repeated to the buffer length (what an RTP
stream carries), and uniformly random bytes (full-scale white noise: the worst case).
Encode is timed on Gaussian noise (σ = 6000). Also times one 20 ms frame (160 samples),
where per-call overhead dominates.

Timing is CPU time of this thread (``time.thread_time``: time while descheduled by other
load does not count), labkit and reference alternating round by round, best round kept.

    .venv/bin/python benchmarks/bench_g711.py [--seconds 60] [--rounds 25]
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from labkit.codecs import g711

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech_en_8k.wav"

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:
        audioop = None


def _py_ulaw(sample):
    """Plain-Python μ-law of one 16-bit sample (the stand-in reference)."""
    x = sample >> 2
    mask = 0xFF
    if x < 0:
        x, mask = -x, 0x7F
    x = min(x, 8159) + 33
    seg = x.bit_length() - 6
    if seg > 7:
        return 0x7F ^ mask
    return ((seg << 4) | ((x >> (seg + 1)) & 0x0F)) ^ mask


def _py_alaw(sample):
    x = sample >> 3
    mask = 0xD5
    if x < 0:
        x, mask = -x - 1, 0x55
    seg = max(x.bit_length() - 5, 0)
    step = (x >> 1 if seg < 2 else x >> seg) & 0x0F
    return ((seg << 4) | step) ^ mask


_PY_ULAW_DEC = g711.ulaw_decode(np.arange(256, dtype=np.uint8)).astype("<i2").tobytes()
_PY_ALAW_DEC = g711.alaw_decode(np.arange(256, dtype=np.uint8)).astype("<i2").tobytes()


def references():
    if audioop is not None:
        return "audioop (C)", {
            "ulaw encode": lambda a: audioop.lin2ulaw(a, 2),
            "ulaw decode": lambda b: np.frombuffer(audioop.ulaw2lin(b, 2), np.int16),
            "alaw encode": lambda a: audioop.lin2alaw(a, 2),
            "alaw decode": lambda b: np.frombuffer(audioop.alaw2lin(b, 2), np.int16),
        }
    import array

    def enc(f):
        return lambda a: bytes(f(s) for s in a.tolist())

    def dec(table):
        t = array.array("h", table)
        return lambda b: np.frombuffer(array.array("h", (t[c] for c in b)), np.int16)
    return "plain Python (audioop absent on this Python)", {
        "ulaw encode": enc(_py_ulaw), "ulaw decode": dec(_PY_ULAW_DEC),
        "alaw encode": enc(_py_alaw), "alaw decode": dec(_PY_ALAW_DEC),
    }


OURS = {
    "ulaw encode": lambda a: g711.ulaw_encode(a).tobytes(),
    "ulaw decode": g711.ulaw_decode,
    "alaw encode": lambda a: g711.alaw_encode(a).tobytes(),
    "alaw decode": g711.alaw_decode,
}


def same(x, y):
    return np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y


def best_pair(ours, ref, arg, rounds, number, ref_number=None, ref_arg=None):
    """(labkit, reference) seconds per call in their best rounds, and the ratio of those.

    CPU time; the two alternate round by round, so a spell of machine load (other
    processes, clock speed) reaches both sides, and the least disturbed round counts.
    """
    ref_number = ref_number or number
    ref_arg = arg if ref_arg is None else ref_arg
    t_ours, t_ref = [], []
    for _ in range(rounds):
        for fn, a, n, times in ((ours, arg, number, t_ours), (ref, ref_arg, ref_number, t_ref)):
            start = time.thread_time_ns()
            for _ in range(n):
                fn(a)
            times.append((time.thread_time_ns() - start) / n / 1e9)
    return min(t_ours), min(t_ref), min(t_ref) / min(t_ours)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="audio length of the long buffer at 8 kHz (default 60 s)")
    ap.add_argument("--rounds", type=int, default=25,
                    help="timing rounds per operation; the best is kept (default 25)")
    args = ap.parse_args()
    ref_name, refs = references()
    slow_ref = audioop is None
    n = int(8000 * (min(args.seconds, 2.0) if slow_ref else args.seconds))
    rng = np.random.default_rng(0)
    pcm = rng.normal(0, 6000, n).clip(-32768, 32767).astype(np.int16)
    speech = np.resize(sf.read(SPEECH, dtype="int16")[0], n)
    random_codes = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    cases = []      # (label, operation, long input, frame input)
    for law in ("ulaw", "alaw"):
        speech_codes = getattr(g711, f"{law}_encode")(speech).tobytes()
        cases += [(f"{law} encode", f"{law} encode", pcm, pcm[:160].copy()),
                  (f"{law} decode speech", f"{law} decode", speech_codes, speech_codes[:160]),
                  (f"{law} decode random", f"{law} decode", random_codes, random_codes[:160])]
    print(f"G.711 int16 array <-> payload bytes, labkit (numpy tables) vs {ref_name}")
    print(f"long buffer: {n} samples ({n / 8000:g} s at 8 kHz); frame: 160 samples (20 ms);"
          f" CPU time, best of {args.rounds} alternating rounds")
    print(f"{'operation':<19} {'labkit Msamples/s':>18} {'reference':>11} {'ratio':>7}"
          f" | {'frame labkit µs':>15} {'ref µs':>7} {'ratio':>6}")
    long_ratios = {}
    for label, op, arg, farg in cases:
        assert same(OURS[op](arg), refs[op](arg)), f"{label}: results differ from the reference"
        t_ours, t_ref, ratio = best_pair(OURS[op], refs[op], arg, args.rounds, 3,
                                         1 if slow_ref else 3)
        f_ours, f_ref, f_ratio = best_pair(OURS[op], refs[op], farg, max(args.rounds // 3, 3),
                                           2000, 50 if slow_ref else 2000)
        long_ratios[label] = ratio
        print(f"{label:<19} {n / t_ours / 1e6:>18.1f} {n / t_ref / 1e6:>11.1f} "
              f"{ratio:>6.2f}x | {f_ours * 1e6:>15.2f} {f_ref * 1e6:>7.2f} "
              f"{f_ratio:>5.2f}x")
    behind = [op for op, r in long_ratios.items() if r < 1.0]
    print("target, at least as fast as the reference on the long buffer: "
          + ("met for every operation and payload" if not behind else
             f"NOT met for {', '.join(behind)}"))
    if audioop is not None:
        ceiling(random_codes, args.rounds)


def ceiling(payload, rounds):
    """What numpy can do at best: the pair-table gather alone, its indices already intp.

    If this bare gather is no faster than audioop, no arrangement of numpy calls around it
    (chunking, out=, other take modes) can make decoding faster on this payload.
    """
    pairs = g711._ULAW_DEC2
    idx = np.frombuffer(payload, np.uint16).astype(np.intp)
    n = len(payload)
    t_gather, t_ref, ratio = best_pair(lambda i: pairs.take(i, mode="wrap"),
                                lambda b: audioop.ulaw2lin(b, 2), idx, rounds, 3,
                                       ref_arg=payload)
    print(f"ceiling on random bytes: numpy's gather alone (indices already intp) "
          f"{t_gather / (n // 2) * 1e9:.2f} ns per 2-code lookup = "
          f"{t_gather / n * 1e9:.2f} ns/sample, audioop {t_ref / n * 1e9:.2f} ns/sample "
          f"(ratio {ratio:.2f}x)")

if __name__ == "__main__":
    main()
