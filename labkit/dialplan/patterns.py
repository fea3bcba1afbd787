"""Extension names and patterns: matching a dialled number, and Asterisk's "most specific wins" order.

Introduced in notebook 07.

An extension name is either *literal* (``100``, ``s``, ``i``, ``h``) or a *pattern*, which starts
with ``_``. In a pattern each position stands for a set of characters:

=========  =================================  ===========================
``X``      any digit 0-9                      10 characters
``Z``      any digit 1-9                      9 characters
``N``      any digit 2-9                      8 characters
``[15-7]`` the listed characters and ranges   as many as listed (here 4)
other      itself (``1``, ``*``, ``#``, ``a``)  1 character
``.``      one or more of anything (ends the pattern)
``!``      zero or more of anything, and matches *early* (ends the pattern)
=========  =================================  ===========================

Case follows Asterisk: ``N``/``X``/``Z`` may be written in either case, every other character
(in literal names, in pattern positions and inside ``[...]``) matches only itself, case and all.
A ``-`` outside brackets is decoration, ignored in both patterns and dialled numbers
(``_1-XXX`` = ``_1XXX``; ``555-1234`` dials as ``5551234``). Whatever follows ``.`` or ``!`` is
never looked at, as in Asterisk (``_1.5`` matches ``12``); ``check`` warns about it.

**Which extension wins when several match** (Asterisk's ``ext_cmp``; the dialplan is kept
sorted this way and the first extension that matches is used):

1. every literal name sorts before every pattern; literals compare as plain strings;
2. two patterns are compared position by position, left to right, and the first position that
   differs decides. Each position scores ``size of its character set << 8 | smallest character``,
   so a literal character (size 1) beats ``N`` (8), which beats ``Z`` (9), which beats ``X`` (10);
   ``[..]`` scores by how many characters it lists; ``.`` scores 0x18000 and ``!`` 0x28000 (after
   every set), and the end of the pattern 0x30000. Equal scores with different sets are broken by
   the set holding the lower characters.

So for ``6123``: ``_61XX`` beats ``_6XXX`` (position 2: ``1`` beats ``X``); for ``5551234``:
``_NXXXXXX`` beats ``_X.`` (``N`` beats ``X``); for ``15551234567`` ``_1NXXNXXXXXX`` beats ``_X.``;
and ``_X.`` beats ``_.`` beats ``_!``. Note the comparison is by position, not by how many
wildcards a pattern has overall: ``_1XXXXX`` beats ``_X11111``.
"""
from __future__ import annotations

from dataclasses import dataclass
import re
from enum import IntEnum
from functools import cached_property

from .errors import PatternError

__all__ = ["Pattern", "MatchKind", "sort_key", "compare", "strip_dashes"]

WILDCARD = "."
EARLY = "!"
_WEIGHT_WILDCARD = 0x18000
_WEIGHT_EARLY = 0x28000
_WEIGHT_END = 0x30000
_CLASSES = {"N": "23456789", "X": "0123456789", "Z": "123456789"}


class MatchKind(IntEnum):
    """How a dialled number relates to a pattern (Asterisk's 0 / 1 / 2 results)."""

    NONE = 0
    MATCH = 1
    EARLY = 2  # matched by a ``!``: a match that needs no more digits


def strip_dashes(number: str) -> str:
    """Remove the ``-`` characters Asterisk ignores in dialled numbers and extension names."""
    return number.replace("-", "")


@dataclass(frozen=True)
class Position:
    """One position of a compiled pattern: a character set, ``.`` or ``!``."""

    chars: frozenset[str] | None  # None for '.' and '!'
    kind: str  # 'set', '.' or '!'
    label: str  # as written: '1', 'N', '[1-5]', '.'

    @property
    def weight(self) -> int:
        if self.kind == WILDCARD:
            return _WEIGHT_WILDCARD
        if self.kind == EARLY:
            return _WEIGHT_EARLY
        assert self.chars is not None
        return len(self.chars) << 8 | min(ord(c) for c in self.chars)

    @property
    def bitmap(self) -> int:
        """Asterisk's 256-bit set, lowest character in the most significant bit."""
        if self.chars is None:
            return 0
        return sum(1 << (255 - ord(c)) for c in self.chars)

    def describe(self) -> str:
        """``N(8)``-style: the position as written and the size of its set."""
        if self.chars is None:
            return self.label
        return self.label if len(self.chars) == 1 else f"{self.label}({len(self.chars)})"


class Pattern:
    """A compiled extension name; ``Pattern("_1XX").matches("101")``.

    Literal names match only themselves (ignoring ``-``). Construction raises
    :class:`PatternError` for a malformed pattern, such as an unclosed ``[``.
    """

    __slots__ = ("text", "is_pattern", "positions", "__dict__")

    def __init__(self, text: str):
        if not isinstance(text, str) or text == "":
            raise PatternError("empty extension name")
        if any(ord(c) < 33 or ord(c) > 126 for c in text):
            raise PatternError(f"extension {text!r} has a space or non-ASCII character")
        self.text = text
        self.is_pattern = text.startswith("_")
        self.positions: tuple[Position, ...] = _compile(text[1:]) if self.is_pattern else ()
        if self.is_pattern and not self.positions:
            raise PatternError(f"pattern {text!r} has no positions after '_'")

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and self.sort_key == other.sort_key

    def __hash__(self) -> int:
        return hash(self.sort_key)

    @cached_property
    def _literal(self) -> str:
        return strip_dashes(self.text)

    @cached_property
    def sort_key(self) -> tuple:
        """Key that sorts extensions the way Asterisk does (most specific first); see module doc."""
        if not self.is_pattern:
            return (0, self._literal)
        return (1, tuple((p.weight, -p.bitmap) for p in self.positions) + ((_WEIGHT_END, 0),))

    @property
    def ignored_tail(self) -> str:
        """What follows a ``.`` or ``!`` (never examined when matching)."""
        if not self.is_pattern:
            return ""
        body = self.text[1:]
        for i, c in enumerate(body):
            if c in (WILDCARD, EARLY):
                return body[i + 1 :]
        return ""

    def describe(self) -> list[str]:
        """Each position as written with its set size, e.g. ``['1', 'N(8)', 'X(10)', '.']``."""
        if not self.is_pattern:
            return list(self._literal)
        return [p.describe() for p in self.positions]

    # -- matching ---------------------------------------------------------------------------
    def match(self, number: str) -> MatchKind:
        """Does the whole of ``number`` match? (``MatchKind.EARLY`` for a ``!`` match.)"""
        return MatchKind(self._core(number, _MODE_MATCH))

    def matches(self, number: str) -> bool:
        """True when ``number`` is matched (exactly, or early by ``!``)."""
        if not self.is_pattern:
            return self._literal == strip_dashes(number)
        return self._regex.fullmatch(strip_dashes(number)) is not None

    @cached_property
    def _regex(self) -> re.Pattern:
        """The same E_MATCH test as ``_core`` as one compiled regex (the fast path for lookups)."""
        parts = []
        for pos in self.positions:
            if pos.kind == WILDCARD:
                parts.append("(?s:.+)")
                break
            if pos.kind == EARLY:
                parts.append("(?s:.*)")
                break
            parts.append("[" + "".join(re.escape(c) for c in sorted(pos.chars)) + "]")  # type: ignore[arg-type]
        return re.compile("".join(parts))

    def can_match(self, number: str) -> bool:
        """True when ``number`` matches now or could after more digits (overlap dialling, IVRs)."""
        return self._core(number, _MODE_CANMATCH) != 0

    def matches_more(self, number: str) -> bool:
        """True when more digits could still lead to a match (Asterisk's E_MATCHMORE)."""
        return self._core(number, _MODE_MATCHMORE) == 1

    def _core(self, number: str, mode: int) -> int:
        data = strip_dashes(number)
        if not self.is_pattern:
            lit = self._literal
            if len(lit) < len(data):
                return 0
            if mode == _MODE_MATCH:
                return int(lit == data)
            if lit.startswith(data):
                return int(len(lit) > len(data)) if mode == _MODE_MATCHMORE else 1
            return 0
        i = 0
        for k, pos in enumerate(self.positions):
            if i == len(data):  # the number ended first: a partial match at best
                if pos.kind == EARLY:
                    return 2
                return 0 if mode == _MODE_MATCH else 1
            if pos.kind == WILDCARD:
                return 1
            if pos.kind == EARLY:
                return 2
            if data[i] not in pos.chars:  # type: ignore[operator]
                return 0
            i += 1
        if i < len(data):  # the number is longer than the pattern
            return 0
        return 0 if mode == _MODE_MATCHMORE else 1


_MODE_MATCH, _MODE_CANMATCH, _MODE_MATCHMORE = 1, 2, 3


def _compile(body: str) -> tuple[Position, ...]:
    positions: list[Position] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "-":
            i += 1
            continue
        upper = c.upper()
        if upper in _CLASSES:
            positions.append(Position(frozenset(_CLASSES[upper]), "set", upper))
            i += 1
        elif c in (WILDCARD, EARLY):
            positions.append(Position(None, c, c))
            i += 1
        elif c == "[":
            end = body.find("]", i + 1)
            if end < 0:
                raise PatternError(f"unclosed '[' in pattern '_{body}'")
            chars = _parse_set(body[i + 1 : end], body)
            if chars:  # Asterisk ignores an empty set
                positions.append(Position(frozenset(chars), "set", body[i : end + 1]))
            i = end + 1
        elif c == "]":
            raise PatternError(f"']' without '[' in pattern '_{body}'")
        else:
            positions.append(Position(frozenset(c), "set", c))
            i += 1
    return tuple(positions)


def _parse_set(inside: str, body: str) -> set[str]:
    chars: set[str] = set()
    j = 0
    while j < len(inside):
        if j + 2 < len(inside) and inside[j + 1] == "-":
            lo, hi = inside[j], inside[j + 2]
            if lo > hi:
                raise PatternError(f"empty range '{lo}-{hi}' in pattern '_{body}'")
            chars.update(chr(x) for x in range(ord(lo), ord(hi) + 1))
            j += 3
        else:
            chars.add(inside[j])
            j += 1
    return chars


def sort_key(name: str) -> tuple:
    """Sort key of an extension name in Asterisk's order (see the module docstring)."""
    return Pattern(name).sort_key


def compare(left: str, right: str) -> int:
    """-1, 0 or 1 like Asterisk's ``ast_extension_cmp``: negative means ``left`` is more specific."""
    a, b = sort_key(left), sort_key(right)
    return (a > b) - (a < b)
