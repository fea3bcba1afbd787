"""Conference mixing: everyone hears everyone else (N-1, "mix-minus").

Each 20 ms, a conference bridge takes one frame from every party, adds them all up once,
then gives each party the total minus their own frame, so nobody hears themselves
echoed back. The sum of N int16 frames needs more than 16 bits, so it is accumulated in
int32 and saturated (clipped) back to int16 only at the end. Asterisk's ConfBridge and
FreeSWITCH's conference module do the same. Introduced in notebook 11.
"""
from __future__ import annotations

import numpy as np

__all__ = ["mix", "mix_minus"]


def _frames(frames) -> np.ndarray:
    f = np.asarray(frames)
    if f.dtype != np.int16:
        raise TypeError(f"mixing takes int16 frames, got {f.dtype}")
    if f.ndim != 2:
        raise ValueError(f"mixing takes a (parties, samples) array, got shape {f.shape}")
    return f


def _saturate(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -32768, 32767).astype(np.int16)


def mix(frames, gains=None) -> np.ndarray:
    """Everyone together (what a recording of the conference holds): (P, n) -> (n,)."""
    f = _frames(frames).astype(np.int32)
    if gains is not None:
        f = np.rint(f * np.asarray(gains, dtype=np.float64)[:, None]).astype(np.int32)
    return _saturate(f.sum(axis=0, dtype=np.int32))


def mix_minus(frames, talking=None) -> np.ndarray:
    """(P, n) int16 -> (P, n) int16: row i is the sum of every *other* talking party.

    ``talking`` (bool per party, default all) leaves muted or listen-only parties out of
    the sum; they still hear everyone else.
    """
    f = _frames(frames).astype(np.int32)
    if talking is not None:
        mask = np.asarray(talking, dtype=bool)
        if mask.shape != (f.shape[0],):
            raise ValueError(f"talking needs one flag per party ({f.shape[0]}), "
                             f"got shape {mask.shape}")
        f = f * mask[:, None]
    total = f.sum(axis=0, dtype=np.int32)      # 65536 parties fit before int32 overflows
    return _saturate(total[None, :] - f)
