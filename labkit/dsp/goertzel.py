"""The Goertzel algorithm: the power of one frequency in a block of samples.

An FFT computes every frequency bin; a tone detector needs eight. Goertzel runs one
second-order filter per frequency, one multiply-add per sample:

    s[n] = x[n] + 2·cos(ω)·s[n-1] - s[n-2]          ω = 2π·f/rate
    power = s[N-1]² + s[N-2]² - 2·cos(ω)·s[N-1]·s[N-2]  = |Σ x[n]·e^(-jωn)|²

The last line is the key fact: Goertzel's result is the magnitude squared of the DTFT at
exactly ω (any frequency, not only FFT bin centres). ``goertzel_power`` runs the recurrence
as written (to read and to teach); ``goertzel_dft`` computes the same quantity for many
blocks and frequencies at once as a matrix product, which is what numpy is fast at.
Introduced in notebook 09.
"""
from __future__ import annotations

import numpy as np

__all__ = ["goertzel_power", "goertzel_dft", "goertzel_powers", "tone_amplitude"]


def goertzel_power(block, freq: float, rate: int) -> float:
    """|X(freq)|² of one block by the Goertzel recurrence (a plain loop, one frequency)."""
    x = np.asarray(block, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"goertzel_power takes a non-empty 1-D block, got shape {x.shape}")
    if not 0 <= freq <= rate / 2:
        raise ValueError(f"frequency {freq} Hz is outside 0..{rate / 2:g} Hz (rate {rate})")
    coeff = 2.0 * np.cos(2.0 * np.pi * freq / rate)
    s1 = s2 = 0.0
    for sample in x.tolist():
        s1, s2 = sample + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def goertzel_dft(blocks, freqs, rate: int) -> np.ndarray:
    """Complex DTFT Σ x[n]·e^(-jωn) for blocks (..., N) at freqs (F,) -> (..., F).

    ``abs(result)**2`` equals Goertzel's power; the phase is kept because comparing the
    phase of two half-blocks measures how far a tone is from ``freq`` (see dsp.dtmf).
    """
    x = np.asarray(blocks, dtype=np.float64)
    f = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError("goertzel_dft needs blocks with at least one sample")
    if np.any((f < 0) | (f > rate / 2)):
        raise ValueError(f"frequencies must lie in 0..{rate / 2:g} Hz (rate {rate})")
    n = np.arange(x.shape[-1])
    basis = np.exp(-2j * np.pi * np.outer(n, f) / rate)       # (N, F)
    return x @ basis


def goertzel_powers(blocks, freqs, rate: int) -> np.ndarray:
    """Goertzel power for every block (..., N) and frequency (F,) -> (..., F), vectorised."""
    return np.abs(goertzel_dft(blocks, freqs, rate)) ** 2


def tone_amplitude(power, block_len: int) -> np.ndarray:
    """Amplitude of a sine that would give ``power`` in a block of ``block_len`` samples
    (a sine of amplitude A centred on the frequency gives power (A·N/2)²)."""
    return 2.0 * np.sqrt(np.asarray(power, dtype=np.float64)) / block_len
