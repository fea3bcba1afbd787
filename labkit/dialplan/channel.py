"""The channel interface dialplan applications act on, and an in-memory simulator of it.

Introduced in notebook 07. In Asterisk's model a *channel* is one call leg; applications are
``async`` functions that drive it (``await chan.answer()``, ``await chan.play("hello-world")``).
The PBX implements :class:`Channel` over SIP and RTP; :class:`SimulatedChannel` implements it
in memory, records what the applications did, and plays scripted outcomes (what a dialled phone
does, which digits the caller presses, when the caller hangs up). It backs
``python -m labkit.dialplan route`` (a dry run), the notebook and the tests.

Contract for implementers: every method returns promptly once the channel is hung up (and does
nothing then), so ``h``-extension handlers can run on a dead channel; ``hangup`` is idempotent.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

from .errors import ApplicationError

__all__ = ["Channel", "DialTarget", "parse_dial_targets", "SimulatedChannel", "Action", "DIAL_STATUSES",
           "HANGUP_CAUSES"]

#: Values ``Channel.dial`` may return; Dial() stores them in ``${DIALSTATUS}``.
DIAL_STATUSES = ("ANSWER", "BUSY", "NOANSWER", "CANCEL", "CONGESTION", "CHANUNAVAIL")

#: Q.850 causes the engine uses (the PBX maps them to SIP responses, RFC 3398).
HANGUP_CAUSES = {1: "UNALLOCATED", 16: "NORMAL_CLEARING", 17: "USER_BUSY", 19: "NO_ANSWER",
                 21: "CALL_REJECTED", 34: "CONGESTION", 41: "TEMPORARY_FAILURE"}


@dataclass(frozen=True)
class DialTarget:
    """One ``Tech/resource`` of a Dial() argument, e.g. ``PJSIP/100`` or ``PJSIP/+15551234@trunk``.

    ``endpoint`` and ``number`` read the usual shapes: ``PJSIP/endpoint``,
    ``PJSIP/number@endpoint``, ``SIP/endpoint/number``; ``Local/exten@context[/options]`` gives
    ``exten`` and ``context`` (a call back into the dialplan).
    """

    technology: str
    resource: str

    def __str__(self) -> str:
        return f"{self.technology}/{self.resource}"

    @property
    def is_local(self) -> bool:
        return self.technology.lower() == "local"

    @property
    def endpoint(self) -> str | None:
        tech = self.technology.upper()
        if tech == "PJSIP":
            return self.resource.rpartition("@")[2] if "@" in self.resource else self.resource
        if tech in ("SIP", "IAX2"):
            return self.resource.split("/", 1)[0].rpartition("@")[2]
        return None

    @property
    def number(self) -> str | None:
        tech = self.technology.upper()
        if tech == "PJSIP":
            return self.resource.partition("@")[0] if "@" in self.resource else None
        if tech in ("SIP", "IAX2"):
            return self.resource.split("/", 1)[1] if "/" in self.resource else None
        return None

    @property
    def exten(self) -> str | None:
        return self.resource.split("/", 1)[0].partition("@")[0] if self.is_local else None

    @property
    def context(self) -> str | None:
        if not self.is_local:
            return None
        head = self.resource.split("/", 1)[0]
        return head.partition("@")[2] or "default"


def parse_dial_targets(text: str) -> list[DialTarget]:
    """``"PJSIP/100&PJSIP/101"`` -> two targets; a clear :class:`ApplicationError` otherwise."""
    if not text.strip():
        raise ApplicationError("Dial() needs at least one Tech/resource target")
    targets = []
    for part in text.split("&"):
        part = part.strip()
        tech, slash, resource = part.partition("/")
        if not slash or not tech or not resource.strip():
            raise ApplicationError(f"Dial target '{part}' is not Tech/resource (e.g. PJSIP/100)")
        if not tech.replace("_", "").isalnum():
            raise ApplicationError(f"Dial target '{part}' has a bad technology '{tech}'")
        targets.append(DialTarget(tech, resource.strip()))
    return targets


@runtime_checkable
class Channel(Protocol):
    """What dialplan applications need from a call leg (the PBX's SIP channel implements it)."""

    name: str  # e.g. "PJSIP/100-00000001"
    variables: dict[str, str]  # channel variables (${NAME}); the engine reads and writes them
    caller_id_num: str
    caller_id_name: str
    exten: str  # where the dialplan is: kept current by the engine
    context: str
    priority: int
    state: str  # "Ring" (incoming, not answered), "Ringing", "Up", "Down"
    hung_up: bool
    hangup_cause: int | None

    async def answer(self) -> None: ...  # 200 OK with SDP

    async def hangup(self, cause: int = 16) -> None: ...  # BYE, or a final error response

    async def ringing(self) -> None: ...  # 180 Ringing

    async def progress(self) -> None: ...  # 183 Session Progress (early media)

    async def busy(self) -> None: ...  # 486 Busy Here before answer, busy tone after

    async def congestion(self) -> None: ...  # 503 before answer, fast busy after

    async def play(self, prompt: str) -> None: ...  # prompt name -> file in the PBX sound dirs

    async def echo(self, seconds: float | None = None) -> None: ...  # until hangup when None

    async def wait(self, seconds: float) -> None: ...

    async def dial(self, targets: list[DialTarget], timeout: float | None, options: str) -> str: ...

    async def read_digits(self, max_digits: int = 0, timeout: float = 5.0, terminator: str = "#",
                          prompt: str | None = None) -> str: ...


@dataclass(frozen=True)
class Action:
    """Something an application did to a :class:`SimulatedChannel`, at simulated time ``time``."""

    time: float
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.time:6.1f}s  {self.name}{(' ' + self.detail) if self.detail else ''}"


_counter = itertools.count(1)


@dataclass
class SimulatedChannel:
    """An in-memory :class:`Channel` for dry runs: records actions, plays scripted outcomes.

    * ``dial_outcomes``: a DIALSTATUS for every dial (``"BUSY"``), a mapping from target
      (``"PJSIP/101"``) or endpoint (``"101"``) to status (key ``"*"`` for the rest; default ANSWER),
      or a callable ``(targets, timeout) -> status``.
    * ``digits``: what the caller will key in, consumed by ``read_digits``.
    * ``hangup_at``: simulated second at which the caller hangs up (None: never on their own;
      an ``echo()`` without a limit then ends with the caller hanging up after ``echo_seconds``).
    Time is simulated: nothing sleeps; ``clock`` advances by what each action would take.
    """

    caller_id_num: str = "100"
    caller_id_name: str = ""
    exten: str = "s"
    context: str = "default"
    name: str = ""
    dial_outcomes: object = "ANSWER"
    digits: str = ""
    hangup_at: float | None = None
    prompt_seconds: float = 1.0
    talk_seconds: float = 10.0
    echo_seconds: float = 5.0
    ring_seconds: float = 3.0
    variables: dict[str, str] = field(default_factory=dict)
    on_action: Callable[[Action], None] | None = None
    priority: int = 1
    state: str = "Ring"
    hung_up: bool = False
    hangup_cause: int | None = None
    clock: float = 0.0
    actions: list[Action] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"SIM/{self.caller_id_num or 'anonymous'}-{next(_counter):08x}"

    # -- bookkeeping -------------------------------------------------------------------------
    def _record(self, name: str, detail: str = "") -> None:
        action = Action(round(self.clock, 3), name, detail)
        self.actions.append(action)
        if self.on_action is not None:
            self.on_action(action)

    def _advance(self, seconds: float) -> bool:
        """Let ``seconds`` pass; False (and the channel hung up) if the caller hangs up meanwhile."""
        if self.hangup_at is not None and self.clock + seconds >= self.hangup_at:
            self.clock = max(self.clock, self.hangup_at)
            self._caller_hangs_up()
            return False
        self.clock += seconds
        return True

    def _caller_hangs_up(self) -> None:
        if not self.hung_up:
            self.hung_up, self.state, self.hangup_cause = True, "Down", 16
            self._record("caller hangs up")

    @property
    def action_names(self) -> list[str]:
        return [a.name for a in self.actions]

    # -- the Channel interface ---------------------------------------------------------------
    async def answer(self) -> None:
        if self.hung_up or self.state == "Up":
            return
        self.state = "Up"
        self._record("answer")

    async def hangup(self, cause: int = 16) -> None:
        if self.hung_up:
            return
        self.hung_up, self.state, self.hangup_cause = True, "Down", cause
        self._record("hangup", f"cause {cause} ({HANGUP_CAUSES.get(cause, 'OTHER')})")

    async def ringing(self) -> None:
        if not self.hung_up:
            if self.state != "Up":
                self.state = "Ringing"
            self._record("ringing")

    async def progress(self) -> None:
        if not self.hung_up:
            self._record("progress")

    async def busy(self) -> None:
        await self._indicate("busy", 17)

    async def congestion(self) -> None:
        await self._indicate("congestion", 34)

    async def _indicate(self, what: str, cause: int) -> None:
        if self.hung_up:
            return
        self._record(what)
        if self.state != "Up":  # before answer the indication is a final SIP response: call over
            self.hung_up, self.state, self.hangup_cause = True, "Down", cause

    async def play(self, prompt: str) -> None:
        if self.hung_up:
            return
        self._record("play", prompt)
        self._advance(self.prompt_seconds)

    async def echo(self, seconds: float | None = None) -> None:
        if self.hung_up:
            return
        self._record("echo", f"{seconds:g} s" if seconds is not None else "until hangup")
        if seconds is not None:
            self._advance(seconds)
        elif self._advance(self.echo_seconds if self.hangup_at is None else 1e9):
            self._caller_hangs_up()

    async def wait(self, seconds: float) -> None:
        if self.hung_up:
            return
        self._record("wait", f"{seconds:g} s")
        self._advance(seconds)

    def _outcome(self, target: DialTarget, timeout: float | None) -> str:
        spec = self.dial_outcomes
        if callable(spec):
            status = spec([target], timeout)
        elif isinstance(spec, str):
            status = spec
        elif isinstance(spec, dict):
            status = spec.get(str(target), spec.get(target.endpoint or "", spec.get(target.resource,
                              spec.get("*", "ANSWER"))))
        else:
            raise TypeError("dial_outcomes must be a status, a mapping or a callable")
        status = str(status).upper()
        if status not in DIAL_STATUSES:
            raise ValueError(f"scripted dial outcome '{status}' is not one of {', '.join(DIAL_STATUSES)}")
        return status

    async def dial(self, targets: list[DialTarget], timeout: float | None, options: str) -> str:
        if self.hung_up:
            return "CANCEL"
        joined = "&".join(str(t) for t in targets)
        self._record("dial", f"{joined} timeout={timeout:g}" if timeout is not None else joined)
        outcomes = [self._outcome(t, timeout) for t in targets]
        if "ANSWER" in outcomes:
            status, ring = "ANSWER", self.ring_seconds
        elif "NOANSWER" in outcomes:
            status, ring = "NOANSWER", (timeout if timeout is not None else 60.0)
        else:
            status = next((s for s in ("BUSY", "CONGESTION", "CHANUNAVAIL", "CANCEL") if s in outcomes), "CHANUNAVAIL")
            ring = 0.5
        if not self._advance(ring):
            self._record("dial result", "CANCEL (caller hung up while ringing)")
            return "CANCEL"
        if status == "ANSWER":
            who = targets[outcomes.index("ANSWER")]
            self._record("dial result", f"ANSWER by {who}; talking")
            self._advance(self.talk_seconds)
            if not self.hung_up:
                self._record("callee hangs up")
        else:
            self._record("dial result", status)
        return status

    async def read_digits(self, max_digits: int = 0, timeout: float = 5.0, terminator: str = "#",
                          prompt: str | None = None) -> str:
        if self.hung_up:
            return ""
        if prompt:
            await self.play(prompt)
            if self.hung_up:
                return ""
        self._record("read digits", f"up to {max_digits}" if max_digits else "until #")
        got: list[str] = []
        while self.digits and (max_digits <= 0 or len(got) < max_digits):
            d, self.digits = self.digits[0], self.digits[1:]
            if terminator and d in terminator:
                break
            got.append(d)
            if not self._advance(0.3):
                return ""
        if not got and not self._advance(timeout):
            return ""
        result = "".join(got)
        self._record("digits", result or "(timeout)")
        return result
