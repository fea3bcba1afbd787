"""SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" state), sans-I/O.

Introduced in notebook 03; the INVITE machines come back in notebook 06. A transaction is a
request plus the responses to it, and the retransmissions that make UDP reliable enough. Four
state machines do the work:

* ``InviteClientTransaction``     Calling → Proceeding → Completed / Accepted → Terminated
* ``NonInviteClientTransaction``  Trying → Proceeding → Completed → Terminated
* ``InviteServerTransaction``     Proceeding → Completed → Confirmed / Accepted → Terminated
* ``NonInviteServerTransaction``  Trying → Proceeding → Completed → Terminated

Nothing here reads a clock or touches a socket (the aioquic pattern): every call takes ``now``
(seconds, any epoch) and returns a list of *outputs* — ``Send`` (bytes to put on the wire) and
events for the transaction user (TU). ``next_deadline()`` says when to call
``handle_timer(now)`` next. A test steps a fake clock and sees the exact retransmission times.

Each machine's transitions live in a table (``StateMachine.transitions``); the code moves only
along that table (a missing entry is a bug that raises), and ``to_dot`` / ``draw`` turn the
same table into the diagrams shown in the notebooks, so the picture cannot drift from the code.

``TransactionLayer`` matches incoming messages to transactions (§17.1.3, §17.2.3, with the
RFC 2543 fallback for branches without the ``z9hG4bK`` cookie) and keeps their timers in a heap.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Hashable

from .randomness import random_hex

__all__ = [
    "MAGIC_COOKIE",
    "State",
    "StateMachine",
    "TimerValues",
    "TransactionError",
    "Transaction",
    "ClientTransaction",
    "ServerTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "TransactionLayer",
    "Send",
    "RequestReceived",
    "AckReceived",
    "ResponseReceived",
    "StrayResponse",
    "TransactionTimeout",
    "TransportFailed",
    "TransactionTerminated",
    "Dropped",
    "MACHINES",
    "new_branch",
    "retransmission_times",
    "to_dot",
    "to_mermaid",
    "draw",
]

MAGIC_COOKIE = "z9hG4bK"


def new_branch() -> str:
    """A fresh RFC 3261 branch: the magic cookie plus 80 random bits."""
    return MAGIC_COOKIE + random_hex(10)


class TransactionError(RuntimeError):
    """The TU misused a transaction (a local bug), e.g. a second final response."""


# --------------------------------------------------------------------------------------------
# Timers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimerValues:
    """RFC 3261 Table 4. T1 is the RTT estimate, T2 the cap for non-INVITE retransmissions,
    T4 how long the network may hold a message. ``trying_delay`` is when the INVITE server
    transaction sends 100 Trying on its own if the TU has not answered (§17.2.1): 0.2 s by
    default, 0 for immediately, None for never. ``timer_c`` bounds the ringing of an INVITE we
    sent (§16.6 Timer C, reset by each provisional): then it is CANCELled, and 64*T1 after the
    CANCEL without a final response the transaction ends anyway (§9.1). None: ring forever."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0
    trying_delay: float | None = 0.2
    timer_c: float | None = 180.0

    def __post_init__(self):
        if not (0 < self.t1 <= self.t2) or self.t4 <= 0 or self.timer_d < 0:
            raise ValueError("need 0 < T1 <= T2, T4 > 0 and Timer D >= 0")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L and M."""
        return 64 * self.t1


# --------------------------------------------------------------------------------------------
# State machines as tables
# --------------------------------------------------------------------------------------------


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"

    # Members are singletons: hash them by identity (a C slot) rather than Enum's hash of the
    # name (a Python call), for the (state, trigger) lookups every message makes.
    __hash__ = object.__hash__


@dataclass(frozen=True)
class StateMachine:
    """A transition table: ``(state, trigger) -> (next state, what is done)``.

    ``layout`` places the states for ``draw`` (x, y in arbitrary units), like the RFC figures;
    ``bends`` curves chosen arrows (matplotlib ``arc3`` rad) around the states in their way.
    """

    name: str
    rfc_figure: str
    initial: State
    transitions: dict[tuple[State, str], tuple[State, str]]
    layout: dict[State, tuple[float, float]] = field(default_factory=dict)
    bends: dict[tuple[State, State], float] = field(default_factory=dict)
    loop_sides: dict[State, tuple[int, int]] = field(default_factory=dict)  # (±1 right/left, ±1 above/below)

    @property
    def states(self) -> list[State]:
        seen = [self.initial]
        for (a, _), (b, _) in self.transitions.items():
            for s in (a, b):
                if s not in seen:
                    seen.append(s)
        return seen

    def step(self, state: State, trigger: str) -> tuple[State, str] | None:
        return self.transitions.get((state, trigger))


S = State
_TERMINATED = State.TERMINATED
INVITE_CLIENT = StateMachine(
    "INVITE client transaction",
    "RFC 3261 Figure 5 + RFC 6026 Figure 3",
    S.CALLING,
    {
        (S.CALLING, "Timer A"): (S.CALLING, "resend INVITE"),
        (S.CALLING, "Timer B"): (S.TERMINATED, "inform TU (408)"),
        (S.CALLING, "1xx"): (S.PROCEEDING, "1xx to TU"),
        (S.CALLING, "2xx"): (S.ACCEPTED, "2xx to TU"),
        (S.CALLING, "300-699"): (S.COMPLETED, "send ACK, resp. to TU"),
        (S.CALLING, "transport error"): (S.TERMINATED, "inform TU"),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, "1xx to TU"),
        (S.PROCEEDING, "2xx"): (S.ACCEPTED, "2xx to TU"),
        (S.PROCEEDING, "300-699"): (S.COMPLETED, "send ACK, resp. to TU"),
        (S.PROCEEDING, "Timer C"): (S.PROCEEDING, "send CANCEL"),
        (S.PROCEEDING, "64·T1 after CANCEL"): (S.TERMINATED, "inform TU (408)"),
        (S.COMPLETED, "300-699"): (S.COMPLETED, "resend ACK"),
        (S.COMPLETED, "transport error"): (S.TERMINATED, "inform TU"),
        (S.COMPLETED, "Timer D"): (S.TERMINATED, ""),
        (S.ACCEPTED, "2xx"): (S.ACCEPTED, "2xx to TU"),
        (S.ACCEPTED, "Timer M"): (S.TERMINATED, ""),
    },
    {S.CALLING: (0, 3), S.PROCEEDING: (0, 2), S.COMPLETED: (-1.3, 1), S.ACCEPTED: (1.3, 1), S.TERMINATED: (0, 0)},
    {(S.CALLING, S.COMPLETED): 0.3, (S.CALLING, S.ACCEPTED): -0.3, (S.CALLING, S.TERMINATED): 1.4},
    {S.PROCEEDING: (-1, -1)},
)

NON_INVITE_CLIENT = StateMachine(
    "non-INVITE client transaction",
    "RFC 3261 Figure 6",
    S.TRYING,
    {
        (S.TRYING, "Timer E"): (S.TRYING, "resend request"),
        (S.TRYING, "Timer F"): (S.TERMINATED, "inform TU (408)"),
        (S.TRYING, "transport error"): (S.TERMINATED, "inform TU"),
        (S.TRYING, "1xx"): (S.PROCEEDING, "1xx to TU"),
        (S.TRYING, "200-699"): (S.COMPLETED, "resp. to TU"),
        (S.PROCEEDING, "Timer E"): (S.PROCEEDING, "resend request"),
        (S.PROCEEDING, "Timer F"): (S.TERMINATED, "inform TU (408)"),
        (S.PROCEEDING, "transport error"): (S.TERMINATED, "inform TU"),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, "1xx to TU"),
        (S.PROCEEDING, "200-699"): (S.COMPLETED, "resp. to TU"),
        (S.COMPLETED, "1xx"): (S.COMPLETED, "absorb"),
        (S.COMPLETED, "200-699"): (S.COMPLETED, "absorb"),
        (S.COMPLETED, "Timer K"): (S.TERMINATED, ""),
    },
    {S.TRYING: (0, 3), S.PROCEEDING: (1.3, 2), S.COMPLETED: (0, 1), S.TERMINATED: (0, 0)},
    {(S.TRYING, S.TERMINATED): 0.9, (S.PROCEEDING, S.TERMINATED): -0.3},
)

INVITE_SERVER = StateMachine(
    "INVITE server transaction",
    "RFC 3261 Figure 7 + RFC 6026 Figure 5",
    S.PROCEEDING,
    {
        (S.PROCEEDING, "INVITE"): (S.PROCEEDING, "resend 1xx"),
        (S.PROCEEDING, "200 ms"): (S.PROCEEDING, "send 100 Trying"),
        (S.PROCEEDING, "TU 1xx"): (S.PROCEEDING, "send 1xx"),
        (S.PROCEEDING, "TU 2xx"): (S.ACCEPTED, "send 2xx"),
        (S.PROCEEDING, "TU 300-699"): (S.COMPLETED, "send resp."),
        (S.PROCEEDING, "transport error"): (S.TERMINATED, "inform TU"),
        (S.COMPLETED, "INVITE"): (S.COMPLETED, "resend resp."),
        (S.COMPLETED, "Timer G"): (S.COMPLETED, "resend resp."),
        (S.COMPLETED, "ACK"): (S.CONFIRMED, ""),
        (S.COMPLETED, "Timer H"): (S.TERMINATED, "inform TU (no ACK)"),
        (S.COMPLETED, "transport error"): (S.TERMINATED, "inform TU"),
        (S.CONFIRMED, "ACK"): (S.CONFIRMED, "absorb"),
        (S.CONFIRMED, "INVITE"): (S.CONFIRMED, "absorb"),
        (S.CONFIRMED, "Timer I"): (S.TERMINATED, ""),
        (S.ACCEPTED, "INVITE"): (S.ACCEPTED, "absorb"),
        (S.ACCEPTED, "ACK"): (S.ACCEPTED, "ACK to TU, stop 2xx resends"),
        (S.ACCEPTED, "TU 2xx"): (S.ACCEPTED, "send 2xx"),
        (S.ACCEPTED, "2xx timer"): (S.ACCEPTED, "resend 2xx"),
        (S.ACCEPTED, "Timer L"): (S.TERMINATED, "no ACK? inform TU"),
    },
    {S.PROCEEDING: (0, 3), S.COMPLETED: (-1.3, 2), S.CONFIRMED: (-1.3, 1), S.ACCEPTED: (1.3, 1.5), S.TERMINATED: (0, 0)},
)

NON_INVITE_SERVER = StateMachine(
    "non-INVITE server transaction",
    "RFC 3261 Figure 8",
    S.TRYING,
    {
        (S.TRYING, "request"): (S.TRYING, "absorb"),
        (S.TRYING, "TU 1xx"): (S.PROCEEDING, "send 1xx"),
        (S.TRYING, "TU 200-699"): (S.COMPLETED, "send resp."),
        (S.TRYING, "transport error"): (S.TERMINATED, "inform TU"),
        (S.PROCEEDING, "request"): (S.PROCEEDING, "resend 1xx"),
        (S.PROCEEDING, "TU 1xx"): (S.PROCEEDING, "send 1xx"),
        (S.PROCEEDING, "TU 200-699"): (S.COMPLETED, "send resp."),
        (S.PROCEEDING, "transport error"): (S.TERMINATED, "inform TU"),
        (S.COMPLETED, "request"): (S.COMPLETED, "resend resp."),
        (S.COMPLETED, "transport error"): (S.TERMINATED, "inform TU"),
        (S.COMPLETED, "Timer J"): (S.TERMINATED, ""),
    },
    {S.TRYING: (0, 3), S.PROCEEDING: (1.3, 2), S.COMPLETED: (0, 1), S.TERMINATED: (0, 0)},
)

MACHINES: dict[str, StateMachine] = {
    "invite-client": INVITE_CLIENT,
    "non-invite-client": NON_INVITE_CLIENT,
    "invite-server": INVITE_SERVER,
    "non-invite-server": NON_INVITE_SERVER,
}


def to_dot(machine: StateMachine) -> str:
    """Graphviz DOT text for a machine, drawn from its transition table."""
    lines = [f'digraph "{machine.name}" {{', "  rankdir=TB;", '  node [shape=box, style=rounded];']
    lines.append('  start [shape=point];')
    lines.append(f'  start -> "{machine.initial.value}";')
    for (src, trigger), (dst, action) in machine.transitions.items():
        label = trigger + (f"\\n{action}" if action else "")
        lines.append(f'  "{src.value}" -> "{dst.value}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(machine: StateMachine) -> str:
    """Mermaid ``stateDiagram-v2`` text (GitHub renders it in Markdown), from the table."""
    ids = {s: s.name.title() for s in machine.states}
    lines = ["stateDiagram-v2", f"    [*] --> {ids[machine.initial]}"]
    for (src, trigger), (dst, action) in machine.transitions.items():
        label = trigger + (f" / {action}" if action else "")
        lines.append(f"    {ids[src]} --> {ids[dst]}: {label}")
    lines.append(f"    {ids[State.TERMINATED]} --> [*]")
    return "\n".join(lines) + "\n"


def draw(machine: StateMachine, ax=None):
    """Draw the machine with matplotlib from its transition table (notebooks 03 and 06).

    Arrows carry "trigger / action"; self-loops are listed beside their state ("↻"); the
    transport-error arrows, which leave almost every state, are summarised in a footnote as
    the RFC figures do. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 7))
    pos = machine.layout or {s: (0, -i) for i, s in enumerate(machine.states)}
    loops: dict[State, list[str]] = {}
    edges: dict[tuple[State, State], list[str]] = {}
    transport_errors = []
    for (src, trigger), (dst, action) in machine.transitions.items():
        label = trigger + (f" / {action}" if action else "")
        if trigger == "transport error":
            transport_errors.append(src.value)
        elif src is dst:
            loops.setdefault(src, []).append(label)
        else:
            edges.setdefault((src, dst), []).append(label)
    for state, (x, y) in pos.items():
        ax.text(x, y, state.value, ha="center", va="center", fontsize=11, fontweight="bold",
                bbox=dict(boxstyle="round,pad=0.4", fc="#e8f0fe", ec="#3367d6"), zorder=3)
        if state in loops:
            side, up = machine.loop_sides.get(state, (-1 if x < 0 else 1, 1))
            ax.text(x + side * 0.5, y + up * 0.12, "\n".join("↻ " + l for l in loops[state]),
                    ha="right" if side < 0 else "left", va="bottom" if up > 0 else "top",
                    fontsize=7.5, color="#555")
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 2.4, max(xs) + 2.4)
    ax.set_ylim(min(ys) - 0.4, max(ys) + 0.9)
    to_display, to_data = ax.transData.transform, ax.transData.inverted().transform
    for (src, dst), labels in edges.items():
        rad = machine.bends.get((src, dst), 0.0)
        ax.add_patch(FancyArrowPatch(pos[src], pos[dst], arrowstyle="-|>", mutation_scale=14,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=16, shrinkB=16,
                                     color="#333", zorder=2))
        # arc3 bends in display space: its midpoint lies rad/2 of the chord off the chord
        (x0, y0), (x1, y1) = to_display(pos[src]), to_display(pos[dst])
        mx, my = to_data(((x0 + x1) / 2 + rad * (y1 - y0) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2))
        (sx, _), (dx, _) = pos[src], pos[dst]
        left = (mx < 0 or (sx == dx and sx <= 0)) and abs(dx) >= abs(sx)  # outer side of the figure
        ax.text(mx - 0.06 if left else mx + 0.06, my, "\n".join(labels), fontsize=7.5,
                ha="right" if left else "left", va="center",
                color="#1a1a80", zorder=4, bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5))
    if transport_errors:
        ax.text(0.0, 0.0, "transport error in " + ", ".join(transport_errors) + " → Terminated (inform TU)",
                transform=ax.transAxes, fontsize=7.5, color="#555")
    ax.set_title(f"{machine.name}  ({machine.rfc_figure})")
    ax.axis("off")
    return ax


# --------------------------------------------------------------------------------------------
# Outputs: what to send, what to tell the TU
# --------------------------------------------------------------------------------------------


@dataclass
class Send:
    """Put ``message`` on the wire towards ``destination`` (opaque to this layer: whatever the
    transport needs, e.g. ``(host, port)`` or a connection)."""

    message: Any
    destination: Any


@dataclass
class RequestReceived:
    """A new request created ``transaction``. For a CANCEL, ``cancels`` is the INVITE server
    transaction it targets (§9.2), or None — then answer the CANCEL with 481."""

    transaction: "ServerTransaction"
    request: Any
    cancels: "InviteServerTransaction | None" = None


@dataclass
class AckReceived:
    """An ACK for a 2xx: end-to-end, for the dialog layer (``transaction`` set in RFC 6026
    Accepted state, None when no transaction matched)."""

    request: Any
    source: Any
    transaction: "InviteServerTransaction | None" = None


@dataclass
class ResponseReceived:
    transaction: "ClientTransaction"
    response: Any


@dataclass
class StrayResponse:
    """A response no client transaction matches (e.g. a 2xx retransmission after the
    INVITE transaction ended): the dialog layer may still want it."""

    response: Any
    source: Any


@dataclass
class TransactionTimeout:
    """Timer B or F (``response`` is a synthetic 408 for the TU), or Timer H (server: no ACK)."""

    transaction: "Transaction"
    timer: str
    response: Any = None


@dataclass
class TransportFailed:
    transaction: "Transaction"
    reason: str = ""


@dataclass
class TransactionTerminated:
    transaction: "Transaction"


@dataclass
class Dropped:
    """A message this layer threw away, and why (a structured log line, never an exception)."""

    message: Any
    reason: str


# --------------------------------------------------------------------------------------------
# Message helpers: only the labkit.sip message contract (docs/architecture.md) is used
# --------------------------------------------------------------------------------------------


def _is_request(message) -> bool:
    return hasattr(message, "method")


def _build_request(method: str, uri: str, headers: list[tuple[str, str]]):
    from .message import parse

    lines = [f"{method} {uri} SIP/2.0"] + [f"{n}: {v}" for n, v in headers] + ["Content-Length: 0", "", ""]
    return parse("\r\n".join(lines).encode("utf-8"))


def make_ack_for(request, response):
    """The ACK a client transaction sends for a non-2xx final response (§17.1.1.3): same
    Request-URI, Call-ID, From, CSeq number and top Via (same branch) as the INVITE, the To of
    the response (with its tag), the INVITE's Route set."""
    headers = [("Via", request.get("Via"))]
    headers += [("Route", r) for r in request.get_all("Route")]
    headers += [
        ("Max-Forwards", "70"),
        ("From", request.get("From")),
        ("To", response.get("To")),
        ("Call-ID", request.get("Call-ID")),
        ("CSeq", f"{request.cseq.seq} ACK"),
    ]
    return _build_request("ACK", str(request.uri), headers)


def make_cancel_for(request):
    """CANCEL for a pending request (§9.1): same Request-URI, Call-ID, To, From, CSeq number
    and top Via as the request, method CANCEL, the request's Route set."""
    headers = [("Via", request.get("Via"))]
    headers += [("Route", r) for r in request.get_all("Route")]
    headers += [
        ("Max-Forwards", "70"),
        ("From", request.get("From")),
        ("To", request.get("To")),
        ("Call-ID", request.get("Call-ID")),
        ("CSeq", f"{request.cseq.seq} CANCEL"),
    ]
    return _build_request("CANCEL", str(request.uri), headers)


# --------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------

_ids = itertools.count(1)


class _MessageSlot:
    """A transaction's message attribute that may be packed (see ``Transaction.pack``): then
    only the message's bytes are kept, under ``_<name>_raw``, and the first read parses them
    again. Bytes are one object the cyclic GC never walks; a parsed message is dozens
    (headers, URIs, params) — and RFC 3261 keeps finished transactions up to 32 s, so at
    hundreds of calls per second those would be most of the heap a full collection walks
    (benchmarks/bench_calls.py)."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot, self.raw = "_" + name, f"_{name}_raw"

    def __get__(self, tx, owner=None):
        if tx is None:
            return self
        value = getattr(tx, self.slot, None)
        if value is None:
            raw = getattr(tx, self.raw, None)
            if raw is not None:
                from .message import parse

                value = parse(raw)
                setattr(tx, self.slot, value)
                setattr(tx, self.raw, None)
        return value

    def __set__(self, tx, value) -> None:
        setattr(tx, self.slot, value)   # a message set after packing wins over the stale bytes

    def pack(self, tx) -> None:
        value = getattr(tx, self.slot, None)
        if value is not None:
            setattr(tx, self.raw, bytes(value))
            setattr(tx, self.slot, None)


class Transaction:
    """Common machinery: the current state, named timers (absolute deadlines), history."""

    machine: ClassVar[StateMachine]
    #: states where the transaction only waits out a timer and absorbs or answers
    #: retransmissions: its messages are packed to bytes there (``pack``)
    lingering: ClassVar[frozenset] = frozenset()
    request = _MessageSlot()
    last_response = _MessageSlot()

    def __init__(self, request, destination, *, reliable: bool, timers: TimerValues, now: float, key=None):
        self.id = next(_ids)
        self.request = request
        self._method = request.method
        self.destination = destination
        self.reliable = reliable
        self.timers = timers
        self.key = key
        self.state = self.machine.initial
        self.created = now
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        #: (time, from state, trigger, to state, action): what a notebook plots as a timeline.
        #: Bounded, so a peer repeating one request forever cannot grow it.
        self.history: deque[tuple[float, State | None, str, State, str]] = deque(maxlen=64)
        self.history.append((now, None, "created", self.state, ""))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} #{self.id} {self._method} {self.state.value}>"

    @property
    def method(self) -> str:
        return self._method

    def pack(self) -> None:
        """Keep the messages as bytes only (the transaction lingers: see ``lingering``). Every
        message here was sent or parsed, so its bytes are at hand; a retransmission that
        needs one parses it again. Nothing else changes."""
        for slot in self._message_slots:
            slot.pack(self)

    _message_slots: ClassVar[tuple[_MessageSlot, ...]] = (request, last_response)

    def lingers(self) -> bool:
        """Only a timer and retransmissions left to handle (then ``pack`` is safe)."""
        return self.state in self.lingering

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    # -- timers -------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must next be called (None: no timer running)."""
        return min(self._deadlines.values(), default=None)

    get_timer = next_deadline  # aioquic's name

    def _start_timer(self, name: str, duration: float, now: float) -> None:
        self._deadlines[name] = now + duration
        self._intervals[name] = duration

    def _stop_timer(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)
            self._intervals.pop(name, None)

    def handle_timer(self, now: float) -> list:
        """Fire every timer due at ``now`` (in deadline order) and return the outputs."""
        out: list = []
        deadlines = self._deadlines
        while deadlines and self.state is not _TERMINATED:
            deadline = min(deadlines.values())
            if deadline > now:
                break
            name = min(n for n, t in deadlines.items() if t == deadline)  # ties: by name, deterministic
            del deadlines[name]
            out += self._on_timer(name, deadline, now)
        return out

    def _reschedule(self, name: str, interval: float, deadline: float, now: float) -> None:
        """Next retransmission counted from the deadline (exact under a fake clock, no drift),
        but never in the past (a late wake-up does not cause a burst)."""
        nxt = deadline + interval
        self._deadlines[name] = nxt if nxt > now else now + interval
        self._intervals[name] = interval

    # -- state changes ------------------------------------------------------------------------

    def _go(self, trigger: str, now: float) -> str:
        """Follow the table; returns the action label. A missing entry is a bug in this file."""
        step = self.machine.step(self.state, trigger)
        if step is None:
            raise AssertionError(f"{self.machine.name}: no transition for {trigger!r} in {self.state.value}")
        new, action = step
        self.history.append((now, self.state, trigger, new, action))
        self.state = new
        if new is State.TERMINATED:
            self._deadlines.clear()
            self._intervals.clear()
        return action

    def _can(self, trigger: str) -> bool:
        return self.machine.step(self.state, trigger) is not None

    def transport_error(self, now: float, reason: str = "") -> list:
        """The transport could not send (ICMP unreachable, TCP reset): §17.1.4 / §17.2.4."""
        if not self._can("transport error"):
            return []
        self._go("transport error", now)
        return [TransportFailed(self, reason), TransactionTerminated(self)]

    def _on_timer(self, name: str, deadline: float, now: float) -> list:
        raise NotImplementedError


class ClientTransaction(Transaction):
    """Sends a request and retransmits it until a response arrives."""

    def __init__(self, request, destination, *, reliable=False, timers=TimerValues(), now: float = 0.0, key=None):
        super().__init__(request, destination, reliable=reliable, timers=timers, now=now, key=key)
        self.last_response = None

    def start(self, now: float) -> list:
        raise NotImplementedError

    def receive_response(self, response, now: float) -> list:
        raise NotImplementedError

    def _timeout(self, timer: str, now: float) -> list:
        self._go(f"Timer {timer}", now)
        try:
            synthetic = self.request.make_response(408, "Request Timeout")
        except Exception:  # a timeout must reach the TU even if the request is odd
            synthetic = None
        return [TransactionTimeout(self, timer, synthetic), TransactionTerminated(self)]


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 with RFC 6026: a 2xx moves to Accepted (Timer M) so 2xx
    retransmissions still reach the TU, which ACKs them itself."""

    machine = INVITE_CLIENT
    lingering = frozenset({State.COMPLETED, State.ACCEPTED})
    ack = _MessageSlot()
    _message_slots = (Transaction.request, Transaction.last_response, ack)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ack = None
        self.cancel_requested = False
        self.cancel_transaction: NonInviteClientTransaction | None = None

    def start(self, now: float) -> list:
        if not self.reliable:
            self._start_timer("A", self.timers.t1, now)
        self._start_timer("B", self.timers.timeout, now)
        return [Send(self.request, self.destination)]

    def receive_response(self, response, now: float) -> list:
        status = response.status
        trigger = "1xx" if status < 200 else "2xx" if status < 300 else "300-699"
        if not self._can(trigger):
            return [Dropped(response, f"{status} in {self.state.value} state")]
        was = self.state
        self._go(trigger, now)
        out: list = []
        if trigger == "300-699" and was is State.COMPLETED:
            return [Send(self.ack, self.destination)]  # retransmitted final: only re-ACK
        self.last_response = response
        if was is State.CALLING:
            self._stop_timer("A", "B")
        if trigger == "1xx" and self.timers.timer_c is not None and "Cancel" not in self._deadlines:
            self._start_timer("C", self.timers.timer_c, now)  # (re)started by every provisional
        elif trigger != "1xx":
            self._stop_timer("C", "Cancel")
        if trigger == "300-699":
            self.ack = make_ack_for(self.request, response)
            out.append(Send(self.ack, self.destination))
            self._start_timer("D", 0.0 if self.reliable else self.timers.timer_d, now)
        elif trigger == "2xx" and was is not State.ACCEPTED:
            self._start_timer("M", self.timers.timeout, now)
        out.append(ResponseReceived(self, response))
        return out + self.handle_timer(now)

    def _on_timer(self, name: str, deadline: float, now: float) -> list:
        if name == "A":
            self._go("Timer A", now)
            self._reschedule("A", self._intervals.get("A", self.timers.t1) * 2, deadline, now)
            return [Send(self.request, self.destination)]
        if name == "B":
            return self._timeout("B", now)
        if name == "C":  # rang too long: the layer sends the CANCEL (see TransactionLayer._track)
            self._go("Timer C", now)
            self.cancel_requested = True
            return [TransactionTimeout(self, "C")]
        if name == "Cancel":
            self._go("64·T1 after CANCEL", now)
            return [TransactionTimeout(self, "CANCEL", self.request.make_response(408, "Request Timeout")),
                    TransactionTerminated(self)]
        self._go(f"Timer {name}", now)  # D, M
        return [TransactionTerminated(self)]

    def cancel_sent(self, now: float) -> None:
        """The TU sent a CANCEL for this INVITE: wait at most 64*T1 for the final response (§9.1)."""
        if self.state is State.PROCEEDING:
            self._stop_timer("C")
            self._start_timer("Cancel", self.timers.timeout, now)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2: Timer E doubles up to T2 (and is T2 once a 1xx arrived)."""

    machine = NON_INVITE_CLIENT
    lingering = frozenset({State.COMPLETED})

    def start(self, now: float) -> list:
        if not self.reliable:
            self._start_timer("E", self.timers.t1, now)
        self._start_timer("F", self.timers.timeout, now)
        return [Send(self.request, self.destination)]

    def receive_response(self, response, now: float) -> list:
        status = response.status
        trigger = "1xx" if status < 200 else "200-699"
        if not self._can(trigger):
            return [Dropped(response, f"{status} in {self.state.value} state")]
        was = self.state
        self._go(trigger, now)
        if was is State.COMPLETED:
            return []  # absorbed retransmission
        self.last_response = response
        out: list = [ResponseReceived(self, response)]
        if trigger == "200-699":
            self._stop_timer("E", "F")
            self._start_timer("K", 0.0 if self.reliable else self.timers.t4, now)
        return out + self.handle_timer(now)

    def _on_timer(self, name: str, deadline: float, now: float) -> list:
        if name == "E":
            self._go("Timer E", now)
            if self.state is State.PROCEEDING:
                interval = self.timers.t2
            else:
                interval = min(2 * self._intervals.get("E", self.timers.t1), self.timers.t2)
            self._reschedule("E", interval, deadline, now)
            return [Send(self.request, self.destination)]
        if name == "F":
            return self._timeout("F", now)
        self._go("Timer K", now)
        return [TransactionTerminated(self)]


class ServerTransaction(Transaction):
    """Receives a request, absorbs its retransmissions, sends (and resends) the TU's responses."""

    def __init__(self, request, destination, *, reliable=False, timers=TimerValues(), now: float = 0.0, key=None):
        super().__init__(request, destination, reliable=reliable, timers=timers, now=now, key=key)
        self.last_response = None
        self.to_tag: str | None = None  # the tag of our responses, for RFC 2543 ACK matching

    def start(self, now: float) -> list:
        return []

    def receive_request(self, request, now: float) -> list:
        raise NotImplementedError

    def send_response(self, response, now: float) -> list:
        raise NotImplementedError

    def _record_response(self, response) -> None:
        self.last_response = response
        try:
            tag = response.to.tag
        except Exception:
            tag = None
        if tag:
            self.to_tag = tag


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 with RFC 6026 (2xx → Accepted, Timer L; ACKs there go to the TU).

    100 Trying: sent by the transaction ``trying_delay`` (200 ms) after the INVITE unless the
    TU has responded by then — a PBX that challenges or answers at once saves a packet, and a
    slow TU (DNS, a B-leg) still stops the caller's Timer A within 200 ms as §17.2.1 asks.

    2xx retransmission: §13.3.1.4 gives it to the UAS core; like sofia-sip's nta we do it here
    (``retransmit_2xx=True``): in Accepted the 2xx is resent at T1, 2·T1, … capped at T2, on
    any transport (the ACK is end-to-end), until the ACK arrives — the ``TransactionLayer``
    matches that ACK (a new branch) by Call-ID, CSeq, From tag and our To tag. No ACK by
    Timer L (64·T1) → ``TransactionTimeout(timer="L")``: the TU should send BYE.
    """

    machine = INVITE_SERVER
    lingering = frozenset({State.CONFIRMED})

    def __init__(self, *args, retransmit_2xx: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.cancelled = False
        self.retransmit_2xx = retransmit_2xx
        self.acked = False
        self.ack_key: Hashable | None = None  # set by the layer while it routes 2xx ACKs here

    def lingers(self) -> bool:
        """Confirmed; or Accepted once nothing is resent any more (ACKed, or the TU resends)."""
        return super().lingers() or (
            self.state is State.ACCEPTED and (self.acked or not self.retransmit_2xx))

    def start(self, now: float) -> list:
        delay = self.timers.trying_delay
        if delay is None:
            return []
        self._start_timer("Trying", delay, now)
        return self.handle_timer(now)

    def _send_trying(self, now: float) -> list:
        self._go("200 ms", now)
        trying = self.request.make_response(100, "Trying")
        self.last_response = trying
        return [Send(trying, self.destination)]

    def receive_request(self, request, now: float) -> list:
        trigger = "ACK" if request.method == "ACK" else "INVITE"
        if not self._can(trigger):
            return [Dropped(request, f"{request.method} in {self.state.value} state")]
        action = self._go(trigger, now)
        if trigger == "ACK":
            if self.state is State.CONFIRMED and action != "absorb":
                self._stop_timer("G", "H")
                self._start_timer("I", 0.0 if self.reliable else self.timers.t4, now)
                return self.handle_timer(now)
            if self.state is State.ACCEPTED:
                self.acked = True
                self._stop_timer("2xx")
                return [AckReceived(request, self.destination, self)]
            return []
        if action.startswith("resend") and self.last_response is not None:
            return [Send(self.last_response, self.destination)]
        return []

    def send_response(self, response, now: float) -> list:
        status = response.status
        trigger = "TU 1xx" if status < 200 else "TU 2xx" if status < 300 else "TU 300-699"
        if not self._can(trigger):
            raise TransactionError(f"cannot send {status} in {self.state.value} state")
        was = self.state
        self._go(trigger, now)
        self._stop_timer("Trying")
        self._record_response(response)
        if trigger == "TU 2xx" and was is State.PROCEEDING:
            self._start_timer("L", self.timers.timeout, now)
            if self.retransmit_2xx:
                self._start_timer("2xx", self.timers.t1, now)
        elif trigger == "TU 300-699":
            if not self.reliable:
                self._start_timer("G", self.timers.t1, now)
            self._start_timer("H", self.timers.timeout, now)
        return [Send(response, self.destination)] + self.handle_timer(now)

    def _on_timer(self, name: str, deadline: float, now: float) -> list:
        if name == "Trying":
            return self._send_trying(now)
        if name == "G":
            self._go("Timer G", now)
            self._reschedule("G", min(2 * self._intervals.get("G", self.timers.t1), self.timers.t2), deadline, now)
            return [Send(self.last_response, self.destination)]
        if name == "H":
            self._go("Timer H", now)
            return [TransactionTimeout(self, "H"), TransactionTerminated(self)]
        if name == "2xx":
            self._go("2xx timer", now)
            self._reschedule("2xx", min(2 * self._intervals.get("2xx", self.timers.t1), self.timers.t2),
                             deadline, now)
            return [Send(self.last_response, self.destination)]
        self._go(f"Timer {name}", now)  # I, L
        if name == "L" and self.retransmit_2xx and not self.acked:
            return [TransactionTimeout(self, "L"), TransactionTerminated(self)]
        return [TransactionTerminated(self)]


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2. Never sends 100 Trying on its own (RFC 4320: a non-INVITE 100 only
    helps over long timers, and the TU decides)."""

    machine = NON_INVITE_SERVER
    lingering = frozenset({State.COMPLETED})

    def receive_request(self, request, now: float) -> list:
        if not self._can("request"):
            return [Dropped(request, f"{request.method} in {self.state.value} state")]
        action = self._go("request", now)
        if action.startswith("resend") and self.last_response is not None:
            return [Send(self.last_response, self.destination)]
        return []

    def send_response(self, response, now: float) -> list:
        status = response.status
        trigger = "TU 1xx" if status < 200 else "TU 200-699"
        if not self._can(trigger):
            raise TransactionError(f"cannot send {status} in {self.state.value} state")
        self._go(trigger, now)
        self._record_response(response)
        if trigger == "TU 200-699":
            self._start_timer("J", 0.0 if self.reliable else self.timers.timeout, now)
        return [Send(response, self.destination)] + self.handle_timer(now)

    def _on_timer(self, name: str, deadline: float, now: float) -> list:
        self._go("Timer J", now)
        return [TransactionTerminated(self)]


def retransmission_times(method: str = "INVITE", *, reliable: bool = False,
                         timers: TimerValues = TimerValues()) -> tuple[list[float], float, str]:
    """What a client transaction does when nobody ever answers: the times it sends the request
    (first at 0), when it gives up, and which timer ended it. For plots and exercises in
    notebook 03 (try another T1, or ``reliable=True``)."""
    request = _build_request(method, "sip:nobody@invalid", [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch={new_branch()}"),
        ("Max-Forwards", "70"), ("From", "<sip:me@invalid>;tag=1"), ("To", "<sip:nobody@invalid>"),
        ("Call-ID", "schedule"), ("CSeq", f"1 {method}"),
    ])
    cls = InviteClientTransaction if method == "INVITE" else NonInviteClientTransaction
    tx = cls(request, None, reliable=reliable, timers=timers, now=0.0)
    sends = [0.0 for o in tx.start(0.0) if isinstance(o, Send)]
    while (deadline := tx.next_deadline()) is not None:
        for o in tx.handle_timer(deadline):
            if isinstance(o, Send):
                sends.append(deadline)
            elif isinstance(o, TransactionTimeout):
                return sends, deadline, o.timer
    raise AssertionError("a client transaction without answers must time out")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# The layer: matching and timers for many transactions
# --------------------------------------------------------------------------------------------


def _sent_by(via) -> tuple[str, int | None]:
    return (via.host.lower(), via.port)


def _ack_key(call_id: str, seq: int, from_tag: str | None, to_tag: str | None) -> Hashable:
    """What an ACK for a 2xx shares with the INVITE (§13.2.2.4, §17.2.3 does not apply: new branch)."""
    return (call_id, seq, from_tag, to_tag)


def client_key(message) -> Hashable:
    """§17.1.3: top Via branch + CSeq method (a response matches the request that made it)."""
    return (message.via[0].branch, message.cseq.method)


def server_key(request) -> Hashable:
    """§17.2.3: branch + sent-by + method, ACK counting as INVITE. Without the magic cookie,
    the RFC 2543 rule: Request-URI, From tag, Call-ID, CSeq number, top Via (To tag checked
    separately, since an ACK carries the tag of our response)."""
    via = request.via[0]
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return ("3261", branch, _sent_by(via), method)
    return ("2543", str(request.uri), request.from_.tag, request.call_id, request.cseq.seq,
            _sent_by(via), branch, method)


class TransactionLayer:
    """All transactions of one endpoint: create, match, time out (PJSIP's ``pjsip_tsx`` layer).

    ``receive(message, source, now, reliable)`` for everything from the transport;
    ``send_request`` / ``respond`` / ``cancel`` for the TU; ``handle_timer(now)`` whenever
    ``next_deadline()`` passes. Every call returns outputs (``Send`` and TU events).
    """

    def __init__(self, timers: TimerValues = TimerValues(), *, retransmit_2xx: bool = True,
                 max_server_transactions: int | None = 50_000):
        self.timers = timers
        self.retransmit_2xx = retransmit_2xx
        #: overload guard: beyond this many server transactions new requests get a stateless
        #: 503 with Retry-After (each one lives up to 64*T1, so a flood would grow memory)
        self.max_server_transactions = max_server_transactions
        self.client: dict[Hashable, ClientTransaction] = {}
        self.server: dict[Hashable, ServerTransaction] = {}
        #: INVITE server transactions in Accepted, by the dialog-ish key an ACK for their 2xx carries
        self.awaiting_ack: dict[Hashable, InviteServerTransaction] = {}
        self._heap: list[tuple[float, int, Transaction]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self.client) + len(self.server)

    # -- bookkeeping --------------------------------------------------------------------------

    def _track(self, tx: Transaction, outputs: list, now: float) -> list:
        if tx.state is _TERMINATED:
            self._forget(tx)
        else:
            deadline = tx.next_deadline()
            if deadline is not None:
                heapq.heappush(self._heap, (deadline, next(self._seq), tx))
            if tx.lingers():
                tx.pack()
        if isinstance(tx, InviteClientTransaction) and tx.cancel_requested and tx.cancel_transaction is None \
                and tx.state is State.PROCEEDING:
            outputs = outputs + self._send_cancel(tx, now)
        return outputs

    def _forget(self, tx: Transaction) -> None:
        table = self.client if isinstance(tx, ClientTransaction) else self.server
        if table.get(tx.key) is tx:
            del table[tx.key]
        ack_key = getattr(tx, "ack_key", None)
        if ack_key is not None and self.awaiting_ack.get(ack_key) is tx:
            del self.awaiting_ack[ack_key]

    def next_deadline(self) -> float | None:
        while self._heap:
            deadline, _, tx = self._heap[0]
            if tx.state is _TERMINATED or tx.next_deadline() != deadline:
                heapq.heappop(self._heap)  # stale entry
                continue
            return deadline
        return None

    get_timer = next_deadline

    def handle_timer(self, now: float) -> list:
        out: list = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, tx = heapq.heappop(self._heap)
            if tx.state is _TERMINATED or tx.next_deadline() != deadline:
                continue
            out += self._track(tx, tx.handle_timer(now), now)
        return out

    # -- TU → network -------------------------------------------------------------------------

    def send_request(self, request, destination, now: float, *, reliable: bool = False):
        """Start a client transaction for ``request`` (its top Via must carry a unique branch;
        see ``new_branch``). Returns ``(transaction, outputs)``."""
        if request.method == "ACK":
            raise TransactionError("ACK is not sent in a transaction; send it directly")
        key = client_key(request)
        if key in self.client:
            raise TransactionError(f"a client transaction with branch {key[0]!r} already exists")
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        tx = cls(request, destination, reliable=reliable, timers=self.timers, now=now, key=key)
        self.client[key] = tx
        return tx, self._track(tx, tx.start(now), now)

    def respond(self, transaction: ServerTransaction, response, now: float) -> list:
        outputs = transaction.send_response(response, now)
        if isinstance(transaction, InviteServerTransaction) and transaction.state is State.ACCEPTED \
                and transaction.ack_key is None and transaction.retransmit_2xx:
            key = _ack_key(transaction.request.call_id, transaction.request.cseq.seq,
                           transaction.request.from_.tag, response.to.tag)
            transaction.ack_key = key
            self.awaiting_ack[key] = transaction
        return self._track(transaction, outputs, now)

    def transport_error(self, transaction: Transaction, now: float, reason: str = "") -> list:
        return self._track(transaction, transaction.transport_error(now, reason), now)

    def cancel(self, transaction: InviteClientTransaction, now: float) -> list:
        """CANCEL a pending INVITE (§9.1). Before any provisional the CANCEL waits for the first
        1xx (a CANCEL may overtake its INVITE); after a final response it is too late."""
        if transaction.state is State.CALLING:
            transaction.cancel_requested = True
            return []
        if transaction.state is State.PROCEEDING and transaction.cancel_transaction is None:
            transaction.cancel_requested = True
            return self._send_cancel(transaction, now)
        return []

    def _send_cancel(self, invite_tx: InviteClientTransaction, now: float) -> list:
        cancel = make_cancel_for(invite_tx.request)
        tx, out = self.send_request(cancel, invite_tx.destination, now, reliable=invite_tx.reliable)
        invite_tx.cancel_transaction = tx
        invite_tx.cancel_sent(now)
        deadline = invite_tx.next_deadline()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._seq), invite_tx))
        return out

    # -- network → TU -------------------------------------------------------------------------

    def receive(self, message, source, now: float, *, reliable: bool = False) -> list:
        """Match an incoming message: to a transaction, or a new server transaction, or the TU."""
        try:
            if not message.via:
                return [Dropped(message, "no Via header")]
            if _is_request(message):
                return self._receive_request(message, source, now, reliable)
            return self._receive_response(message, source, now)
        except (ValueError, AttributeError, TypeError) as e:  # headers the matcher needs were unreadable
            return [Dropped(message, f"cannot match transaction: {e}")]

    def _receive_response(self, response, source, now: float) -> list:
        tx = self.client.get(client_key(response))
        if tx is None:
            return [StrayResponse(response, source)]
        return self._track(tx, tx.receive_response(response, now), now)

    def _find_server(self, request) -> ServerTransaction | None:
        tx = self.server.get(server_key(request))
        if tx is None or tx.key[0] == "3261":
            return tx
        tag = request.to.tag  # RFC 2543: the To tag must be the request's, or ours for an ACK
        if tag == tx.request.to.tag or (request.method == "ACK" and tag == tx.to_tag):
            return tx
        return None

    def _receive_request(self, request, source, now: float, reliable: bool) -> list:
        tx = self._find_server(request)
        if tx is not None:
            return self._track(tx, tx.receive_request(request, now), now)
        if request.method == "ACK":
            accepted = self.awaiting_ack.get(
                _ack_key(request.call_id, request.cseq.seq, request.from_.tag, request.to.tag))
            if accepted is not None and not accepted.terminated:
                out = accepted.receive_request(request, now)
                for o in out:
                    if isinstance(o, AckReceived):
                        o.source = source
                return self._track(accepted, out, now)
            return [AckReceived(request, source, None)]
        if self.max_server_transactions is not None and len(self.server) >= self.max_server_transactions:
            busy = request.make_response(503, "Service Unavailable")
            busy.set("Retry-After", "5")
            return [Send(busy, source), Dropped(request, "overload: too many server transactions")]
        key = server_key(request)
        cls = InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        if cls is InviteServerTransaction:
            tx = cls(request, source, reliable=reliable, timers=self.timers, now=now, key=key,
                     retransmit_2xx=self.retransmit_2xx)
        else:
            tx = cls(request, source, reliable=reliable, timers=self.timers, now=now, key=key)
        self.server[key] = tx
        cancels = None
        if request.method == "CANCEL":
            target = self.server.get(key[:-1] + ("INVITE",))
            if isinstance(target, InviteServerTransaction) and not target.terminated:
                cancels = target
        out = [RequestReceived(tx, request, cancels)]
        return self._track(tx, out + tx.start(now), now)

    def answer_cancel(self, cancel_tx: ServerTransaction, invite_tx: InviteServerTransaction | None,
                      now: float, to_tag: str | None = None) -> list:
        """The usual UAS reaction to CANCEL (§9.2): 481 if no INVITE transaction matched;
        otherwise 200 to the CANCEL, plus 487 to the INVITE if it has no final response yet
        (after one, the CANCEL changes nothing). ``to_tag`` defaults to the tag already used."""
        if invite_tx is None or invite_tx.terminated:
            return self.respond(cancel_tx, cancel_tx.request.make_response(481), now)
        tag = to_tag or invite_tx.to_tag or random_hex(4)
        out = self.respond(cancel_tx, cancel_tx.request.make_response(200, to_tag=tag), now)
        if invite_tx.state is not State.PROCEEDING:
            return out
        invite_tx.cancelled = True
        return out + self.respond(invite_tx, invite_tx.request.make_response(487, "Request Terminated", to_tag=tag), now)
