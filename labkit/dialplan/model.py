"""The parsed dialplan: contexts holding extensions holding numbered priorities.

Introduced in notebook 07. A *context* is a namespace of extensions; the PBX gives each caller
one context, and the caller can reach only that context's extensions and those of the contexts it
includes. Lookups follow Asterisk's ``pbx_find_extension``: the context's own extensions in
"most specific first" order (see :mod:`labkit.dialplan.patterns`), then each ``include`` in order,
depth first, each context visited once. The first extension that matches *and has the wanted
priority* wins, so a pattern can supply the later priorities of a more specific extension.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator

from .patterns import Pattern, strip_dashes
from .timespec import TimeSpec

__all__ = ["Priority", "Extension", "Include", "Context", "Dialplan", "Found"]


@dataclass
class Priority:
    """One step of an extension: ``exten => 100,2(label),Dial(PJSIP/100,20)``."""

    number: int
    app: str
    data: str
    label: str | None = None
    filename: str = "<string>"
    line: int = 0

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.line}"

    def __str__(self) -> str:
        return f"{self.app}({self.data})"


@dataclass
class Extension:
    """An extension name (literal or ``_`` pattern), optionally limited to matching caller IDs."""

    name: str
    callerid: str | None = None  # `exten => 100/5551212,...`: only for that caller ID (pattern ok)
    priorities: dict[int, Priority] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    hint: str | None = None
    hint_location: str | None = None

    def __post_init__(self) -> None:
        self.pattern = Pattern(self.name)
        self.callerid_pattern = Pattern(self.callerid) if self.callerid else None

    @property
    def sort_key(self) -> tuple:
        # same name: the variants limited to a caller ID come first (Asterisk's add_extension2)
        if self.callerid_pattern is None:
            return (self.pattern.sort_key, 1, ())
        return (self.pattern.sort_key, 0, self.callerid_pattern.sort_key)

    @property
    def display_name(self) -> str:
        return f"{self.name}/{self.callerid}" if self.callerid else self.name

    def matches(self, exten: str, callerid: str | None = None) -> bool:
        """Does this extension take the dialled ``exten`` from caller ``callerid``?"""
        if not self.pattern.matches(exten):
            return False
        if self.callerid_pattern is None:
            return True
        return bool(callerid) and self.callerid_pattern.matches(callerid or "")

    def ordered_priorities(self) -> list[Priority]:
        return [self.priorities[n] for n in sorted(self.priorities)]


@dataclass
class Include:
    """``include => other[,times,weekdays,monthdays,months[,tz]]``: active only inside the time spec."""

    name: str
    timespec: str | None = None
    filename: str = "<string>"
    line: int = 0
    timing: TimeSpec | None = None

    def active(self, now: datetime | None) -> bool:
        """Without a time (``now=None``: static tools) every include counts."""
        return self.timing is None or now is None or self.timing.matches(now)


@dataclass
class Context:
    """``[name]``: extensions plus the contexts it includes, searched after its own."""

    name: str
    filename: str = "<string>"
    line: int = 0
    extensions: dict[tuple[str, str | None], Extension] = field(default_factory=dict)
    includes: list[Include] = field(default_factory=list)
    ignore_patterns: list[str] = field(default_factory=list)

    def sorted_extensions(self) -> list[Extension]:
        """Extensions in Asterisk's order: literal first, then patterns, most specific first."""
        return sorted(self.extensions.values(), key=lambda e: e.sort_key)

    def get(self, name: str, callerid: str | None = None) -> Extension | None:
        return self.extensions.get((name, callerid))


@dataclass(frozen=True)
class Found:
    """Result of a lookup: the context it was found in, the extension and the priority."""

    context: str
    extension: Extension
    priority: Priority


#: lookups ``Dialplan.find`` remembers at most (then it starts again)
MAX_REMEMBERED_LOOKUPS = 4096


class Dialplan:
    """All contexts, the ``[globals]`` and ``[general]`` settings of one extensions.conf."""

    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}
        self.globals: dict[str, str] = {}
        self.settings: dict[str, str] = {}
        self.files: list[str] = []
        self.warnings: list = []  # DialplanError instances found by the loader
        self._sorted: dict[str, list[Extension]] = {}
        self._index: dict[str, tuple[dict[str, list[Extension]], list[Extension]]] = {}
        self._order: dict[str, list[str]] = {}
        self._timed: bool | None = None
        self._found: dict[tuple, Found | None] = {}   # see find

    def __contains__(self, context: str) -> bool:
        return context in self.contexts

    def __getitem__(self, context: str) -> Context:
        return self.contexts[context]

    def invalidate(self) -> None:
        """Forget cached orderings (call after changing contexts or extensions by hand)."""
        self._sorted.clear()
        self._index.clear()
        self._order.clear()
        self._found.clear()
        self._timed = None

    def _extensions(self, context: str) -> list[Extension]:
        cached = self._sorted.get(context)
        if cached is None:
            cached = self._sorted[context] = self.contexts[context].sorted_extensions()
        return cached

    def _lookup_index(self, context: str) -> tuple[dict[str, list[Extension]], list[Extension]]:
        """Literal names in a dict (one probe instead of a scan), patterns in match order."""
        index = self._index.get(context)
        if index is None:
            literals: dict[str, list[Extension]] = {}
            patterns: list[Extension] = []
            for ext in self._extensions(context):
                if ext.pattern.is_pattern:
                    patterns.append(ext)
                else:
                    literals.setdefault(strip_dashes(ext.name), []).append(ext)
            index = self._index[context] = (literals, patterns)
        return index

    @property
    def timed(self) -> bool:
        """Does any include depend on the time? If not, lookups need no ``now``."""
        if self._timed is None:
            self._timed = any(inc.timing is not None for c in self.contexts.values() for inc in c.includes)
        return self._timed

    def search_order(self, context: str, now: datetime | None = None) -> list[str]:
        """The contexts a lookup in ``context`` visits, in order: itself, then includes depth first.

        ``now`` switches time-conditioned includes on or off; None counts them all.
        """
        key = context if (now is None or not self.timed) else None
        cached = self._order.get(context) if key is not None else None
        if cached is not None:
            return cached
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in self.contexts:
                return
            seen.add(name)
            order.append(name)
            for inc in self.contexts[name].includes:
                if inc.active(now):
                    visit(inc.name)

        visit(context)
        if key is not None:
            self._order[key] = order
        return order

    def candidates(self, context: str, exten: str, callerid: str | None = None, *,
                   now: datetime | None = None) -> Iterator[tuple[str, Extension]]:
        """Every (context, extension) that matches ``exten``, in the order lookups try them."""
        number = strip_dashes(exten)
        for name in self.search_order(context, now):
            literals, patterns = self._lookup_index(name)
            for ext in literals.get(number, ()):  # every literal sorts before every pattern
                if ext.matches(exten, callerid):
                    yield name, ext
            for ext in patterns:
                if ext.matches(exten, callerid):
                    yield name, ext

    def find(self, context: str, exten: str, priority: int, callerid: str | None = None, *,
             now: datetime | None = None) -> Found | None:
        """The step to run for (context, exten, priority), or None; ``now`` for timed includes.

        Remembered while no include depends on the time (every call of an extension takes
        the same steps); the dialled numbers are the callers', so the memory is bounded."""
        if now is not None and self.timed:
            return self._find(context, exten, priority, callerid, now)
        key = (context, exten, priority, callerid)
        try:
            return self._found[key]
        except KeyError:
            pass
        if len(self._found) >= MAX_REMEMBERED_LOOKUPS:
            self._found.clear()
        found = self._found[key] = self._find(context, exten, priority, callerid, None)
        return found

    def _find(self, context: str, exten: str, priority: int, callerid: str | None,
              now: datetime | None) -> Found | None:
        for name, ext in self.candidates(context, exten, callerid, now=now):
            step = ext.priorities.get(priority)
            if step is not None:
                return Found(name, ext, step)
        return None

    def find_label(self, context: str, exten: str, label: str, callerid: str | None = None, *,
                   now: datetime | None = None) -> Found | None:
        """The step carrying ``label`` for (context, exten), or None."""
        for name, ext in self.candidates(context, exten, callerid, now=now):
            number = ext.labels.get(label)
            if number is not None:
                return Found(name, ext, ext.priorities[number])
        return None

    def exists(self, context: str, exten: str, priority: int = 1, callerid: str | None = None, *,
               now: datetime | None = None) -> bool:
        return self.find(context, exten, priority, callerid, now=now) is not None

    def can_match(self, context: str, exten: str, callerid: str | None = None, *,
                  now: datetime | None = None) -> bool:
        """Could ``exten`` (perhaps after more digits) reach an extension of ``context``?"""
        for name in self.search_order(context, now):
            for ext in self._extensions(name):
                if ext.pattern.can_match(exten):
                    return True
        return False

    def matches_more(self, context: str, exten: str, callerid: str | None = None, *,
                     now: datetime | None = None) -> bool:
        """Would more digits still lead to a (different) match? Used to wait for digits."""
        for name in self.search_order(context, now):
            for ext in self._extensions(name):
                if ext.pattern.matches_more(exten):
                    return True
        return False

    def hint(self, context: str, exten: str) -> str | None:
        """The ``hint`` of the extension (device state to watch for BLF), if any."""
        for _, ext in self.candidates(context, exten):
            if ext.hint:
                return ext.hint
        return None

    @property
    def priority_count(self) -> int:
        return sum(len(e.priorities) for c in self.contexts.values() for e in c.extensions.values())
