"""The location service: address-of-record → contacts, persisted in SQLite.

Introduced in notebook 03. A registrar writes bindings here; the call router reads them. Every
binding has an absolute expiry (wall-clock seconds since the epoch, because bindings must
survive a restart), so a binding read after a restart still expires at the right moment.
Writes are SQLite transactions in WAL mode: a crash mid-REGISTER leaves the old bindings whole.
Kept behind this small interface so a shared database can replace it when scaling out.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings (
    aor        TEXT NOT NULL,
    contact    TEXT NOT NULL,      -- the Contact URI as sent (without <>), compared by its key
    key        TEXT NOT NULL,      -- comparison key of the URI (RFC 3261 §19.1.4 normalised)
    expires_at REAL NOT NULL,
    q          REAL,
    call_id    TEXT NOT NULL,
    cseq       INTEGER NOT NULL,
    source     TEXT NOT NULL,      -- transport:host:port the REGISTER came from (NAT: reach it here)
    path       TEXT NOT NULL DEFAULT '[]',
    user_agent TEXT,
    instance   TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (aor, key)
);
CREATE INDEX IF NOT EXISTS bindings_expiry ON bindings(expires_at);
"""


@dataclass
class Binding:
    aor: str
    contact: str
    key: str
    expires_at: float
    call_id: str
    cseq: int
    source: str
    q: float | None = None
    path: list[str] = field(default_factory=list)
    user_agent: str | None = None
    instance: str | None = None
    updated_at: float = 0.0

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


class LocationService:
    """Bindings of AORs to contacts. `path=None` keeps them in memory only (tests, notebooks).

    `lookup` reads through a per-AOR cache (every call looks its callee up; a REGISTER is
    rare next to that). This object's writes (`apply`, `expire`) drop the AOR's entry, so the
    cache is exact as long as this object is the database's only writer — true for one PBX
    process; a shared database for scale-out would need the writers' change notifications.
    The Binding objects returned are shared with the cache: read them, do not change them."""

    def __init__(self, path: str | Path | None = None, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()     # `--list` may read from another thread/process
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._cache: dict[str, list[Binding]] = {}   # aor -> every stored binding, in lookup order

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- reads ------------------------------------------------------------------------------
    def lookup(self, aor: str, now: float | None = None) -> list[Binding]:
        """Live bindings of one AOR, highest q first (then most recent)."""
        now = self.clock() if now is None else now
        stored = self._cache.get(aor)
        if stored is None:
            rows = self._query("SELECT * FROM bindings WHERE aor=?", (aor,))
            stored = sorted(rows, key=lambda b: (-(b.q if b.q is not None else 1.0), -b.updated_at))
            self._cache[aor] = stored
        return [b for b in stored if b.expires_at > now]

    def all(self, now: float | None = None) -> list[Binding]:
        now = self.clock() if now is None else now
        return self._query("SELECT * FROM bindings WHERE expires_at>? ORDER BY aor, contact", (now,))

    def _query(self, sql: str, args: tuple) -> list[Binding]:
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        out = []
        for row in rows:
            data = dict(zip(names, row))
            data["path"] = json.loads(data["path"])
            out.append(Binding(**data))
        return out

    # ---- writes -----------------------------------------------------------------------------
    def apply(self, aor: str, upserts: Iterable[Binding] = (), removals: Iterable[str] = (),
              remove_all: bool = False) -> None:
        """Apply one REGISTER's changes atomically: all of them or none."""
        with self._lock:
            self._cache.pop(aor, None)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                if remove_all:
                    self._db.execute("DELETE FROM bindings WHERE aor=?", (aor,))
                for key in removals:
                    self._db.execute("DELETE FROM bindings WHERE aor=? AND key=?", (aor, key))
                for b in upserts:
                    self._db.execute(
                        "INSERT OR REPLACE INTO bindings (aor, contact, key, expires_at, q, call_id, cseq,"
                        " source, path, user_agent, instance, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (aor, b.contact, b.key, b.expires_at, b.q, b.call_id, b.cseq, b.source,
                         json.dumps(b.path), b.user_agent, b.instance, b.updated_at or self.clock()),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def expire(self, now: float | None = None) -> list[Binding]:
        """Delete bindings whose time is up; return them (for the log and MWI/presence later)."""
        now = self.clock() if now is None else now
        gone = self._query("SELECT * FROM bindings WHERE expires_at<=?", (now,))
        if gone:
            with self._lock:
                self._db.execute("DELETE FROM bindings WHERE expires_at<=?", (now,))
                for b in gone:
                    self._cache.pop(b.aor, None)
        return gone

    def next_expiry(self) -> float | None:
        with self._lock:
            (value,) = self._db.execute("SELECT MIN(expires_at) FROM bindings").fetchone()
        return value


def format_bindings(bindings: list[Binding], now: float) -> str:
    """The `--list` view: AOR → contact, expires in N s (like the seed's `sip_registrar --list`)."""
    if not bindings:
        return "no registrations"
    width = max(len(b.aor) for b in bindings)
    lines = [f"{b.aor:<{width}} -> {b.contact}  expires in {b.expires_in(now)} s  (via {b.source})"
             for b in bindings]
    return "\n".join(lines)
