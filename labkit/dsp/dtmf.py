"""DTMF (touch-tone) detection and generation for 8 kHz (or 16 kHz) int16 audio.

A key press sends two sines at once, one from the low "row" group and one from the high
"column" group. A detector must find them quickly (ITU-T Q.24: tones of 40 ms must be
heard) yet ignore speech, music and single tones ("talk-off"). This one checks, on a
window that slides every 4 ms:

1. **Goertzel** power at the 8 frequencies, each over a window of Q = 18 periods
   (constant-Q: the same relative bandwidth for 697 Hz and 1633 Hz);
2. **level**: both tones above ``min_level_dbfs``;
3. **twist**: the high tone may be up to 8 dB weaker (lines lose highs) or 4 dB stronger;
4. **relative peak**: each tone stands ``relative_peak_db`` above the rest of its group;
5. **purity**: the two tones carry ``min_energy_fraction`` of the window's energy (speech
   spreads its energy over many frequencies);
6. **steady amplitude**: each tone's two half-window amplitudes agree within 3 dB, so a
   window that only partly overlaps a tone (its start or end) does not count;
7. **frequency deviation**: the phase advance between the two halves of each window gives
   the tone's offset from nominal: within ±2.5 % passes (Q.24: accept ±1.5 %, reject ±3.5 %);
8. **second harmonic**: a tone with a strong 2nd harmonic is a voice, not a keypad
   (checked for every column tone, and for row tones whose harmonic does not fall within
   100 Hz of the column tone, which a window this short cannot resolve);
9. **duration**: the digit must hold for ``min_hits`` consecutive windows before it is
   reported, and the same digit is reported again only after a gap.

The detector is sans-I/O: ``feed(samples)`` returns the key presses confirmed in those
samples; times are in seconds of stream time (samples fed / rate + ``start_time``).
Introduced in notebook 09.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .tones import level_to_amplitude

__all__ = ["ROWS", "COLS", "KEYPAD", "DIGITS", "DtmfEvent", "DtmfDetector", "detect", "generate",
           "digit_tone"]

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYPAD)
_FREQS = {d: (ROWS[r], COLS[c]) for r, row in enumerate(KEYPAD) for c, d in enumerate(row)}


@dataclass
class DtmfEvent:
    """A key press: ``start`` in seconds; ``end`` is None until the tone has stopped."""
    digit: str
    start: float
    end: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


def digit_tone(digit: str, seconds: float, rate: int = 8000, level_dbfs: float = -10.0,
               twist_db: float = 0.0, deviation: float = 0.0) -> np.ndarray:
    """One key's two-tone signal. ``twist_db`` > 0 makes the high tone louder;
    ``deviation`` shifts both frequencies by that fraction (0.015 = +1.5 %)."""
    if digit.upper() not in _FREQS:
        raise ValueError(f"not a DTMF digit: {digit!r}; digits are {DIGITS}")
    low, high = _FREQS[digit.upper()]
    t = np.arange(int(round(seconds * rate))) / rate
    a_low = level_to_amplitude(level_dbfs - max(twist_db, 0))
    a_high = level_to_amplitude(level_dbfs + min(twist_db, 0))
    x = (a_low * np.sin(2 * np.pi * low * (1 + deviation) * t)
         + a_high * np.sin(2 * np.pi * high * (1 + deviation) * t))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def generate(digits: str, rate: int = 8000, on_ms: float = 100, off_ms: float = 100,
             level_dbfs: float = -10.0) -> np.ndarray:
    """A dialling sequence: each digit for ``on_ms`` then ``off_ms`` of silence."""
    parts = []
    for d in digits:
        parts.append(digit_tone(d, on_ms / 1000, rate, level_dbfs))
        parts.append(np.zeros(int(round(off_ms / 1000 * rate)), np.int16))
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


class _Bank:
    """Precomputed DFT bases for all eight tones, as one matrix.

    Every tone's window ends at the same sample; a shorter window is a longer one with
    zeros in front. So one (longest, 64) real matrix holds, per tone, eight columns:
    cos/sin over the first half of its window, cos/sin over the second half (the two
    half-window DFTs, whose sum is the Goertzel value), then Hann-windowed cos/sin at f and
    at 2f (the second-harmonic check). A second (longest, 8) matrix of 0/1 masks gives each
    tone's window energy. Two matrix products per call analyse every point at once.
    """

    def __init__(self, rate: int, q: float):
        self.freqs = np.array(ROWS + COLS)
        self.lengths = np.array([int(2 * round(q * rate / f / 2)) for f in self.freqs])  # even
        self.longest = int(self.lengths.max())
        self.basis = np.zeros((self.longest, 8, 8))
        self.masks = np.zeros((self.longest, 8))
        for t, (f, n) in enumerate(zip(self.freqs, self.lengths)):
            k = np.arange(n)
            w1, w2 = 2 * np.pi * f * k / rate, 4 * np.pi * f * k / rate
            first = (k < n // 2).astype(float)
            hann = np.hanning(n)
            self.basis[self.longest - n:, t, :] = np.stack([
                np.cos(w1) * first, -np.sin(w1) * first,
                np.cos(w1) * (1 - first), -np.sin(w1) * (1 - first),
                hann * np.cos(w1), -hann * np.sin(w1), hann * np.cos(w2), -hann * np.sin(w2),
            ], axis=1)
            self.masks[self.longest - n:, t] = 1.0
        self.basis = self.basis.reshape(self.longest, 64)


class DtmfDetector:
    """Streaming DTMF detector. ``feed(int16 samples) -> list[DtmfEvent]`` (new presses)."""

    def __init__(self, rate: int = 8000, *, start_time: float = 0.0, q: float = 18.0,
                 hop_ms: float = 4.0, min_level_dbfs: float = -36.0,
                 max_high_weaker_db: float = 8.0, max_high_stronger_db: float = 4.0,
                 relative_peak_db: float = 8.0, min_energy_fraction: float = 0.65,
                 max_deviation: float = 0.025, harmonic_margin_db: float = 15.0,
                 max_half_difference_db: float = 3.0, min_hits: int = 3, max_gap_hits: int = 10):
        if rate not in (8000, 16000):
            raise ValueError(f"DtmfDetector works at 8000 or 16000 Hz, got {rate}")
        self.rate, self.start_time = rate, start_time
        self.hop = int(round(rate * hop_ms / 1000))
        self.min_amp = level_to_amplitude(min_level_dbfs)
        self.high_weaker = 10 ** (-max_high_weaker_db / 20)
        self.high_stronger = 10 ** (max_high_stronger_db / 20)
        self.peak_ratio = 10 ** (relative_peak_db / 20)
        self.min_fraction = min_energy_fraction
        self.max_deviation = max_deviation
        self.harmonic_ratio = 10 ** (-harmonic_margin_db / 20)
        self.min_steady = 10 ** (-max_half_difference_db / 20)
        self.min_hits, self.max_gap_hits = min_hits, max_gap_hits
        self._bank = _Bank(rate, q)
        self._buf = np.zeros(0)
        self._buf_start = 0          # global index of _buf[0]
        self._next_point = self._bank.longest   # global sample index where the next window ends
        self._candidate: str | None = None
        self._hits = 0
        self._first_hit_start = 0.0
        self._misses = 0
        self._last_hit = 0
        self._active: DtmfEvent | None = None
        self.history: list[DtmfEvent] = []   # every press so far, end filled when it ends

    # -- analysis --------------------------------------------------------------------
    def _analyse(self, points: np.ndarray) -> list[str | None]:
        bank = self._bank
        starts = points - bank.longest - self._buf_start
        win = sliding_window_view(self._buf, bank.longest)[starts]       # (P, longest)
        if np.max(np.mean(win * win, axis=1)) < 0.25 * self.min_amp ** 2:
            return [None] * len(points)          # too quiet to hold two tones: skip the work
        y = (win @ bank.basis).reshape(len(points), 8, 8)                # (P, tone, column)
        n = bank.lengths
        xa, xb = y[..., 0] + 1j * y[..., 1], y[..., 2] + 1j * y[..., 3]
        amp = 2 * np.abs(xa + xb) / n
        ms = ((win * win) @ bank.masks) / n                               # mean square per tone
        frac = np.where(ms > 0, amp * amp / 2 / np.maximum(ms, 1e-12), 0.0)
        ma, mb = np.abs(xa), np.abs(xb)
        steady = np.minimum(ma, mb) / np.maximum(np.maximum(ma, mb), 1e-12)
        # phase advance over half a window = 2π·δ·(n/2)/rate  ->  relative deviation δ/f
        dev = np.angle(xb * np.conj(xa)) * self.rate / (np.pi * n) / bank.freqs
        harm = np.hypot(y[..., 6], y[..., 7]) / np.maximum(np.hypot(y[..., 4], y[..., 5]), 1e-12)
        return self._decide(amp, frac, dev, harm, steady)

    def _decide(self, amp, frac, dev, harm, steady) -> list[str | None]:
        """All the checks, vectorised over analysis points (rows of the (P, 8) inputs)."""
        i = np.arange(len(amp))
        r = np.argmax(amp[:, :4], axis=1)
        c = 4 + np.argmax(amp[:, 4:], axis=1)
        ar, ac = amp[i, r], amp[i, c]
        second_r = np.sort(amp[:, :4], axis=1)[:, -2]
        second_c = np.sort(amp[:, 4:], axis=1)[:, -2]
        near = np.abs(2 * self._bank.freqs[r] - self._bank.freqs[c]) < 100
        ok = ((ar >= self.min_amp) & (ac >= self.min_amp)                       # level
              & (ac >= self.high_weaker * ar) & (ac <= self.high_stronger * ar)  # twist
              & (ar >= self.peak_ratio * second_r) & (ac >= self.peak_ratio * second_c)
              & (frac[i, r] + frac[i, c] >= self.min_fraction)                  # purity
              & (steady[i, r] >= self.min_steady) & (steady[i, c] >= self.min_steady)
              & (np.abs(dev[i, r]) <= self.max_deviation)
              & (np.abs(dev[i, c]) <= self.max_deviation)
              & (harm[i, c] <= self.harmonic_ratio)
              & (near | (harm[i, r] <= self.harmonic_ratio)))                  # 2nd harmonic
        return [KEYPAD[rr][cc - 4] if good else None
                for rr, cc, good in zip(r.tolist(), c.tolist(), ok.tolist())]

    # -- streaming -------------------------------------------------------------------
    def feed(self, samples) -> list[DtmfEvent]:
        """Analyse more audio; returns the key presses confirmed within it."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"DtmfDetector.feed takes 1-D samples, got shape {x.shape}")
        if x.dtype != np.int16:
            raise TypeError(f"DtmfDetector.feed takes int16 samples, got {x.dtype}")
        self._buf = np.concatenate([self._buf, x.astype(np.float64)])
        end = self._buf_start + len(self._buf)
        points = np.arange(self._next_point, end + 1, self.hop)
        events: list[DtmfEvent] = []
        if len(points):
            for p, digit in zip(points, self._analyse(points)):
                ev = self._step(int(p), digit)
                if ev is not None:
                    events.append(ev)
            self._next_point = int(points[-1]) + self.hop
        keep = self._next_point - self.hop - self._bank.longest   # oldest sample still needed
        drop = max(0, min(keep - self._buf_start, len(self._buf)))
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return events

    def _t(self, sample_index: int) -> float:
        return self.start_time + sample_index / self.rate

    def _step(self, point: int, digit: str | None) -> DtmfEvent | None:
        if digit is None:
            self._misses += 1
            if self._misses >= self.max_gap_hits:
                if self._active is not None:
                    self._active.end = self._t(self._last_hit)
                    self._active = None
                self._candidate, self._hits = None, 0
            return None
        self._misses = 0
        if digit != self._candidate:
            if self._active is not None and self._active.digit != digit:
                self._active.end = self._t(self._last_hit)
                self._active = None
            self._candidate, self._hits = digit, 0
            r = next(i for i, row in enumerate(KEYPAD) if digit in row)
            self._first_hit_start = self._t(point - self._bank.lengths[r])
        self._hits += 1
        self._last_hit = point
        if self._hits >= self.min_hits and self._active is None:
            self._active = DtmfEvent(digit, round(self._first_hit_start, 4))
            self.history.append(self._active)
            return self._active
        return None

    def flush(self) -> None:
        """Close a press still sounding at the end of the stream (sets its ``end``)."""
        if self._active is not None:
            self._active.end = self._t(self._last_hit)
            self._active = None
        self._candidate, self._hits = None, 0


def detect(pcm, rate: int = 8000, **options) -> list[DtmfEvent]:
    """All key presses in a whole signal, with start and end times."""
    det = DtmfDetector(rate, **options)
    det.feed(pcm)
    det.flush()
    return det.history
