"""Adaptive jitter buffer (sans-I/O): ``put(packet, arrival)`` as packets come, ``get(now)`` every tick.

Packets leave the network unevenly; the speaker needs one frame every 20 ms. The buffer holds
packets long enough that almost all have arrived by the time they are due, and no longer.

How it decides (the ideas of WebRTC NetEQ, PJMEDIA and Asterisk's jitterbuf, in one small class):

* **Relative delay.** For each packet ``rel = arrival - timestamp/clock_rate``. The smallest ``rel``
  of the last ``window`` (10 s) is the fastest path through the network (``base``); ``rel - base``
  is how much later than that this packet came. The *target delay* is the larger of the 99 %
  quantile of those values over the window and the 90 % quantile over the last second, plus a
  10 ms margin: wait that long and almost every packet is in time. The long window rides out
  ordinary jitter and reordering; the short one reacts within a second. Packets that arrive in a
  bunch (a queue draining after a delay spike) are left out of the long window, so one spike
  does not keep the delay high for ten seconds. The window also follows sender clock drift.
* **Playout schedule.** A frame with timestamp ``ts`` is due at ``ts/clock_rate + base + target``.
  The buffer plays one frame per tick and compares where it is with where the schedule says it
  should be: ahead by a quarter frame -> *insert* (conceal once, do not advance); behind by more
  than 1.25 frames -> *drop* one frame (at most every ``drop_interval`` ticks, so a spike's extra
  delay drains within a second). Growing is immediate, shrinking gradual, as in NetEQ; the
  1.5-frame dead band keeps it from flapping. Clock drift is absorbed by the same two moves.
* **Talkspurts.** At a marker bit after silence the buffer re-aligns to the target outright: moving
  the playout point in silence costs nothing audible (Asterisk and PJMEDIA do the same).
* **Empty buffer = late, not lost.** If the due frame is missing and nothing later has arrived,
  the packet is probably delayed: conceal but wait (insert) instead of skipping it. If a later
  packet then arrives first, the frame was lost after all; the frames concealed while waiting
  stood in for it, so the buffer catches up by that many and the delay is unchanged.

A fixed buffer (``adaptive=False``) plays at first arrival + ``initial_delay`` forever: the
reference the benchmark compares against. Introduced in notebook 04.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .packet import RtpPacket

AUDIO = "audio"  # play this packet
CONCEAL = "conceal"  # a frame is missing: run packet-loss concealment
IDLE = "idle"  # nothing to play yet (before the first packet)


def _quantile(values: np.ndarray, q: float) -> float:
    """np.quantile's default (linear) on a 1-D array, via a partial sort: several times faster."""
    n = len(values)
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    part = np.partition(values, (lo, hi) if hi != lo else lo)
    return float(part[lo] + (part[hi] - part[lo]) * (pos - lo))


class _DelayHistory:
    """Arrival time, relative delay and burst flag of recent packets, in numpy arrays
    (appended in arrival order, forgotten from the front)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.arrival = np.empty(capacity)
        self.rel = np.empty(capacity)
        self.burst = np.zeros(capacity, bool)
        self.start = self.end = 0

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, arrival: float, rel: float) -> None:
        if self.end == len(self.arrival):
            n = len(self)
            if self.start < len(self.arrival) // 2:  # mostly full: grow
                for name in ("arrival", "rel", "burst"):
                    old = getattr(self, name)
                    new = np.zeros(2 * len(old), old.dtype)
                    new[:n] = old[self.start : self.end]
                    setattr(self, name, new)
            else:  # mostly forgotten: move the live part to the front
                for name in ("arrival", "rel", "burst"):
                    arr = getattr(self, name)
                    arr[:n] = arr[self.start : self.end].copy()
            self.start, self.end = 0, n
        self.arrival[self.end] = arrival
        self.rel[self.end] = rel
        self.burst[self.end] = False
        self.end += 1

    def mark_last_as_burst(self, count: int) -> None:
        self.burst[max(self.start, self.end - count) : self.end] = True

    def forget_before(self, limit: float) -> None:
        while self.start < self.end and self.arrival[self.start] < limit:
            self.start += 1

    def views(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sl = slice(self.start, self.end)
        return self.arrival[sl], self.rel[sl], self.burst[sl]


@dataclass
class Playout:
    """What to play at this tick."""

    kind: str
    packet: RtpPacket | None = None
    timestamp: int | None = None  # extended RTP timestamp of this slot
    action: str = ""  # "insert"/"drop"/"resync" when it moved its playout point; "wait" in silence


class JitterBuffer:
    """Adaptive (or fixed) jitter buffer for one media stream of fixed packet time."""

    def __init__(
        self,
        clock_rate: int = 8000,
        frame_duration: float = 0.020,
        adaptive: bool = True,
        initial_delay: float = 0.060,
        min_delay: float = 0.0,
        max_delay: float = 1.0,
        quantile: float = 0.99,
        window: float = 10.0,
        short_window: float = 1.0,
        short_quantile: float = 0.9,
        drop_interval: int = 2,
        capacity: int = 500,
        margin: float = 0.010,
        insert_threshold: float = 0.25,
        drop_threshold: float = 1.25,
    ) -> None:
        if clock_rate <= 0 or frame_duration <= 0:
            raise ValueError("clock_rate and frame_duration must be positive")
        if not 0.5 <= quantile <= 1.0:
            raise ValueError(f"quantile must be in 0.5..1, got {quantile}")
        self.clock_rate = clock_rate
        self.frame_duration = frame_duration
        self.frame_samples = int(round(clock_rate * frame_duration))
        self.adaptive = adaptive
        self.initial_delay = initial_delay
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.quantile = quantile
        self.window = window
        self.short_window = short_window
        self.short_quantile = short_quantile
        self.drop_interval = drop_interval
        self.capacity = capacity
        self.margin = margin
        self.insert_threshold = insert_threshold  # frames ahead of schedule before we stretch
        self.drop_threshold = drop_threshold  # frames behind schedule before we shrink
        # counters (never reset, not even by an SSRC change)
        self.received = 0
        self.played = 0
        self.late = 0
        self.duplicates = 0
        self.concealed = 0
        self.inserted = 0
        self.dropped = 0
        self.overflow = 0
        self.resyncs = 0
        self.ssrc_changes = 0
        self.stale_ssrc = 0
        self.flushed = 0
        self._old_ssrcs: deque[int] = deque(maxlen=8)
        self.ssrc: int | None = None
        self._reset_source()

    # --- state ---------------------------------------------------------------------------
    def _reset_source(self) -> None:
        self._packets: dict[int, tuple[int, RtpPacket]] = {}  # ext ts -> (ext seq, packet)
        self._ext_ts: int | None = None  # last extended timestamp seen (unwrap reference)
        self._ext_seq: int | None = None
        self._played_seqs: deque[int] = deque(maxlen=128)
        self._played_set: set[int] = set()
        self._history = _DelayHistory()
        self._group_start = -1.0  # arrival time of the first packet of the current bunch
        self._group_size = 0
        self._last_arrival = 0.0
        self._target: float | None = None
        self._base: float | None = None
        self._dirty = True
        self.play_ts: int | None = None  # extended timestamp of the next slot to play
        self._since_drop = 0
        self._held = 0  # frames concealed while waiting for a missing one
        self._fixed_base: float | None = None

    # --- unwrapping ----------------------------------------------------------------------
    @staticmethod
    def _unwrap(value: int, reference: int | None, bits: int) -> int:
        if reference is None:
            return value
        mod = 1 << bits
        diff = (value - reference) % mod
        if diff >= mod // 2:
            diff -= mod
        return reference + diff

    # --- input ---------------------------------------------------------------------------
    def put(self, packet: RtpPacket, arrival: float) -> str:
        """Queue a packet. Returns "queued", "duplicate", "late", "stale-ssrc" or "resync"."""
        status = "queued"
        if packet.ssrc != self.ssrc:
            if packet.ssrc in self._old_ssrcs:
                self.stale_ssrc += 1
                return "stale-ssrc"
            if self.ssrc is not None:
                self._old_ssrcs.append(self.ssrc)
                self.ssrc_changes += 1
                status = "resync"
            self.ssrc = packet.ssrc
            self.flushed += len(self._packets)  # the old source's queued frames are dropped
            self._reset_source()
        ext_ts = self._unwrap(packet.timestamp, self._ext_ts, 32)
        ext_seq = self._unwrap(packet.sequence_number, self._ext_seq, 16)
        # a jump of more than 10 s either way with the same SSRC: the sender restarted its clock
        if self.play_ts is not None and abs(ext_ts - self.play_ts) > 10 * self.clock_rate:
            self._reset_source()
            self.resyncs += 1
            ext_ts, ext_seq, status = packet.timestamp, packet.sequence_number, "resync"
        self._ext_ts = ext_ts if self._ext_ts is None else max(self._ext_ts, ext_ts)
        self._ext_seq = ext_seq if self._ext_seq is None else max(self._ext_seq, ext_seq)
        self.received += 1
        if ext_ts in self._packets or ext_seq in self._played_set:
            self.duplicates += 1
            return "duplicate"
        self._note_delay(ext_ts, arrival)
        if self.play_ts is not None and ext_ts < self.play_ts:
            self.late += 1
            return "late"
        if len(self._packets) >= self.capacity:
            oldest = min(self._packets)
            del self._packets[oldest]
            self.overflow += 1
        self._packets[ext_ts] = (ext_seq, packet)
        return status

    def _note_delay(self, ext_ts: int, arrival: float) -> None:
        rel = arrival - ext_ts / self.clock_rate
        if self._fixed_base is None:
            self._fixed_base = rel
        # Three or more packets landing within a quarter frame of each other, although sent
        # frames apart, are a queue draining after a delay spike. The hold-when-empty rule
        # already saves such packets, so the long-term estimate leaves them out; otherwise one
        # spike would keep the delay high for the whole window. (A reordered packet arrives
        # alone, so it still counts.)
        self._last_arrival = max(self._last_arrival, arrival)
        self._history.append(arrival, rel)
        if self._group_size and arrival - self._group_start < self.frame_duration / 4:
            self._group_size += 1
            if self._group_size >= 3:
                self._history.mark_last_as_burst(self._group_size)
        else:
            self._group_start, self._group_size = arrival, 1
        self._history.forget_before(arrival - self.window)
        self._dirty = True

    # --- delay estimate ------------------------------------------------------------------
    def _estimate(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        if not len(self._history):
            self._base, self._target = None, self.initial_delay
            return
        arrivals, rel, burst = self._history.views()
        self._base = float(rel.min())
        if len(rel) < 10:
            self._target = self.initial_delay
            return
        spread = rel - self._base
        steady = spread[~burst]
        long_term = _quantile(steady, self.quantile) if len(steady) else 0.0
        recent = spread[arrivals >= arrivals[-1] - self.short_window]
        short_term = _quantile(recent, self.short_quantile) if len(recent) else 0.0
        target = max(long_term, short_term) + self.margin
        if len(rel) < 50:  # the first second: too few samples to trust below the initial delay
            target = max(target, self.initial_delay)
        self._target = min(self.max_delay, max(self.min_delay, target))

    @property
    def base(self) -> float | None:
        """Fastest relative delay in the window (fixed buffer: the first packet's)."""
        if not self.adaptive:
            return self._fixed_base
        self._estimate()
        return self._base

    @property
    def target_delay(self) -> float:
        """How long after the fastest possible arrival a frame is played (seconds): the larger
        of a high quantile over the long window and the largest delay of the last second."""
        if not self.adaptive:
            return self.initial_delay
        self._estimate()
        return self._target

    def _due_ts(self, now: float) -> float:
        """The (fractional) timestamp the schedule says is due at ``now``."""
        return (now - self.base - self.target_delay) * self.clock_rate

    @property
    def depth(self) -> int:
        """Packets waiting in the buffer."""
        return len(self._packets)

    def buffered_duration(self) -> float:
        """Seconds of audio between the playout point and the newest packet held."""
        if not self._packets or self.play_ts is None:
            return 0.0
        return (max(self._packets) + self.frame_samples - self.play_ts) / self.clock_rate

    def playout_delay(self, now: float) -> float | None:
        """How long after its fastest-path arrival the current slot plays (seconds)."""
        if self.play_ts is None or self.base is None:
            return None
        return now - self.base - self.play_ts / self.clock_rate

    # --- output --------------------------------------------------------------------------
    def get(self, now: float) -> Playout:
        """Call once per frame duration: the frame to play now."""
        if self.play_ts is None:
            if not self._packets:
                return Playout(IDLE)
            first = min(self._packets)
            if first > self._due_ts(now):
                return Playout(IDLE)  # still filling up to the target delay
            self.play_ts = first
            return self._play(Playout(AUDIO))
        if not self.adaptive:
            return self._play(Playout(AUDIO))

        slot = self._packets.get(self.play_ts)
        upcoming = min(self._packets) if self._packets else None
        if slot is None and upcoming is not None and self._held:
            # We waited for this frame, and a later one came first: it was lost after all, and
            # the frames we concealed while waiting stood in for it. Catch up by as many.
            skip = min(self._held, (upcoming - self.play_ts) // self.frame_samples)
            self.play_ts += skip * self.frame_samples
            self._held = 0
            slot = self._packets.get(self.play_ts)
        error = (self.play_ts - self._due_ts(now)) / self.frame_samples  # >0: playing too early
        # talkspurt start after silence: jump straight to the schedule
        if slot is None and upcoming is not None and self._packets[upcoming][1].marker:
            due = self._due_ts(now)
            if upcoming <= due:
                self.play_ts = upcoming
                self.resyncs += 1
                return self._play(Playout(AUDIO, action="resync"))
            # silence before the next talkspurt: wait for its due time
            return Playout(CONCEAL, timestamp=self.play_ts, action="wait")
        if slot is None and upcoming is None and now - self._last_arrival > self.max_delay:
            # the source has gone quiet (hold, DTX without marker, end of call): just wait
            return Playout(CONCEAL, timestamp=self.play_ts, action="wait")
        if slot is None and upcoming is None:
            self._held += 1  # nothing behind it: probably late, not lost - wait for it
            return self._insert(now)
        if error > self.insert_threshold:
            return self._insert(now)
        self._since_drop += 1
        if error < -self.drop_threshold and self._since_drop >= self.drop_interval:
            self._since_drop = 0
            self.dropped += 1
            self._packets.pop(self.play_ts, None)
            self.play_ts += self.frame_samples
            return self._play(Playout(AUDIO, action="drop"))
        return self._play(Playout(AUDIO))

    def _insert(self, now: float) -> Playout:
        self._since_drop = 0  # never drop the frame we just waited for
        self.inserted += 1
        self.concealed += 1
        return Playout(CONCEAL, timestamp=self.play_ts, action="insert")

    def _play(self, result: Playout) -> Playout:
        ts = self.play_ts
        # anything older than the playout point can never play now
        for old in [t for t in self._packets if t < ts]:
            del self._packets[old]
            self.late += 1
        entry = self._packets.pop(ts, None)
        self.play_ts = ts + self.frame_samples
        result.timestamp = ts
        if entry is None:
            self.concealed += 1
            result.kind = CONCEAL
            return result
        seq, packet = entry
        self._held = 0
        if len(self._played_seqs) == self._played_seqs.maxlen:
            self._played_set.discard(self._played_seqs[0])
        self._played_seqs.append(seq)
        self._played_set.add(seq)
        self.played += 1
        result.kind = AUDIO
        result.packet = packet
        return result

    def stats(self) -> dict:
        return {
            "received": self.received,
            "played": self.played,
            "late": self.late,
            "duplicates": self.duplicates,
            "concealed": self.concealed,
            "inserted": self.inserted,
            "dropped": self.dropped,
            "resyncs": self.resyncs,
            "ssrc_changes": self.ssrc_changes,
            "target_delay": self.target_delay,
            "depth": self.depth,
        }
