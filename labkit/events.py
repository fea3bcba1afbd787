"""One event bus for everything observable: SIP messages in and out, drops, call events.

The log, CDR, the notebooks' ladder diagrams and live plots all subscribe here, so they can
never disagree about what happened. Publishing is synchronous and cheap when nobody listens;
a subscriber that raises is reported once per call and never breaks the publisher.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("labkit.events")


@dataclass(frozen=True)
class Event:
    """Something that happened. `kind` is dotted: 'sip.in', 'sip.out', 'sip.drop', 'call.answered'."""

    kind: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self, clock: Callable[[], float] = time.time):
        self._subscribers: list[tuple[str, Subscriber]] = []
        self._wanted: dict[str, tuple[Subscriber, ...]] = {}   # kind -> its subscribers, see _for
        self.clock = clock

    def subscribe(self, callback: Subscriber, prefix: str = "") -> Callable[[], None]:
        """Call `callback` for every event whose kind starts with `prefix`; returns an unsubscribe."""
        entry = (prefix, callback)
        self._subscribers.append(entry)
        self._wanted.clear()

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)
                self._wanted.clear()

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def _for(self, kind: str) -> tuple[Subscriber, ...]:
        """The subscribers of one kind, worked out once per set of subscriptions: a server
        publishes a few kinds many times a second, mostly with nobody listening to them."""
        found = self._wanted.get(kind)
        if found is None:
            found = self._wanted[kind] = tuple(cb for prefix, cb in self._subscribers if kind.startswith(prefix))
        return found

    def wants(self, kind: str) -> bool:
        """Would an event of `kind` reach anyone? Lets a hot path skip gathering its data."""
        return bool(self._subscribers) and bool(self._for(kind))

    def publish(self, kind: str, **data: Any) -> Event | None:
        """Deliver an event to the subscribers of its kind; None (nothing built) when there are none."""
        if not self._subscribers:
            return None
        callbacks = self._for(kind)
        if not callbacks:
            return None
        event = Event(kind, self.clock(), data)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:  # a broken listener must not break the server
                log.exception("event subscriber %r failed on %s", callback, kind)
        return event


class EventRecorder:
    """Collects events in a list — for notebooks (ladder diagrams) and tests."""

    def __init__(self, bus: EventBus, prefix: str = ""):
        self.events: list[Event] = []
        self._unsubscribe = bus.subscribe(self.events.append, prefix)

    def close(self) -> None:
        self._unsubscribe()

    def __enter__(self) -> "EventRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
