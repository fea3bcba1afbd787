"""Signal generators: sines, silence, noise and the call-progress tones a PBX plays.

Call-progress tones are sums of one or two sines switched on and off in a cadence. The
plans below are ITU-T E.180 / the European (CEPT) plan on 425 Hz and the North American
precise tone plan (ANSI T1.401). ``ToneGenerator`` produces them frame by frame with a
continuous phase, as a PBX's 20 ms media clock needs. Levels are in dBFS of a sine:
0 dBFS is a sine whose peaks touch full scale (32767). Introduced in notebook 08.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["sine", "silence", "white_noise", "level_to_amplitude", "TonePlan", "TONE_PLANS",
           "tone", "ToneGenerator", "dial_tone", "ringback_tone", "busy_tone",
           "congestion_tone", "callwaiting_tone"]


def level_to_amplitude(level_dbfs: float) -> float:
    """Peak amplitude (int16 units) of a sine at ``level_dbfs``."""
    if level_dbfs > 0:
        raise ValueError(f"level must be <= 0 dBFS, got {level_dbfs}")
    return 32767.0 * 10 ** (level_dbfs / 20)


def _n(seconds: float, rate: int) -> int:
    if seconds < 0:
        raise ValueError(f"duration must be >= 0 s, got {seconds}")
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    return int(round(seconds * rate))


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def sine(freq: float, seconds: float, rate: int = 8000, level_dbfs: float = -10.0,
         phase: float = 0.0) -> np.ndarray:
    """A sine as int16."""
    if not 0 <= freq < rate / 2:
        raise ValueError(f"frequency {freq} Hz must lie below the Nyquist frequency {rate / 2:g}")
    t = np.arange(_n(seconds, rate)) / rate
    return _to_int16(level_to_amplitude(level_dbfs) * np.sin(2 * np.pi * freq * t + phase))


def silence(seconds: float, rate: int = 8000) -> np.ndarray:
    return np.zeros(_n(seconds, rate), np.int16)


def white_noise(seconds: float, rate: int = 8000, level_dbfs: float = -20.0,
                seed: int | None = 0) -> np.ndarray:
    """Gaussian white noise whose RMS equals that of a sine at ``level_dbfs`` (seeded)."""
    rms = level_to_amplitude(level_dbfs) / np.sqrt(2)
    rng = np.random.default_rng(seed)
    return _to_int16(rng.normal(0.0, rms, _n(seconds, rate)))


@dataclass(frozen=True)
class TonePlan:
    """Frequencies played together, and a cadence of (on, off) seconds repeated forever.
    An empty cadence means a continuous tone."""
    freqs: tuple[float, ...]
    cadence: tuple[tuple[float, float], ...] = ()
    level_dbfs: float = -16.0      # per frequency, roughly -13 dBm0 as switches send them

    def is_on(self, t: np.ndarray) -> np.ndarray:
        if not self.cadence:
            return np.ones(t.shape, dtype=bool)
        period = sum(on + off for on, off in self.cadence)
        phase = np.mod(t, period)
        on = np.zeros(t.shape, dtype=bool)
        start = 0.0
        for on_s, off_s in self.cadence:
            on |= (phase >= start) & (phase < start + on_s)
            start += on_s + off_s
        return on


TONE_PLANS: dict[str, dict[str, TonePlan]] = {
    "us": {   # North American precise tone plan
        "dial": TonePlan((350, 440)),
        "ringback": TonePlan((440, 480), ((2.0, 4.0),)),
        "busy": TonePlan((480, 620), ((0.5, 0.5),)),
        "congestion": TonePlan((480, 620), ((0.25, 0.25),)),   # "reorder"
        "callwaiting": TonePlan((440,), ((0.3, 9.7),)),
    },
    "eu": {   # CEPT / ITU-T E.180 recommended 425 Hz plan
        "dial": TonePlan((425,)),
        "ringback": TonePlan((425,), ((1.0, 4.0),)),
        "busy": TonePlan((425,), ((0.5, 0.5),)),
        "congestion": TonePlan((425,), ((0.2, 0.3), (0.7, 0.8))),
        "callwaiting": TonePlan((425,), ((0.2, 0.2), (0.2, 9.4))),
    },
}
TONE_PLANS["uk"] = {
    "dial": TonePlan((350, 440)),
    "ringback": TonePlan((400, 450), ((0.4, 0.2), (0.4, 2.0))),
    "busy": TonePlan((400,), ((0.375, 0.375),)),
    "congestion": TonePlan((400,), ((0.4, 0.35), (0.225, 0.525))),
    "callwaiting": TonePlan((400,), ((0.1, 3.0),)),
}


def _plan(name: str, country: str) -> TonePlan:
    plans = TONE_PLANS.get(country.lower())
    if plans is None:
        raise ValueError(f"unknown tone country {country!r}; known: {', '.join(TONE_PLANS)}")
    if name not in plans:
        raise ValueError(f"unknown tone {name!r}; known: {', '.join(plans)}")
    return plans[name]


class ToneGenerator:
    """Frame-by-frame call-progress tone with continuous phase: ``read(160)`` per 20 ms."""

    def __init__(self, name: str | TonePlan, country: str = "us", rate: int = 8000):
        self.plan = name if isinstance(name, TonePlan) else _plan(name, country)
        self.rate = rate
        self.position = 0          # samples produced so far
        self._amp = level_to_amplitude(self.plan.level_dbfs)

    def read(self, n: int) -> np.ndarray:
        if n < 0:
            raise ValueError(f"cannot read {n} samples")
        t = (self.position + np.arange(n)) / self.rate
        self.position += n
        x = sum(np.sin(2 * np.pi * f * t) for f in self.plan.freqs) * self._amp
        return _to_int16(np.where(self.plan.is_on(t), x, 0.0))


def tone(name: str, seconds: float, country: str = "us", rate: int = 8000) -> np.ndarray:
    """``seconds`` of the named call-progress tone ("dial", "ringback", "busy", ...)."""
    return ToneGenerator(name, country, rate).read(_n(seconds, rate))


def dial_tone(seconds: float, rate: int = 8000, country: str = "us") -> np.ndarray:
    return tone("dial", seconds, country, rate)


def ringback_tone(seconds: float, rate: int = 8000, country: str = "us") -> np.ndarray:
    return tone("ringback", seconds, country, rate)


def busy_tone(seconds: float, rate: int = 8000, country: str = "us") -> np.ndarray:
    return tone("busy", seconds, country, rate)


def congestion_tone(seconds: float, rate: int = 8000, country: str = "us") -> np.ndarray:
    return tone("congestion", seconds, country, rate)


def callwaiting_tone(seconds: float, rate: int = 8000, country: str = "us") -> np.ndarray:
    return tone("callwaiting", seconds, country, rate)
