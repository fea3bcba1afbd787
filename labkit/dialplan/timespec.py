"""Time conditions: ``include => ctx,09:00-17:59,mon-fri,*,*`` and ``GotoIfTime(...)``.

Introduced in notebook 07. Business hours are the classic use: route to the reception during the
day and to an announcement at night. A time spec has four fields and an optional time zone, as in
Asterisk's ``ast_build_timing``::

    times,weekdays,monthdays,months[,timezone]      e.g.  09:00-17:59,mon-fri,*,*,Europe/Berlin

* each field is ``*`` (always) or parts joined by ``&``; a part is one value or a ``start-end`` range;
* ranges are inclusive at both ends and wrap around (``22:00-05:59``, ``fri-mon``, ``dec-feb``);
* times are ``HH:MM`` to the minute; weekdays ``sun mon tue wed thu fri sat``; month days ``1-31``;
  months ``jan``...``dec`` or ``1-12``; the time zone is an IANA name (default: the time given).

Matching is a pure function of the time you pass in (``spec.matches(when)``): the engine passes its
injectable clock, tests pass fixed datetimes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .errors import DialplanError

__all__ = ["TimeSpec"]

_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def _cyclic(start: int, end: int, size: int) -> set[int]:
    out, i = {end}, start
    while i != end:
        out.add(i)
        i = (i + 1) % size
    return out


def _minute(text: str, spec: str) -> int:
    hh, colon, mm = text.strip().partition(":")
    if not colon or not hh.isdigit() or not mm.isdigit() or int(hh) > 23 or int(mm) > 59 or len(mm) != 2:
        raise DialplanError(f"time spec '{spec}': '{text}' is not a time HH:MM")
    return int(hh) * 60 + int(mm)


def _times(field: str, spec: str) -> frozenset[int] | None:
    if field in ("", "*"):
        return None
    minutes: set[int] = set()
    for part in field.split("&"):
        start, dash, end = part.partition("-")
        a = _minute(start, spec)
        minutes |= _cyclic(a, _minute(end, spec), 24 * 60) if dash else {a}
    return frozenset(minutes)


def _named(field: str, names: list[str], first_number: int, what: str, spec: str) -> frozenset[int] | None:
    if field in ("", "*"):
        return None

    def index(text: str) -> int:
        t = text.strip().lower()
        if t in names or (len(t) >= 3 and t[:3] in names):  # 'mon' or 'monday'; '15' for day 15
            return names.index(t if t in names else t[:3])
        if t.isdigit() and first_number <= int(t) < first_number + len(names):
            return int(t) - first_number
        raise DialplanError(f"time spec '{spec}': '{text}' is not a {what}")

    values: set[int] = set()
    for part in field.split("&"):
        start, dash, end = part.partition("-")
        a = index(start)
        values |= _cyclic(a, index(end), len(names)) if dash else {a}
    return frozenset(values)


@dataclass(frozen=True)
class TimeSpec:
    """A parsed time condition; ``TimeSpec.parse("09:00-17:59,mon-fri,*,*").matches(when)``."""

    text: str
    minutes: frozenset[int] | None  # minute of the day, None = any
    weekdays: frozenset[int] | None  # 0 = Sunday, as Asterisk counts
    monthdays: frozenset[int] | None  # 0-based: 0 = the 1st
    months: frozenset[int] | None  # 0 = January
    timezone: str | None = None

    @classmethod
    def parse(cls, text: str) -> "TimeSpec":
        fields = [f.strip() for f in text.split(",")]
        if not 1 <= len(fields) <= 5:
            raise DialplanError(f"time spec '{text}': expected times,weekdays,monthdays,months[,timezone]")
        fields += ["*"] * (4 - len(fields)) if len(fields) < 4 else []
        tz = fields[4] if len(fields) == 5 and fields[4] else None
        if tz is not None:
            try:
                from zoneinfo import ZoneInfo
                ZoneInfo(tz)
            except Exception:
                raise DialplanError(f"time spec '{text}': unknown time zone '{tz}'") from None
        days = [str(i) for i in range(1, 32)]
        return cls(text, _times(fields[0], text), _named(fields[1], _DAYS, 0, "weekday (sun-sat)", text),
                   _named(fields[2], days, 1, "day of the month (1-31)", text),
                   _named(fields[3], _MONTHS, 1, "month (jan-dec or 1-12)", text), tz)

    def matches(self, when: datetime) -> bool:
        """Is ``when`` inside this spec (converted to its time zone first, when it has one)?"""
        if self.timezone is not None:
            from zoneinfo import ZoneInfo
            when = when.astimezone(ZoneInfo(self.timezone))
        weekday = (when.weekday() + 1) % 7  # Python: Monday = 0; Asterisk: Sunday = 0
        return ((self.months is None or when.month - 1 in self.months)
                and (self.monthdays is None or when.day - 1 in self.monthdays)
                and (self.weekdays is None or weekday in self.weekdays)
                and (self.minutes is None or when.hour * 60 + when.minute in self.minutes))
