"""A loopback UDP impairment proxy: what a bad network does to RTP, reproducibly.

Put it between a sender and a receiver on 127.0.0.1 and it delays, jitters, loses (randomly or
in bursts), reorders and duplicates datagrams, all from a seeded random generator, so a notebook
or test sees the same "network" every run. Like Linux ``netem`` without root.

    proxy = ImpairmentProxy(target=receiver.address, delay=0.040, jitter=0.010, loss=0.05, seed=1)
    with serve(proxy) as srv:          # labkit.lab.serve: runs it in a background thread
        send_to(srv.address)            # point the sender at the proxy

:class:`Impairment` is the sans-I/O model (``schedule(now) -> delivery times``), also used to make
arrival traces; :class:`ImpairmentProxy` is the asyncio shell. Introduced in notebook 04.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

Address = tuple[str, int]


@dataclass
class Impairment:
    """The network model, one datagram at a time.

    * ``delay`` (s) fixed one-way delay; ``jitter`` (s) standard deviation of a Gaussian added to
      it (clipped at zero extra negative delay, so packets are never faster than the path);
    * ``loss`` average loss probability; ``burst`` mean loss-burst length in packets (1 = random
      loss; >1 = Gilbert-Elliott two-state model with that mean burst and the same average loss);
    * ``reorder`` probability that a packet is held back ``reorder_delay`` extra (overtaken);
    * ``duplicate`` probability that a packet is delivered twice (the copy ``duplicate_delay``
      later).
    """

    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    burst: float = 1.0
    reorder: float = 0.0
    reorder_delay: float = 0.040
    duplicate: float = 0.0
    duplicate_delay: float = 0.002
    seed: int | None = 0
    _rng: np.random.Generator = field(init=False, repr=False)
    _bad: bool = field(init=False, default=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability in 0..1, got {value}")
        for name in ("delay", "jitter", "reorder_delay", "duplicate_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")
        if self.burst < 1.0:
            raise ValueError(f"burst is a mean burst length in packets (>= 1), got {self.burst}")
        if self.burst > 1.0 and self.loss >= 1.0:
            raise ValueError("bursty loss needs loss < 1")
        self._rng = np.random.default_rng(self.seed)

    @property
    def transitions(self) -> tuple[float, float]:
        """Gilbert-Elliott (p good->bad, p bad->good) giving the configured mean loss and burst."""
        p_bg = 1.0 / self.burst
        p_gb = self.loss * p_bg / (1.0 - self.loss) if self.loss < 1 else 1.0
        return p_gb, p_bg

    def is_lost(self) -> bool:
        if self.burst <= 1.0:
            return bool(self._rng.random() < self.loss)
        p_gb, p_bg = self.transitions
        u = self._rng.random()
        self._bad = (u >= p_bg) if self._bad else (u < p_gb)
        return self._bad

    def schedule(self, now: float) -> list[float]:
        """Delivery times for a datagram sent at ``now``: [] if lost, two entries if duplicated."""
        lost = self.is_lost()
        extra = abs(self._rng.normal(0.0, self.jitter)) if self.jitter else 0.0
        held = self.reorder_delay if self._rng.random() < self.reorder else 0.0
        dup = self._rng.random() < self.duplicate
        if lost:
            return []
        t = now + self.delay + extra + held
        return [t, t + self.duplicate_delay] if dup else [t]


class _ProxyProtocol(asyncio.DatagramProtocol):
    def __init__(self, proxy: "ImpairmentProxy") -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr) -> None:
        self.proxy._received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        self.proxy.errors += 1


class ImpairmentProxy:
    """Forward datagrams to ``target`` through an :class:`Impairment`; replies from the target go
    back to the last client (impaired too if ``both_ways``). ``start()``/``stop()`` are async and
    ``address`` is where to send, so ``labkit.lab.serve(proxy)`` runs it in a background thread."""

    def __init__(self, target: Address, listen: Address = ("127.0.0.1", 0), both_ways: bool = False,
                 impairment: Impairment | None = None, **model) -> None:
        if impairment is not None and model:
            raise ValueError("pass either impairment= or model keywords, not both")
        self.target = (target[0], int(target[1]))
        self.listen = listen
        self.both_ways = both_ways
        self.impairment = impairment or Impairment(**model)
        self.address: Address | None = None
        self.client: Address | None = None
        self.forwarded = 0
        self.dropped = 0
        self.duplicated = 0
        self.returned = 0
        self.errors = 0
        self.log: list[tuple[float, float | None]] = []  # (sent, delivered or None) forward path
        self._transport = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handles: set[asyncio.TimerHandle] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _ProxyProtocol(self), local_addr=self.listen
        )
        host, port = self._transport.get_extra_info("sockname")[:2]
        self.address = (host, port)

    async def stop(self) -> None:
        for h in list(self._handles):
            h.cancel()
        self._handles.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _received(self, data: bytes, addr: Address) -> None:
        now = self._loop.time()
        if addr == self.target:
            self.returned += 1
            if self.client is None:
                return
            if self.both_ways:
                self._forward(data, self.client, now, record=False)
            else:
                self._transport.sendto(data, self.client)
            return
        self.client = addr
        self._forward(data, self.target, now, record=True)

    def _forward(self, data: bytes, dest: Address, now: float, record: bool) -> None:
        times = self.impairment.schedule(now)
        if not times:
            self.dropped += 1
            if record:
                self.log.append((now, None))
            return
        self.forwarded += 1
        self.duplicated += len(times) - 1
        if record:
            self.log.append((now, times[0]))
        for t in times:
            handle = self._loop.call_at(t, self._deliver, data, dest)
            self._handles.add(handle)

    def _deliver(self, data: bytes, dest: Address) -> None:
        self._handles = {h for h in self._handles if not h.cancelled() and h.when() > self._loop.time()}
        if self._transport is not None:
            self._transport.sendto(data, dest)
