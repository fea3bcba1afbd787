"""Running a call through the dialplan: priorities in order, jumps, ``i`` and ``h`` extensions.

Introduced in notebook 07. This is Asterisk's ``pbx_run`` loop:

1. start at (context, exten, 1); if that extension does not exist, go to ``i`` (with
   ``${INVALID_EXTEN}`` set) when the context has one, else hang up (cause 1, unallocated);
2. find the step for the current priority (see :meth:`Dialplan.find`), substitute ``${}``/``$[]``
   in its arguments, run the application; then go on at priority + 1 unless it jumped (Goto);
3. stop when the channel has hung up; running past the last priority hangs up too
   ("auto fallthrough": busy after ``${DIALSTATUS}`` BUSY, congestion after CONGESTION or
   CHANUNAVAIL, normal clearing otherwise);
4. afterwards run the ``h`` extension of the current context, if any, on the dead channel
   (``${EXTEN}`` is ``h``) - where a PBX writes CDRs and cleans up.

The engine runs only in the context it is given and what that context includes: that is how
contexts keep callers apart. A ``max_steps`` guard stops Goto loops with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from .applications import get_application
from .channel import Channel
from .errors import ApplicationError, DialplanError, DialplanLoopError
from .model import Dialplan
from .variables import VariableScope, substitute

if TYPE_CHECKING:
    from .channel import SimulatedChannel

__all__ = ["Execution", "Step", "RunResult", "run", "simulate", "parse_goto_target"]

DEFAULT_MAX_STEPS = 10_000


@dataclass(frozen=True)
class Step:
    """One application run: where it was, what it ran with, where it is written."""

    context: str
    exten: str
    priority: int
    app: str
    data: str  # after substitution
    location: str  # file:line
    channel: str = ""

    def __str__(self) -> str:  # Asterisk's "-- Executing [100@default:1] Answer(...)" line
        return f'-- Executing [{self.exten}@{self.context}:{self.priority}] {self.app}("{self.channel}", "{self.data}")'


@dataclass
class RunResult:
    """What happened to a call: the steps, how it ended and any error."""

    steps: list[Step] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    ended_by: str = ""  # 'hangup', 'fallthrough', 'invalid', 'error'
    hangup_cause: int | None = None
    error: DialplanError | None = None

    @property
    def apps(self) -> list[str]:
        """Application names in the order they ran (handy in asserts)."""
        return [s.app for s in self.steps]


def parse_goto_target(text: str, context: str, exten: str) -> tuple[str, str, str]:
    """``[[context,]exten,]priority`` -> (context, exten, priority-or-label), missing parts kept."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or len(parts) > 3 or any(p == "" for p in parts):
        raise ApplicationError(f"bad goto target '{text}': expected [[context,]exten,]priority")
    if len(parts) == 1:
        return context, exten, parts[0]
    if len(parts) == 2:
        return context, parts[0], parts[1]
    return parts[0], parts[1], parts[2]


class Execution:
    """The state of one call in the dialplan; applications receive it as ``ex``.

    ``ex.channel`` is the :class:`Channel`; ``ex.goto(target)``, ``ex.set_variable(name, value)``,
    ``ex.substitute(text)``, ``ex.log(message)`` and ``ex.stop()`` are what applications use.
    """

    def __init__(self, plan: Dialplan, channel: Channel, *, max_steps: int = DEFAULT_MAX_STEPS,
                 on_step: Callable[[Step], None] | None = None, on_log: Callable[[str], None] | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.plan = plan
        self.channel = channel
        self.max_steps = max_steps
        self.on_step = on_step
        self.on_log = on_log
        self.clock = clock or _wall_clock
        self.scope = VariableScope(channel, plan.globals, clock=self.clock)
        self.result = RunResult()
        self._jump: tuple[str, str, int] | None = None
        self._stopped = False
        self._stack: list[tuple[str, str, int]] = []
        self._steps = 0

    # -- what applications call -------------------------------------------------------------
    def now(self) -> datetime:
        """The time for time conditions (timed includes, GotoIfTime, IFTIME): the injected clock."""
        return self.clock()

    def _lookup_time(self) -> datetime | None:
        """``now`` for extension lookups, read only when an include depends on it (reading the
        local time is a system call, and a plan without timed includes looks up every step)."""
        return self.clock() if self.plan.timed else None

    def log(self, message: str) -> None:
        self.result.log.append(message)
        if self.on_log is not None:
            self.on_log(message)

    def set_variable(self, name: str, value: str) -> None:
        self.scope.assign(name, value)

    def get_variable(self, name: str) -> str:
        value = self.scope.lookup(name)
        return "" if value is None else value

    def substitute(self, text: str) -> str:
        return substitute(text, self.scope)

    def stop(self) -> None:
        """End this dialplan run after the current application (Hangup does this)."""
        self._stopped = True

    def resolve(self, target: str) -> tuple[str, str, int]:
        """A goto target -> (context, exten, priority number); labels looked up, +N/-N relative."""
        ch = self.channel
        context, exten, prio = parse_goto_target(target, ch.context, ch.exten)
        if context not in self.plan:
            raise ApplicationError(f"goto target '{target}': no context [{context}]")
        if prio.isdigit():
            number = int(prio)
        elif prio[:1] in "+-" and prio[1:].isdigit():
            number = ch.priority + int(prio)
        else:
            found = self.plan.find_label(context, exten, prio, ch.caller_id_num, now=self._lookup_time())
            if found is None:
                raise ApplicationError(f"goto target '{target}': no label '{prio}' for {exten} in [{context}]")
            number = found.priority.number
        if number < 1:
            raise ApplicationError(f"goto target '{target}': priority must be 1 or more")
        return context, exten, number

    def goto(self, target: str) -> None:
        """Continue at ``[[context,]exten,]priority|label`` after the current application."""
        self._jump = self.resolve(target)

    def gosub(self, target: str) -> None:
        """Like goto, remembering where to come back; ``priority(arg1,arg2)`` sets ``${ARG1}``..."""
        args: list[str] = []
        if target.endswith(")") and "(" in target:
            target, _, inner = target[:-1].partition("(")
            args = inner.split(",")
        ch = self.channel
        self._stack.append((ch.context, ch.exten, ch.priority + 1))
        for i, value in enumerate(args, 1):
            self.set_variable(f"ARG{i}", value)
        self._jump = self.resolve(target)

    def return_from_gosub(self) -> None:
        if not self._stack:
            raise ApplicationError("Return() without a Gosub()")
        self._jump = self._stack.pop()

    # -- the run loop ---------------------------------------------------------------------------
    async def run(self, context: str | None = None, exten: str | None = None, priority: int = 1) -> RunResult:
        ch = self.channel
        ch.context = context if context is not None else ch.context
        ch.exten = exten if exten is not None else ch.exten
        ch.priority = priority
        if ch.context not in self.plan:
            self.log(f"no context [{ch.context}] in the dialplan")
            await self._finish("invalid", 1)
            return self.result
        if not self.plan.exists(ch.context, ch.exten, priority, ch.caller_id_num, now=self._lookup_time()):
            if not self._to_invalid_handler():
                await self._finish("invalid", 1)
                return self.result
        try:
            await self._loop(in_hangup_handler=False)
            if self.plan.exists(ch.context, "h", 1, ch.caller_id_num, now=self._lookup_time()) and not self.result.error:
                ch.exten, ch.priority = "h", 1
                self._stopped = False
                await self._loop(in_hangup_handler=True)
        finally:
            self.result.hangup_cause = ch.hangup_cause
        return self.result

    def _to_invalid_handler(self) -> bool:
        ch = self.channel
        if ch.exten != "i" and self.plan.exists(ch.context, "i", 1, ch.caller_id_num, now=self._lookup_time()):
            self.log(f"extension '{ch.exten}' does not exist in [{ch.context}]: going to 'i'")
            self.set_variable("INVALID_EXTEN", ch.exten)
            ch.exten, ch.priority = "i", 1
            return True
        self.log(f"extension '{ch.exten}' does not exist in [{ch.context}] and it has no 'i' handler")
        return False

    async def _finish(self, how: str, cause: int) -> None:
        self.result.ended_by = self.result.ended_by or how
        await self.channel.hangup(cause)
        self.result.hangup_cause = self.channel.hangup_cause

    async def _loop(self, in_hangup_handler: bool) -> None:
        ch = self.channel
        while True:
            if self._stopped:
                self.result.ended_by = self.result.ended_by or "hangup"
                return
            if ch.hung_up and not in_hangup_handler:
                self.result.ended_by = self.result.ended_by or "hangup"
                return
            found = self.plan.find(ch.context, ch.exten, ch.priority, ch.caller_id_num, now=self._lookup_time())
            if found is None:
                if in_hangup_handler:
                    return
                if not self.plan.exists(ch.context, ch.exten, 1, ch.caller_id_num, now=self._lookup_time()):
                    if self._to_invalid_handler():
                        continue
                    await self._finish("invalid", 1)
                    return
                status = self.get_variable("DIALSTATUS")
                cause = {"BUSY": 17, "CONGESTION": 34, "CHANUNAVAIL": 34}.get(status, 16)
                self.log(f"auto fallthrough after {ch.exten}@{ch.context}:{ch.priority - 1}, "
                         f"hanging up (cause {cause})")
                await self._finish("fallthrough", cause)
                return
            self._steps += 1
            if self._steps > self.max_steps:
                where = f"{ch.exten}@{ch.context}:{ch.priority} ({found.priority.location})"
                err = DialplanLoopError(f"dialplan ran more than {self.max_steps} steps, last at {where}; "
                                        "is there a Goto loop without a way out?")
                self.result.error = err
                await self._finish("error", 34)
                raise err
            step = found.priority
            try:
                data = self.substitute(step.data)
            except DialplanError as exc:
                await self._fail(exc, step.location)
                return
            record = Step(found.context, ch.exten, ch.priority, step.app, data, step.location, ch.name)
            self.result.steps.append(record)
            if self.on_step is not None:
                self.on_step(record)
            self._jump = None
            try:
                await get_application(step.app).run(self, data)
            except DialplanError as exc:
                await self._fail(exc, step.location)
                return
            if self._jump is not None:
                ch.context, ch.exten, ch.priority = self._jump
            else:
                ch.priority += 1

    async def _fail(self, exc: DialplanError, location: str) -> None:
        filename, _, line = location.rpartition(":")
        err = type(exc)(exc.message, filename or None, int(line) if line.isdigit() else None)
        self.result.error = err
        self.log(f"error: {err}")
        await self._finish("error", 16)


def _wall_clock() -> datetime:
    return datetime.now().astimezone()


async def run(plan: Dialplan, channel: Channel, context: str | None = None, exten: str | None = None, *,
              priority: int = 1, max_steps: int = DEFAULT_MAX_STEPS,
              on_step: Callable[[Step], None] | None = None, on_log: Callable[[str], None] | None = None,
              clock: Callable[[], datetime] | None = None) -> RunResult:
    """Run ``channel`` through ``plan`` from (context, exten, priority); return what happened.

    ``context``/``exten`` default to the channel's own. ``clock`` (default: the wall clock, local
    time zone) gives the time for timed includes, GotoIfTime and IFTIME. Raises
    :class:`DialplanLoopError` after ``max_steps`` applications (the channel is hung up first);
    other errors end the call and are reported in ``RunResult.error``.
    """
    ex = Execution(plan, channel, max_steps=max_steps, on_step=on_step, on_log=on_log, clock=clock)
    return await ex.run(context, exten, priority)


def simulate(plan: Dialplan, context: str, exten: str, *, max_steps: int = DEFAULT_MAX_STEPS,
             on_step: Callable[[Step], None] | None = None, at: datetime | None = None,
             **channel_options) -> tuple["SimulatedChannel", RunResult]:
    """Dry-run one call on a new :class:`SimulatedChannel` and wait for it: ``chan, result = simulate(...)``.

    Blocking on purpose, for notebooks and scripts: it works with or without a running event loop
    (inside Jupyter it runs the simulation on its own loop in a short-lived worker thread).
    ``channel_options`` go to :class:`SimulatedChannel` (``caller_id_num``, ``dial_outcomes``,
    ``digits``, ``hangup_at``...). ``at`` is the wall-clock time the call starts (default: now);
    it advances with the simulated time. Raises :class:`DialplanLoopError` like :func:`run`.
    """
    import asyncio
    import concurrent.futures

    from .channel import SimulatedChannel

    chan = SimulatedChannel(context=context, exten=exten, **channel_options)
    start = at if at is not None else _wall_clock()

    def clock() -> datetime:
        return start + timedelta(seconds=chan.clock)

    def go() -> RunResult:
        return asyncio.run(run(plan, chan, context, exten, max_steps=max_steps, on_step=on_step, clock=clock))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return chan, go()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return chan, pool.submit(go).result()
