"""The event loop the PBX runs on: uvloop when it is installed, else asyncio's default.

uvloop (libuv, Cython) moves a UDP datagram from the socket to ``datagram_received`` with
roughly half the CPU asyncio's selector loop needs; that is what lets one core relay RTP for
hundreds of calls (``benchmarks/bench_relay.py`` measures both). Nothing in labkit depends
on which loop runs: this module only chooses. ``pip install labkit[fast]`` brings uvloop.

Introduced in notebook 06 (media relay); ``python -m labkit.pbx`` runs on :func:`run`.
"""
from __future__ import annotations

import asyncio
from typing import Any, Coroutine

__all__ = ["new_event_loop", "run", "loop_name", "HAVE_UVLOOP"]

try:
    import uvloop as _uvloop
except ImportError:       # Windows, or the 'fast' extra not installed
    _uvloop = None

HAVE_UVLOOP = _uvloop is not None


def new_event_loop(prefer_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """A new loop: uvloop's if available and wanted, else asyncio's default."""
    if prefer_uvloop and _uvloop is not None:
        return _uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, Any], prefer_uvloop: bool = True, debug: bool | None = None) -> Any:
    """Like :func:`asyncio.run`, on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(prefer_uvloop), debug=debug) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """'uvloop' or 'asyncio' for ``loop`` (the running loop by default)."""
    loop = loop or asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
