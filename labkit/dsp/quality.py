"""How good does it sound? SNR, segmental SNR, delay estimation and PESQ.

SNR compares waveforms sample by sample: right for waveform coders (G.711, G.722 ADPCM),
meaningless for perceptual ones (Opus keeps what you hear, not the waveform). Segmental
SNR averages SNR over short frames, so quiet passages count as much as loud ones, which
is closer to what a listener notices. PESQ (ITU-T P.862) predicts a listener's opinion
score from 1 to 4.5; here through the ``pesq`` package. Introduced in notebook 08.
"""
from __future__ import annotations

import numpy as np

__all__ = ["snr_db", "segmental_snr_db", "estimate_delay", "pesq_score"]


def _pair(ref, deg, who):
    r = np.asarray(ref, dtype=np.float64)
    d = np.asarray(deg, dtype=np.float64)
    if r.shape != d.shape:
        raise ValueError(f"{who}: reference and degraded signals differ in shape "
                         f"({r.shape} vs {d.shape}); trim or align them first")
    if r.size == 0:
        raise ValueError(f"{who}: empty signals")
    return r, d


def snr_db(ref, deg) -> float:
    """10·log10(signal energy / error energy); inf when identical."""
    r, d = _pair(ref, deg, "snr_db")
    noise = np.sum((r - d) ** 2)
    signal = np.sum(r ** 2)
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return float(10 * np.log10(signal / noise))


def segmental_snr_db(ref, deg, rate: int = 8000, frame_ms: float = 20,
                     floor_db: float = -10.0, ceiling_db: float = 35.0,
                     silence_db: float = -50.0) -> float:
    """Mean of per-frame SNRs, each clamped to [floor_db, ceiling_db]; frames of the
    reference quieter than ``silence_db`` dBFS (int16 full scale) are skipped."""
    r, d = _pair(ref, deg, "segmental_snr_db")
    n = int(rate * frame_ms / 1000)
    if n <= 0 or r.size < n:
        raise ValueError(f"segmental_snr_db: need at least one {frame_ms:g} ms frame "
                         f"({n} samples), got {r.size}")
    frames = r.size // n
    rf = r[: frames * n].reshape(frames, n)
    df = d[: frames * n].reshape(frames, n)
    sig = np.sum(rf ** 2, axis=1)
    noise = np.sum((rf - df) ** 2, axis=1)
    level = 10 * np.log10(np.maximum(sig / n, 1e-12) / 32768.0 ** 2)
    active = level > silence_db
    if not np.any(active):
        raise ValueError("segmental_snr_db: the reference is silent in every frame")
    with np.errstate(divide="ignore"):
        seg = 10 * np.log10(sig[active] / np.maximum(noise[active], 1e-12))
    return float(np.mean(np.clip(seg, floor_db, ceiling_db)))


def estimate_delay(ref, deg, max_lag: int) -> int:
    """Samples by which ``deg`` lags ``ref`` (0..max_lag), by cross-correlation."""
    r = np.asarray(ref, dtype=np.float64)
    d = np.asarray(deg, dtype=np.float64)
    n = min(r.size, d.size) - max_lag
    if max_lag < 0 or n <= 0:
        raise ValueError(f"estimate_delay: need signals longer than max_lag={max_lag}")
    scores = [np.dot(r[:n], d[lag:lag + n]) for lag in range(max_lag + 1)]
    return int(np.argmax(scores))


def pesq_score(ref, deg, rate: int, mode: str | None = None) -> float:
    """PESQ MOS-LQO of ``deg`` against ``ref``: 'nb' at 8 kHz (P.862), 'wb' at 16 kHz (P.862.2).

    Raises ImportError with the install command if the ``pesq`` package is missing.
    """
    try:
        from pesq import pesq as _pesq
    except ImportError as exc:
        raise ImportError("pesq_score needs the 'pesq' package: pip install 'pesq>=0.0.4' "
                          "(a C compiler is needed where no wheel exists)") from exc
    if rate not in (8000, 16000):
        raise ValueError(f"PESQ works at 8000 or 16000 Hz, got {rate}; resample first "
                         "(labkit.dsp.resample.resample)")
    mode = mode or ("nb" if rate == 8000 else "wb")
    if mode not in ("nb", "wb") or (mode == "wb" and rate != 16000):
        raise ValueError(f"PESQ mode must be 'nb' (8 or 16 kHz) or 'wb' (16 kHz), "
                         f"got {mode!r} at {rate} Hz")
    r = np.asarray(ref, dtype=np.float64)
    d = np.asarray(deg, dtype=np.float64)
    n = min(r.size, d.size)
    if n < rate // 4:
        raise ValueError(f"PESQ needs at least 0.25 s of audio, got {n / rate:.3f} s")
    return float(_pesq(rate, r[:n], d[:n], mode))
