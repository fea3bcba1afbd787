"""Dialplan applications: ``async`` functions over a channel, found by name in a registry.

Introduced in notebook 07; later notebooks register more (IVR, VoiceMail, ConfBridge...)::

    @application("Playback", check=...)
    async def playback(ex: Execution, data: str) -> None:
        for prompt in data.split("&"):
            await ex.channel.play(prompt)

``data`` is the text between the parentheses after ``${}``/``$[]`` substitution, as in Asterisk;
:func:`split_args` splits it at top-level commas. Names are case-insensitive. An optional
``check(data) -> list[str]`` validates arguments that contain no variables at load time, so
``python -m labkit.dialplan check`` catches ``Wait(abc)`` before a call does. An application
raises :class:`ApplicationError` for arguments it cannot use; the engine then hangs up the call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from .channel import parse_dial_targets
from .errors import ApplicationError, DialplanError
from .variables import assign, condition_is_true

if TYPE_CHECKING:  # the engine imports this module; only type hints point back
    from .engine import Execution

__all__ = ["Application", "APPLICATIONS", "application", "get_application", "split_args"]

AppFunction = Callable[["Execution", str], Awaitable[None]]


@dataclass
class Application:
    name: str
    run: AppFunction
    check: Callable[[str], list[str]] | None = None
    summary: str = ""


APPLICATIONS: dict[str, Application] = {}


def application(name: str, *, check: Callable[[str], list[str]] | None = None) -> Callable[[AppFunction], AppFunction]:
    """Register an application under ``name`` (a later registration of the same name replaces it)."""

    def register(fn: AppFunction) -> AppFunction:
        summary = (fn.__doc__ or "").strip().split("\n")[0]
        APPLICATIONS[name.lower()] = Application(name, fn, check, summary)
        return fn

    return register


def get_application(name: str) -> Application:
    app = APPLICATIONS.get(name.lower())
    if app is None:
        raise ApplicationError(f"unknown application '{name}'")
    return app


def split_args(data: str) -> list[str]:
    """Split at top-level commas like Asterisk: ``()``/``[]`` nest, ``"..."`` and ``\\,`` protect.

    Quotes and backslashes are removed: ``'a,"b,c",d\\,e'`` -> ``['a', 'b,c', 'd,e']``.
    """
    args: list[str] = []
    buf: list[str] = []
    depth, quoted, i = 0, False, 0
    while i < len(data):
        c = data[i]
        if c == "\\" and i + 1 < len(data):
            buf.append(data[i + 1])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif quoted:
            buf.append(c)
        elif c in "([":
            depth += 1
            buf.append(c)
        elif c in ")]":
            depth = max(depth - 1, 0)
            buf.append(c)
        elif c == "," and depth == 0:
            args.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    args.append("".join(buf))
    return [a.strip() for a in args]


def _arg(args: list[str], i: int) -> str:
    return args[i] if i < len(args) else ""


def _seconds(text: str, what: str, *, allow_empty: bool = True) -> float | None:
    if text == "" and allow_empty:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApplicationError(f"{what}: '{text}' is not a number of seconds") from None
    if value < 0:
        raise ApplicationError(f"{what}: '{text}' is negative")
    return value


def _static_checker(fn: Callable[[str], None]) -> Callable[[str], list[str]]:
    """Turn a parse-or-raise function into a ``check`` returning error messages."""

    def check(data: str) -> list[str]:
        try:
            fn(data)
        except DialplanError as exc:
            return [exc.message]
        return []

    return check


# -- call control -----------------------------------------------------------------------------

@application("Answer", check=_static_checker(lambda d: _seconds(_arg(split_args(d), 0), "Answer delay")))
async def answer(ex: "Execution", data: str) -> None:
    """Answer the call (200 OK); an optional delay in milliseconds follows, as in Asterisk."""
    await ex.channel.answer()
    delay_ms = _seconds(_arg(split_args(data), 0), "Answer delay")
    if delay_ms:
        await ex.channel.wait(delay_ms / 1000)


def _cause(data: str) -> int:
    text = _arg(split_args(data), 0)
    if text == "":
        return 16
    if not text.isdigit() or not 0 < int(text) < 128:
        raise ApplicationError(f"Hangup cause '{text}' is not a Q.850 cause number (1-127)")
    return int(text)


@application("Hangup", check=_static_checker(_cause))
async def hangup(ex: "Execution", data: str) -> None:
    """Hang up with an optional Q.850 cause (16 normal clearing, 17 busy, 34 congestion)."""
    await ex.channel.hangup(_cause(data))
    ex.stop()


@application("Ringing")
async def ringing(ex: "Execution", data: str) -> None:
    """Tell the caller the far end is ringing (180)."""
    await ex.channel.ringing()


@application("Progress")
async def progress(ex: "Execution", data: str) -> None:
    """Open early media (183 Session Progress)."""
    await ex.channel.progress()


async def _indicate_then_hangup(ex: "Execution", data: str, cause: int, indicate) -> None:
    timeout = _seconds(_arg(split_args(data), 0), "timeout")
    await indicate()
    if timeout and not ex.channel.hung_up:
        await ex.channel.wait(timeout)
    await ex.channel.hangup(cause)
    ex.stop()


@application("Busy", check=_static_checker(lambda d: _seconds(_arg(split_args(d), 0), "timeout")))
async def busy(ex: "Execution", data: str) -> None:
    """Signal busy (486 before answer, busy tone after), then hang up with cause 17."""
    await _indicate_then_hangup(ex, data, 17, ex.channel.busy)


@application("Congestion", check=_static_checker(lambda d: _seconds(_arg(split_args(d), 0), "timeout")))
async def congestion(ex: "Execution", data: str) -> None:
    """Signal congestion (503 before answer, fast busy after), then hang up with cause 34."""
    await _indicate_then_hangup(ex, data, 34, ex.channel.congestion)


def _dial_args(data: str):
    args = split_args(data)
    targets = parse_dial_targets(_arg(args, 0))
    timeout = _seconds(_arg(args, 1), "Dial timeout")
    return targets, timeout, _arg(args, 2)


@application("Dial", check=_static_checker(_dial_args))
async def dial(ex: "Execution", data: str) -> None:
    """Call one or more targets (``PJSIP/100&PJSIP/101,20,options``); sets ``${DIALSTATUS}``.

    As in Asterisk, after an answered call ends the caller is hung up too, unless option ``g``
    asks to go on with the next priority.
    """
    targets, timeout, options = _dial_args(data)
    status = await ex.channel.dial(targets, timeout, options)
    ex.set_variable("DIALSTATUS", status)
    if status == "ANSWER" and "g" not in options and not ex.channel.hung_up:
        await ex.channel.hangup(16)


# -- media --------------------------------------------------------------------------------------

def _playback_args(data: str) -> tuple[list[str], str]:
    args = split_args(data)
    prompts = [p.strip() for p in _arg(args, 0).split("&") if p.strip()]
    if not prompts:
        raise ApplicationError("Playback() needs a prompt name, e.g. Playback(hello-world)")
    return prompts, _arg(args, 1)


@application("Playback", check=_static_checker(_playback_args))
async def playback(ex: "Execution", data: str) -> None:
    """Play prompts (``hello-world&goodbye``); answers first unless option ``noanswer``."""
    prompts, options = _playback_args(data)
    if ex.channel.state != "Up" and "noanswer" not in options:
        await ex.channel.answer()
    for prompt in prompts:
        if ex.channel.hung_up:
            break
        await ex.channel.play(prompt)
    ex.set_variable("PLAYBACKSTATUS", "FAILED" if ex.channel.hung_up else "SUCCESS")


@application("Echo")
async def echo(ex: "Execution", data: str) -> None:
    """Send the caller's audio straight back until they hang up (latency and audio test)."""
    if ex.channel.state != "Up":
        await ex.channel.answer()
    await ex.channel.echo(None)


@application("Wait", check=_static_checker(lambda d: _seconds(_arg(split_args(d), 0), "Wait", allow_empty=False)))
async def wait(ex: "Execution", data: str) -> None:
    """Wait a number of seconds (fractions allowed)."""
    await ex.channel.wait(_seconds(_arg(split_args(data), 0), "Wait", allow_empty=False) or 0.0)


def _read_args(data: str):
    args = split_args(data)
    var = _arg(args, 0)
    if not var:
        raise ApplicationError("Read() needs a variable name: Read(var[,prompt[,maxdigits[,,,timeout]]])")
    maxd = _arg(args, 2)
    if maxd and not maxd.isdigit():
        raise ApplicationError(f"Read maxdigits '{maxd}' is not a number")
    timeout = _seconds(_arg(args, 5), "Read timeout")
    return var, _arg(args, 1), int(maxd or 0), (timeout if timeout is not None else 5.0)


@application("Read", check=_static_checker(_read_args))
async def read(ex: "Execution", data: str) -> None:
    """Read DTMF digits into a variable: ``Read(choice,menu-prompt,1,,,5)``; sets READSTATUS."""
    var, prompt, max_digits, timeout = _read_args(data)
    if ex.channel.state != "Up":
        await ex.channel.answer()
    digits = await ex.channel.read_digits(max_digits, timeout, "#", prompt or None)
    ex.set_variable(var, digits)
    ex.set_variable("READSTATUS", "HANGUP" if ex.channel.hung_up else ("OK" if digits else "TIMEOUT"))


# -- flow control and variables --------------------------------------------------------------------

@application("Goto")
async def goto(ex: "Execution", data: str) -> None:
    """Jump to ``[[context,]exten,]priority`` where priority is a number or a label."""
    ex.goto(data)


def _split_gotoif(data: str) -> tuple[str, str, str]:
    if "?" not in data:
        raise ApplicationError(f"GotoIf({data}): expected GotoIf(condition?[iftrue][:iffalse])")
    cond, _, rest = data.partition("?")
    yes, _, no = rest.partition(":")
    return cond.strip(), yes.strip(), no.strip()


@application("GotoIf", check=_static_checker(_split_gotoif))
async def gotoif(ex: "Execution", data: str) -> None:
    """``GotoIf($[cond]?iftrue:iffalse)``: jump to one target or the other (empty: carry on)."""
    cond, yes, no = _split_gotoif(data)
    target = yes if condition_is_true(cond) else no
    if target:
        ex.goto(target)


def _split_gotoiftime(data: str):
    from .timespec import TimeSpec

    if "?" not in data:
        raise ApplicationError(f"GotoIfTime({data}): expected GotoIfTime(times,weekdays,mdays,months[,tz]?iftrue[:iffalse])")
    spec, _, rest = data.partition("?")
    yes, _, no = rest.partition(":")
    return TimeSpec.parse(spec.strip()), yes.strip(), no.strip()


@application("GotoIfTime", check=_static_checker(_split_gotoiftime))
async def gotoiftime(ex: "Execution", data: str) -> None:
    """``GotoIfTime(09:00-17:59,mon-fri,*,*?open:closed)``: jump by the time of day/week/year."""
    spec, yes, no = _split_gotoiftime(data)
    target = yes if spec.matches(ex.now()) else no
    if target:
        ex.goto(target)


def _split_set(data: str) -> tuple[str, str]:
    name, eq, value = data.partition("=")
    if not eq or not name.strip():
        raise ApplicationError(f"Set({data}): expected Set(name=value)")
    return name.strip(), value


@application("Set", check=_static_checker(_split_set))
async def set_(ex: "Execution", data: str) -> None:
    """``Set(name=value)``: a channel variable, or a function such as ``CALLERID(num)``/``GLOBAL(x)``."""
    name, value = _split_set(data)
    assign(name, value, ex.scope)


@application("NoOp")
async def noop(ex: "Execution", data: str) -> None:
    """Do nothing (its substituted argument shows in the trace, handy for debugging)."""


@application("Verbose")
async def verbose(ex: "Execution", data: str) -> None:
    """Write a message to the trace: ``Verbose([level,]message)``."""
    level, comma, message = data.partition(",")
    ex.log(message if comma and level.strip().isdigit() else data)


@application("Log")
async def log(ex: "Execution", data: str) -> None:
    """Write a message to the trace with a level: ``Log(NOTICE,message)``."""
    level, _, message = data.partition(",")
    ex.log(f"{level.strip().upper()}: {message}")


@application("Gosub")
async def gosub(ex: "Execution", data: str) -> None:
    """Call a subroutine at ``[[context,]exten,]priority``; ``Return()`` comes back here."""
    ex.gosub(data)


@application("Return")
async def return_(ex: "Execution", data: str) -> None:
    """Return from a Gosub to the priority after it."""
    ex.return_from_gosub()
