"""Sample-rate conversion between the rates telephony meets: 8k, 16k, 44.1k, 48k.

Narrowband phones run at 8 kHz, G.722 at 16 kHz, Opus and browsers at 48 kHz, WAV files
often at 44.1 kHz. Converting by a rational factor L/M means: insert L-1 zeros between
samples, low-pass filter, keep every M-th sample. A polyphase filter does the same
without computing the samples it would throw away.

``resample()`` converts a whole signal (scipy's ``resample_poly``, zero-phase, no delay).
``Resampler`` converts a stream frame by frame (20 ms RTP frames), keeping the filter's
history between calls, as a media path must; it is causal, so it delays the signal by
``delay`` input samples. Introduced in notebook 05.
"""
from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin, resample_poly

__all__ = ["resample", "Resampler", "RATES"]

#: The rates labkit meets; any positive integer rates work.
RATES = (8000, 16000, 44100, 48000)


def _check_rates(from_rate, to_rate):
    for name, r in (("from_rate", from_rate), ("to_rate", to_rate)):
        if not isinstance(r, (int, np.integer)) or r <= 0:
            raise ValueError(f"{name} must be a positive integer in Hz, got {r!r}")
    g = gcd(int(from_rate), int(to_rate))
    return int(to_rate) // g, int(from_rate) // g


def _to_int16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole 1-D signal. int16 in -> int16 out (rounded, saturated); float -> float."""
    up, down = _check_rates(from_rate, to_rate)
    x = np.asarray(pcm)
    if x.ndim != 1:
        raise ValueError(f"resample takes a 1-D signal, got shape {x.shape}")
    if up == down:
        return x.copy()
    y = resample_poly(x.astype(np.float64), up, down)
    return _to_int16(y) if x.dtype == np.int16 else y


class Resampler:
    """Streaming polyphase resampler: ``process(frame)`` -> the output for that frame.

    Output length per call is exact on average (fractional positions carry over, so
    441-sample frames at 44.1 kHz become 480 at 48 kHz). Causal FIR: output lags the
    input by ``delay`` input samples.
    """

    def __init__(self, from_rate: int, to_rate: int, taps_per_phase: int = 24):
        self.up, self.down = _check_rates(from_rate, to_rate)
        self.from_rate, self.to_rate = int(from_rate), int(to_rate)
        n = taps_per_phase * self.up
        cutoff = 0.9 / max(self.up, self.down)     # 90 % of the lower Nyquist frequency
        h = firwin(n, cutoff, window=("kaiser", 8.0)) * self.up
        # polyphase bank: row p holds taps h[p], h[p+L], h[p+2L], ...
        self._bank = h.reshape(taps_per_phase, self.up).T.copy()
        self._taps = taps_per_phase
        self._history = np.zeros(taps_per_phase - 1)
        self._next_out = 0          # global index of the next output sample
        self._consumed = 0          # global index of the first sample of the next input frame
        self.delay = (n - 1) / 2 / self.up

    def process(self, frame: np.ndarray) -> np.ndarray:
        x = np.asarray(frame)
        if x.ndim != 1:
            raise ValueError(f"Resampler takes 1-D frames, got shape {x.shape}")
        is_int = x.dtype == np.int16
        if self.up == self.down:
            return x.copy()
        buf = np.concatenate([self._history, x.astype(np.float64)])
        end = self._consumed + len(x)               # inputs known: [.., end)
        # output k needs input floor(k*M/L) as its newest sample
        last = (end * self.up - 1) // self.down     # largest k with floor(k*M/L) < end
        k = np.arange(self._next_out, last + 1)
        pos = k * self.down
        base, phase = pos // self.up, pos % self.up
        idx = (base - (self._consumed - (self._taps - 1)))[:, None] - np.arange(self._taps)
        y = np.einsum("ij,ij->i", buf[idx], self._bank[phase])
        self._next_out = last + 1
        self._consumed = end
        self._history = buf[len(buf) - (self._taps - 1):]
        return _to_int16(y) if is_int else y
