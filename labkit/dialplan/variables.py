"""``${...}`` substitution: channel variables, globals, built-ins, functions, substrings.

Introduced in notebook 07. Like Asterisk's ``pbx_substitute_variables_helper``:

* ``${NAME}`` looks up, in order, the built-ins (``EXTEN``, ``CONTEXT``, ``PRIORITY``,
  ``CHANNEL``, ``CALLERIDNUM``, ``CALLERIDNAME``, ``HANGUPCAUSE``), the channel's variables,
  then the globals.
  Built-ins are upper case exactly; other variable names are case-insensitive. Unset is ``""``.
* ``${NAME:offset}`` / ``${NAME:offset:length}`` take a substring: a negative offset counts from
  the end, a negative length leaves that many characters off the end
  (``${EXTEN:1}``, ``${EXTEN:-4:4}``, ``${EXTEN:0:-1}``).
* ``${FUNC(args)}`` calls a dialplan function from :data:`FUNCTIONS` (``LEN``, ``CALLERID``,
  ``IF``, ``GLOBAL``, ...); function names are case-insensitive; ``Set(FUNC(args)=value)`` writes.
* Inner references are substituted first, so ``${VAR_${X}}`` and ``${LEN(${EXTEN})}`` work, and
  ``$[...]`` is evaluated by :mod:`labkit.dialplan.expressions` after its inside is substituted.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from .errors import ExpressionError
from .expressions import evaluate

__all__ = ["Scope", "VariableScope", "substitute", "FUNCTIONS", "dialplan_function", "DialplanFunction",
           "condition_is_true", "substring"]

MAX_DEPTH = 32


class Scope(Protocol):
    """What substitution needs: read and write variables, and a channel for CALLERID()."""

    globals: dict[str, str]

    def lookup(self, name: str) -> str | None: ...

    def assign(self, name: str, value: str) -> None: ...


def _find_key(mapping: dict[str, str], name: str) -> str | None:
    if name in mapping:
        return name
    folded = name.casefold()
    for key in mapping:
        if key.casefold() == folded:
            return key
    return None


class VariableScope:
    """Variables of one call: built-ins from the channel, its ``variables``, then the globals.

    ``channel`` is anything with the attributes of :class:`labkit.dialplan.channel.Channel`
    (only ``variables``, ``name``, ``exten``, ``context``, ``priority`` and the caller ID are read).
    """

    def __init__(self, channel=None, globals: dict[str, str] | None = None,
                 variables: dict[str, str] | None = None, clock: Callable[[], datetime] | None = None):
        self.channel = channel
        self.clock = clock
        self.globals = globals if globals is not None else {}
        if channel is not None:
            self.variables = channel.variables
        else:
            self.variables = variables if variables is not None else {}

    def now(self) -> datetime:
        """The time IFTIME() tests: the injected clock, else the wall clock."""
        return self.clock() if self.clock is not None else datetime.now().astimezone()

    def builtin(self, name: str) -> str | None:
        ch = self.channel
        if ch is None:
            return None
        if name == "EXTEN":
            return ch.exten
        if name == "CONTEXT":
            return ch.context
        if name == "PRIORITY":
            return str(getattr(ch, "priority", 1))
        if name == "CHANNEL":
            return ch.name
        if name == "CALLERIDNUM":
            return ch.caller_id_num or ""
        if name == "CALLERIDNAME":
            return ch.caller_id_name or ""
        if name == "HANGUPCAUSE":
            return str(getattr(ch, "hangup_cause", None) or 0)
        return None

    def lookup(self, name: str) -> str | None:
        value = self.builtin(name)
        if value is not None:
            return value
        for place in (self.variables, self.globals):
            key = _find_key(place, name)
            if key is not None:
                return place[key]
        return None

    def assign(self, name: str, value: str) -> None:
        """Set a channel variable (``_NAME``/``__NAME`` inheritance prefixes are dropped)."""
        name = name.lstrip("_") if name.startswith("_") else name
        if not name:
            raise ExpressionError("empty variable name")
        key = _find_key(self.variables, name)
        if key is not None and key != name:
            del self.variables[key]
        self.variables[name] = value


# -- functions --------------------------------------------------------------------------------

@dataclass
class DialplanFunction:
    """A ``${NAME(args)}`` function; ``write`` (optional) backs ``Set(NAME(args)=value)``."""

    name: str
    read: Callable[[Scope, str], str]
    write: Callable[[Scope, str, str], None] | None = None
    summary: str = ""


FUNCTIONS: dict[str, DialplanFunction] = {}


def dialplan_function(name: str, *, summary: str = "") -> Callable:
    """Register a read function: ``@dialplan_function("LEN")``; its ``.writer`` adds the write side."""

    def register(read: Callable[[Scope, str], str]) -> Callable[[Scope, str], str]:
        fn = DialplanFunction(name.upper(), read, None, summary or (read.__doc__ or "").strip().split("\n")[0])
        FUNCTIONS[name.upper()] = fn

        def writer(write: Callable[[Scope, str, str], None]) -> Callable[[Scope, str, str], None]:
            fn.write = write
            return write

        read.writer = writer  # type: ignore[attr-defined]
        return read

    return register


def get_function(name: str) -> DialplanFunction:
    fn = FUNCTIONS.get(name.upper())
    if fn is None:
        known = ", ".join(sorted(FUNCTIONS))
        raise ExpressionError(f"unknown function '{name}' (known: {known})")
    return fn


def condition_is_true(text: str) -> bool:
    """Asterisk's ``pbx_checkcondition``: empty is false, a leading integer decides, other text is true."""
    if text == "":
        return False
    m = re.match(r"\s*([+-]?\d+)", text)
    if m:
        return int(m.group(1)) != 0
    return True


@dialplan_function("LEN", summary="length of the argument: ${LEN(${EXTEN})}")
def _len(scope: Scope, args: str) -> str:
    return str(len(args))


@dialplan_function("CALLERID", summary="caller ID: ${CALLERID(num)}, ${CALLERID(name)}, ${CALLERID(all)}")
def _callerid(scope: Scope, args: str) -> str:
    ch = getattr(scope, "channel", None)
    num = (ch.caller_id_num if ch is not None else scope.lookup("CALLERIDNUM")) or ""
    name = (ch.caller_id_name if ch is not None else scope.lookup("CALLERIDNAME")) or ""
    what = args.strip().lower()
    if what == "num":
        return num
    if what == "name":
        return name
    if what == "all":
        return f'"{name}" <{num}>' if name else f"<{num}>"
    raise ExpressionError(f"CALLERID({args}): expected num, name or all")


@_callerid.writer
def _set_callerid(scope: Scope, args: str, value: str) -> None:
    ch = getattr(scope, "channel", None)
    what = args.strip().lower()
    if ch is None:
        raise ExpressionError("CALLERID() needs a channel")
    if what == "num":
        ch.caller_id_num = value
    elif what == "name":
        ch.caller_id_name = value
    elif what == "all":
        m = re.match(r'\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*$', value)
        if m:
            ch.caller_id_name = m.group(1) if m.group(1) is not None else (m.group(2) or "")
            ch.caller_id_num = m.group(3)
        else:
            ch.caller_id_num = value.strip()
    else:
        raise ExpressionError(f"CALLERID({args}): expected num, name or all")


@dialplan_function("IF", summary="${IF(cond?true:false)}: pick by condition")
def _if(scope: Scope, args: str) -> str:
    if "?" not in args:
        raise ExpressionError(f"IF({args}): expected IF(condition?true:false)")
    cond, _, choices = args.partition("?")
    yes, _, no = choices.partition(":")
    return yes if condition_is_true(cond.strip()) else no


@dialplan_function("GLOBAL", summary="${GLOBAL(name)}: a global variable, even when a channel variable hides it")
def _global(scope: Scope, args: str) -> str:
    key = _find_key(scope.globals, args.strip())
    return scope.globals[key] if key is not None else ""


@_global.writer
def _set_global(scope: Scope, args: str, value: str) -> None:
    name = args.strip()
    key = _find_key(scope.globals, name)
    if key is not None and key != name:
        del scope.globals[key]
    scope.globals[name] = value


@dialplan_function("ISNULL", summary="1 if the argument is empty, else 0")
def _isnull(scope: Scope, args: str) -> str:
    return "1" if args == "" else "0"


@dialplan_function("EXISTS", summary="1 if the argument is not empty, else 0")
def _exists(scope: Scope, args: str) -> str:
    return "0" if args == "" else "1"


@dialplan_function("TOUPPER", summary="the argument in upper case")
def _toupper(scope: Scope, args: str) -> str:
    return args.upper()


@dialplan_function("TOLOWER", summary="the argument in lower case")
def _tolower(scope: Scope, args: str) -> str:
    return args.lower()


@dialplan_function("REGEX", summary='${REGEX("regex" text)}: 1 if the regex matches anywhere in text')
def _regex(scope: Scope, args: str) -> str:
    m = re.match(r'\s*"((?:[^"\\]|\\.)*)"\s?(.*)\Z', args, re.S)
    if not m:
        raise ExpressionError(f'REGEX({args}): expected REGEX("regex" text)')
    try:
        return "1" if re.search(m.group(1), m.group(2)) else "0"
    except re.error as exc:
        raise ExpressionError(f"REGEX: bad regular expression '{m.group(1)}' ({exc})") from None


@dialplan_function("IFTIME", summary="${IFTIME(times,weekdays,mdays,months[,tz]?true:false)}: pick by the time")
def _iftime(scope: Scope, args: str) -> str:
    from .timespec import TimeSpec

    if "?" not in args:
        raise ExpressionError(f"IFTIME({args}): expected IFTIME(timespec?true:false)")
    spec, _, choices = args.partition("?")
    yes, _, no = choices.partition(":")
    now = scope.now() if hasattr(scope, "now") else datetime.now().astimezone()
    return yes if TimeSpec.parse(spec.strip()).matches(now) else no


# -- substitution -----------------------------------------------------------------------------

def substring(value: str, offset: int, length: int | None) -> str:
    """Asterisk's substring rule for ``${VAR:offset:length}`` (see the module docstring)."""
    n = len(value)
    if offset < 0:
        offset = max(n + offset, 0)
    if offset >= n:
        return ""
    rest = value[offset:]
    if length is None:
        return rest
    if length >= 0:
        return rest[:length]
    return rest[: len(rest) + length] if len(rest) + length > 0 else ""


_OFFSETS = re.compile(r"\s*([+-]?\d+)(?::\s*([+-]?\d+))?")


def _split_offsets(ref: str) -> tuple[str, str | None]:
    depth = 0
    for i, c in enumerate(ref):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == ":" and depth == 0:
            return ref[:i], ref[i + 1 :]
    return ref, None


def split_function_call(ref: str) -> tuple[str, str] | None:
    """``'CALLERID(num)'`` -> ``('CALLERID', 'num')``; None when ``ref`` is not a call."""
    open_ = ref.find("(")
    if open_ <= 0 or not ref.endswith(")"):
        return None
    return ref[:open_], ref[open_ + 1 : -1]


def resolve(ref: str, scope: Scope) -> str:
    """Value of the inside of one ``${...}`` (inner references already substituted)."""
    name, offsets = _split_offsets(ref)
    call = split_function_call(name)
    if call is not None:
        value = get_function(call[0]).read(scope, call[1])
    else:
        if "(" in name or ")" in name:
            raise ExpressionError(f"unbalanced parentheses in ${{{ref}}}")
        value = scope.lookup(name)
        value = "" if value is None else value
    if offsets is None:
        return value
    m = _OFFSETS.match(offsets)
    if not m:  # like Asterisk's sscanf: unreadable offsets mean "the whole value"
        return value
    return substring(value, int(m.group(1)), int(m.group(2)) if m.group(2) is not None else None)


@functools.lru_cache(maxsize=4096)
def _segments(text: str) -> tuple[tuple[str | None, str], ...]:
    """``text`` cut into literal runs and top-level ``${...}`` / ``$[...]`` references (cached:
    a dialplan has few distinct argument strings, and every call runs the same ones again)."""
    segments: list[tuple[str | None, str]] = []
    i, n, literal_from = 0, len(text), 0
    while True:
        i = text.find("$", i)
        if i < 0 or i + 1 >= n:
            break
        opener = text[i + 1]
        if opener not in "{[":
            i += 1
            continue
        closer = "}" if opener == "{" else "]"
        depth, j = 1, i + 2
        while j < n and depth:
            ch = text[j]
            if ch == opener:
                depth += 1
            elif ch == closer:
                depth -= 1
            j += 1
        if depth:
            raise ExpressionError(f"missing '{closer}' after '${opener}' in '{text}'")
        if literal_from < i:
            segments.append((None, text[literal_from:i]))
        segments.append((opener, text[i + 2 : j - 1]))
        i = literal_from = j
    if literal_from < n:
        segments.append((None, text[literal_from:]))
    return tuple(segments)


def substitute(text: str, scope: Scope, _depth: int = 0) -> str:
    """Replace every ``${...}`` and ``$[...]`` in ``text``, innermost first."""
    if "$" not in text:
        return text
    if _depth > MAX_DEPTH:
        raise ExpressionError(f"references nested more than {MAX_DEPTH} deep in '{text}'")
    out: list[str] = []
    for kind, part in _segments(text):
        if kind is None:
            out.append(part)
        else:
            inner = substitute(part, scope, _depth + 1)
            out.append(resolve(inner, scope) if kind == "{" else evaluate(inner))
    return "".join(out)


_FUNCTION_CALL = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\(")


def static_problems(text: str) -> list[str]:
    """Problems visible without running: unbalanced ``${``/``$[`` and unknown function names."""
    problems: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "$" and i + 1 < n and text[i + 1] in "{[":
            opener = text[i + 1]
            closer = "}" if opener == "{" else "]"
            depth, j = 1, i + 2
            while j < n and depth:
                depth += (text[j] == opener) - (text[j] == closer)
                j += 1
            if depth:
                problems.append(f"missing '{closer}' after '${opener}' in '{text}'")
                break
        i += 1
    for name in _FUNCTION_CALL.findall(text):
        if name.upper() not in FUNCTIONS:
            problems.append(f"unknown function '{name}'")
    return problems


def assign(target: str, value: str, scope: Scope) -> None:
    """``Set(target=value)``: a variable, or a writable function such as ``CALLERID(num)``."""
    target = target.strip()
    call = split_function_call(target)
    if call is not None:
        fn = get_function(call[0])
        if fn.write is None:
            raise ExpressionError(f"function {fn.name}() cannot be written")
        fn.write(scope, call[1], value)
        return
    scope.assign(target, value)
