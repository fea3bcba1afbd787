"""SIP dialogs (RFC 3261 §12): the state two user agents share for the length of a call.

Introduced in notebook 06.  A transaction is one request and its responses; a *dialog* ties
the transactions of one call together.  It is identified by the Call-ID and the two tags
(From tag of the caller, To tag of the callee) and remembers what every later request of the
call needs: where to send it (the *remote target*, from the peer's Contact), through which
proxies (the *route set*, from Record-Route), and the CSeq numbers in each direction.

Like the transaction layer this module is sans-I/O: it only reads and builds messages.

    dialog = Dialog.from_uac(invite, response)     # caller: a 1xx with To tag or a 2xx arrived
    dialog = Dialog.from_uas(invite, response)     # callee: it sends a 1xx with To tag or a 2xx
    ack = dialog.create_ack(invite.cseq.seq)       # the ACK for a 2xx (new branch, same CSeq)
    bye = dialog.create_request("BYE")             # any in-dialog request (§12.2.1.1)
    reply = dialog.receive_request(request)        # None, or the 500 to send (§12.2.2)
    dialog.receive_response(response)              # a 2xx confirms, target refreshes, 481 ends

A caller's INVITE may fork: several callees answer with different To tags, and each makes its
own early dialog.  ``DialogSet`` collects the dialogs of one INVITE, ``DialogTable`` finds the
dialog of any incoming message.  The first request, outside any dialog, is built by
``labkit.sip.uac.make_request``.
"""
from __future__ import annotations

import enum
from operator import is_ as _is
from typing import Iterable, Iterator, NamedTuple

from .headers import NameAddr, Via, header_key
from .message import Request, Response
from .randomness import random_below
from .transaction import new_branch
from .uri import URI, ParseError, SipURI

__all__ = [
    "Dialog", "DialogId", "DialogState", "DialogSet", "DialogTable", "DialogError",
    "TRANSITIONS", "to_mermaid", "draw",
    "DIALOG_CREATING_METHODS", "TARGET_REFRESH_METHODS",
]

MAX_FORWARDS = 70
#: Requests that create a dialog: INVITE (RFC 3261), SUBSCRIBE and REFER (RFC 6665).
DIALOG_CREATING_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
#: Requests whose Contact replaces the remote target (RFC 3261 §12.2, RFC 3311, RFC 6665).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
#: Headers that the dialog writes itself; ``create_request(headers=...)`` may not set them.
_DIALOG_HEADERS = frozenset({"via", "from", "to", "call-id", "cseq", "route", "content-length"})
#: What ``resend`` does not copy from the request it repeats: written again, or answered anew.
_NOT_RESENT = _DIALOG_HEADERS | {"contact", "max-forwards", "content-type", "authorization",
                                 "proxy-authorization"}
_CREDENTIALS = ("Authorization", "Proxy-Authorization")
_MAX_CSEQ = 2 ** 32 - 1


class DialogError(RuntimeError):
    """The caller misused a dialog (a local bug), e.g. a request on a terminated dialog."""


class DialogId(NamedTuple):
    """Call-ID, local tag, remote tag (§12): the same call has mirror ids at its two ends."""

    call_id: str
    local_tag: str
    remote_tag: str | None


class DialogState(enum.Enum):
    EARLY = "early"           # created by a 1xx with a To tag: the callee is ringing
    CONFIRMED = "confirmed"   # created or confirmed by a 2xx
    TERMINATED = "terminated"


#: (state, event) -> next state.  The events are what the methods below see; the notebook
#: draws its diagram from this table, so the diagram and the code cannot disagree.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("init", "1xx with To tag"): "early",
    ("init", "2xx"): "confirmed",
    ("early", "1xx"): "early",
    ("early", "2xx"): "confirmed",
    ("early", "3xx-6xx to the INVITE"): "terminated",
    ("early", "INVITE ended without 2xx"): "terminated",
    ("early", "BYE (caller)"): "terminated",
    ("early", "481 / 408 to a request"): "terminated",
    ("confirmed", "target refresh (re-INVITE, UPDATE)"): "confirmed",
    ("confirmed", "BYE"): "terminated",
    ("confirmed", "481 / 408 to a request"): "terminated",
    ("early", "terminate()"): "terminated",
    ("confirmed", "terminate()"): "terminated",
}


def to_mermaid() -> str:
    """The dialog state machine as a Mermaid state diagram (notebook 06 renders it)."""
    lines = ["stateDiagram-v2"]
    for (state, event), target in TRANSITIONS.items():
        source = "[*]" if state == "init" else state
        lines.append(f"    {source} --> {target}: {event}")
    lines.append("    terminated --> [*]")
    return "\n".join(lines)


_LAYOUT = {"init": (0.0, 2.0), "early": (-1.2, 1.0), "confirmed": (1.2, 1.0),
           "terminated": (0.0, 0.0)}


def draw(ax=None):
    """Draw the dialog state machine with matplotlib from ``TRANSITIONS`` (notebook 06):
    one arrow per pair of states, labelled with every event that takes it; self-loops are
    listed beside their state.  Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    edges: dict[tuple[str, str], list[str]] = {}
    for (state, event), target in TRANSITIONS.items():
        edges.setdefault((state, target), []).append(event)
    for (state, target), events in edges.items():
        (x0, y0), (x1, y1) = _LAYOUT[state], _LAYOUT[target]
        label = "\n".join(events)
        if state == target:
            ax.text(x0, y0 + 0.22, "↻ " + label, ha="center", va="bottom", fontsize=8)
            continue
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#555", shrinkA=22, shrinkB=22))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, label, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none"))
    for state, (x, y) in _LAYOUT.items():
        ax.text(x, y, "start" if state == "init" else state, ha="center", va="center",
                fontsize=11, fontweight="bold", zorder=3,
                bbox=dict(boxstyle="round,pad=0.4", fc="#e8f0fe", ec="#3367d6"))
    ax.set_xlim(-2.4, 2.4)
    ax.set_ylim(-0.4, 2.6)
    ax.set_axis_off()
    ax.set_title("SIP dialog states (RFC 3261 §12)")
    return ax


# ---------------------------------------------------------------------------------------------
# Building requests


def _as_name_addr(value: NameAddr | URI | str, where: str) -> NameAddr:
    if isinstance(value, NameAddr):
        return value
    if isinstance(value, str):   # '"Name" <sip:a@b>;p=1' or 'sip:a@b;tag=1' (tag in the header)
        return NameAddr.parse(value.strip(), where)
    return NameAddr(value)


def _as_via(value: Via | str) -> Via:
    """A Via template: transport and sent-by, the ``rport`` flag kept, branch and
    received dropped (each request gets a new branch)."""
    via = Via.parse(value) if isinstance(value, str) else value
    params = {"rport": None} if via.has_rport else {}
    return Via(via.transport, via.host, via.port, params)


def _via_from_contact(contact: NameAddr) -> Via:
    """Where requests leave from when the caller of ``from_uas`` gives no ``local_via``:
    the host, port and transport of our own Contact."""
    uri = contact.uri
    if not isinstance(uri, SipURI):
        raise DialogError(f"cannot derive a Via from Contact {contact}; pass local_via=")
    transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
    return Via(transport.upper(), uri.host, uri.port, {"rport": None})


def _request_uri_of(uri: URI) -> URI:
    """A Route URI turned into a Request-URI: the ``method`` parameter and URI headers are
    not allowed there (RFC 3261 §19.1.1, table 1)."""
    if isinstance(uri, SipURI) and ("method" in uri.params or uri.headers):
        return uri.replace(params=uri.params.without("method"), headers={})
    return uri


def _route(remote_target: URI, route_set: list[NameAddr]) -> tuple[URI, list[str]]:
    """Request-URI and Route values for a request (RFC 3261 §12.2.1.1, §8.1.2).

    Loose router first (``;lr``): Request-URI = remote target, Route = the route set.
    Strict router first: Request-URI = the first route's URI, Route = the rest of the route
    set followed by the remote target (so the strict router can put it back)."""
    if not route_set:
        return remote_target, []
    first = route_set[0]
    if isinstance(first.uri, SipURI) and "lr" in first.uri.params:
        return remote_target, [str(r) for r in route_set]
    return (_request_uri_of(first.uri),
            [str(r) for r in route_set[1:]] + [f"<{remote_target}>"])


def _finish(method: str, request_uri: URI, lines: list[tuple[str, object]],
            headers: Iterable[tuple[str, object]], body: bytes | str,
            content_type: str | None) -> Request:
    """Add the caller's extra headers (Contact / Max-Forwards replace ours, From, To, Via …
    are the dialog's own and refused), Content-Type and the body; build the Request."""
    for name, value in headers:
        key = name.lower()
        if key in _DIALOG_HEADERS or (len(key) == 1 and key in "fticvl"):
            raise DialogError(f"{name} is written by the dialog; it cannot be given in headers=")
        if key in ("contact", "m", "max-forwards"):
            canonical = "Contact" if key in ("contact", "m") else "Max-Forwards"
            lines = [(n, v) for n, v in lines if n != canonical]
            lines.append((canonical, value))
        else:
            lines.append((name, value))
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    if body or content_type:
        lines.append(("Content-Type", content_type or "application/sdp"))
    lines.append(("Content-Length", len(body)))
    return Request(method, request_uri, lines, bytes(body))


def _tag_or_none(name_addr: NameAddr) -> str | None:
    return name_addr.tag or None


# ---------------------------------------------------------------------------------------------
# The dialog


class Dialog:
    """One dialog (RFC 3261 §12), seen from one end.

    ``role`` is 'uac' (we sent the INVITE) or 'uas'.  ``local`` and ``remote`` are the From/To
    parties without tags, ``remote_target`` the URI requests go to, ``route_set`` the list of
    Route values (NameAddr), ``local_seq`` the CSeq of the last request we sent (None before
    the first), ``remote_seq`` that of the last request received.  ``local_contact`` is the
    Contact we put in requests; ``local_via`` the Via (transport + sent-by) they leave with.
    ``invite_seq`` is the CSeq number of the INVITE that created the dialog.
    """

    def __init__(self, *, role: str, call_id: str, local_tag: str, remote_tag: str | None,
                 local: NameAddr, remote: NameAddr, remote_target: URI,
                 route_set: list[NameAddr], local_seq: int | None, remote_seq: int | None,
                 local_contact: NameAddr, local_via: Via, state: DialogState,
                 invite_seq: int, method: str = "INVITE", secure: bool = False):
        self.role = role
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local = local
        self.remote = remote
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_contact = local_contact
        self.local_via = local_via
        self.state = state
        self.invite_seq = invite_seq
        self.method = method
        self.secure = secure
        #: CSeq numbers of the INVITE transactions in progress, ours and the peer's: only one
        #: at a time per dialog (§14.1, §14.2)
        self.outgoing_invite: int | None = None
        self.incoming_invite: int | None = None
        #: RSeq of the last reliable provisional response we PRACKed (RFC 3262)
        self.remote_rseq: int | None = None
        #: where the callee's own CSeq starts (None: random, chosen on its first request)
        self.first_local_seq: int | None = None
        #: the last ACK built by create_ack, to send again when the 2xx is retransmitted
        self.ack: Request | None = None
        #: (state, event, new state) for each transition, for ladder diagrams and tests
        self.history: list[tuple[str, str, str]] = []
        #: From, To and Via text for the requests, with what they were made from (_party_texts)
        self._texts = None

    # creation --------------------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: Request, response: Response, *,
                 local_via: Via | str | None = None) -> "Dialog":
        """The caller's dialog, from its INVITE and a 1xx-with-To-tag or 2xx response (§12.1.2):
        route set = Record-Route of the response *reversed*, remote target = its Contact,
        local CSeq = the INVITE's."""
        status = _check_creating(request, response)
        remote_tag = _tag_or_none(response.to)
        if remote_tag is None:
            raise ParseError(f"a {status} without a To tag cannot create a dialog "
                             f"(RFC 3261 §12.1.2)")
        local_tag = _tag_or_none(request.from_)
        if local_tag is None:
            raise DialogError("the request we sent has no From tag")
        contacts = request.contact
        if not contacts or contacts[0].is_star:
            raise DialogError(f"the {request.method} we sent needs a Contact to make a dialog")
        state = DialogState.CONFIRMED if status >= 200 else DialogState.EARLY
        dialog = cls(
            role="uac", call_id=request.call_id, local_tag=local_tag, remote_tag=remote_tag,
            local=request.from_.replace(params=request.from_.params.without("tag")),
            remote=response.to.replace(params=response.to.params.without("tag")),
            remote_target=_remote_target(response, status),
            route_set=list(reversed(response.record_route)),
            local_seq=request.cseq.seq, remote_seq=None, local_contact=contacts[0],
            local_via=_as_via(local_via if local_via is not None else request.via[0]),
            state=state, invite_seq=request.cseq.seq, method=request.method,
            secure=isinstance(request.uri, SipURI) and request.uri.scheme == "sips")
        dialog.history.append(("init", _event_of(status), state.value))
        if state is DialogState.EARLY:
            dialog.outgoing_invite = request.cseq.seq
        return dialog

    @classmethod
    def from_uas(cls, request: Request, response: Response, *,
                 contact: NameAddr | URI | str | None = None,
                 local_via: Via | str | None = None, local_seq: int | None = None) -> "Dialog":
        """The callee's dialog, from the INVITE and the 1xx-with-To-tag or 2xx it sends
        (§12.1.1): route set = Record-Route of the request *in order*, remote target = its
        Contact, remote CSeq = its CSeq.  Our Contact is the response's (or ``contact``);
        requests leave with ``local_via`` (default: the Contact's host, port, transport).
        ``local_seq`` is where our own CSeq starts (random below 2**31 by default, §8.1.1.5)."""
        status = _check_creating(request, response)
        local_tag = _tag_or_none(response.to)
        if local_tag is None:
            raise DialogError(f"the {status} needs a To tag to create a dialog: "
                              f"use request.make_response(status, to_tag=...) (labkit.sip.endpoint.new_tag())")
        if contact is not None:
            local_contact = _as_name_addr(contact, "Contact")
        elif response.contact and not response.contact[0].is_star:
            local_contact = response.contact[0]
        else:
            raise DialogError(f"the {status} needs a Contact (or pass contact=) to create a dialog")
        secure = (isinstance(request.uri, SipURI) and request.uri.scheme == "sips"
                  and request.via[0].transport in ("TLS", "WSS"))
        state = DialogState.CONFIRMED if status >= 200 else DialogState.EARLY
        dialog = cls(
            role="uas", call_id=request.call_id, local_tag=local_tag,
            remote_tag=_tag_or_none(request.from_),
            local=request.to.replace(params=request.to.params.without("tag")),
            remote=request.from_.replace(params=request.from_.params.without("tag")),
            remote_target=_remote_target(request, None), route_set=list(request.record_route),
            local_seq=None, remote_seq=request.cseq.seq, local_contact=local_contact,
            local_via=_as_via(local_via) if local_via is not None
            else _via_from_contact(local_contact),
            state=state, invite_seq=request.cseq.seq, method=request.method, secure=secure)
        dialog.first_local_seq = local_seq
        dialog.history.append(("init", _event_of(status), state.value))
        if state is DialogState.EARLY:
            dialog.incoming_invite = request.cseq.seq
        return dialog

    # identity --------------------------------------------------------------------------------
    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @property
    def early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def confirmed(self) -> bool:
        return self.state is DialogState.CONFIRMED

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def matches(self, message: Request | Response) -> bool:
        """Does ``message`` belong to this dialog?  A request we receive carries our tag in
        To and the peer's in From; a response to our request carries them the other way."""
        try:
            if message.call_id != self.call_id:
                return False
            if isinstance(message, Request):
                return (_tag_or_none(message.to) == self.local_tag
                        and _tag_or_none(message.from_) == self.remote_tag)
            return (_tag_or_none(message.from_) == self.local_tag
                    and _tag_or_none(message.to) == self.remote_tag)
        except ParseError:
            return False

    @property
    def next_hop(self) -> URI:
        """The URI to resolve (RFC 3263) to send the next request: the first route, else the
        remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    # building requests -----------------------------------------------------------------------
    def _party_texts(self) -> tuple[str, str, str]:
        """From and To with their tags and our Via (no branch yet) as text: every request of
        the dialog writes the same ones, so they are made again only when one of the values
        they come from is replaced (compared by identity: any new value remakes them)."""
        sources = (self.local, self.local_tag, self.remote, self.remote_tag, self.local_via)
        memo = self._texts
        if memo is not None and all(map(_is, memo[0], sources)):
            return memo[1]
        remote = self.remote if self.remote_tag is None else self.remote.with_tag(self.remote_tag)
        via = self.local_via
        texts = (str(self.local.with_tag(self.local_tag)), str(remote),
                 None if "branch" in via.params else str(via))
        self._texts = (sources, texts)
        return texts

    def _build(self, method: str, seq: int, headers, body, content_type) -> Request:
        request_uri, routes = _route(self.remote_target, self.route_set)
        local, remote, via = self._party_texts()
        via = (str(self.local_via.with_params(branch=new_branch())) if via is None
               else f"{via};branch={new_branch()}")
        lines: list[tuple[str, object]] = [("Via", via)] + [("Route", r) for r in routes]
        lines += [("Max-Forwards", MAX_FORWARDS), ("From", local),
                  ("To", remote), ("Call-ID", self.call_id), ("CSeq", f"{seq} {method}")]
        if method in TARGET_REFRESH_METHODS:
            lines.append(("Contact", self.local_contact))
        return _finish(method, request_uri, lines, headers, body, content_type)

    def create_request(self, method: str, body: bytes | str = b"",
                       content_type: str | None = None,
                       headers: Iterable[tuple[str, object]] = ()) -> Request:
        """An in-dialog request (§12.2.1.1): Request-URI and Route from the remote target and
        route set (strict routers handled), From/To with the tags, the dialog's Call-ID, the
        next local CSeq, a Via with a new branch, and our Contact on target refreshes
        (INVITE, UPDATE, SUBSCRIBE, NOTIFY, REFER).  A body without ``content_type`` is SDP."""
        if method == "ACK":   # method names are case-sensitive (RFC 3261 §7.1): no upper()
            raise DialogError("use create_ack(invite_cseq) for the ACK of a 2xx: it reuses the "
                              "INVITE's CSeq number")
        if method == "CANCEL":
            raise DialogError("CANCEL belongs to the request it cancels: use "
                              "labkit.sip.transaction.make_cancel_for(request)")
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"dialog {self.call_id} is terminated; no {method} can be sent in it")
        if method == "BYE" and self.role == "uas" and self.state is DialogState.EARLY:
            raise DialogError("the callee must not send BYE on an early dialog (RFC 3261 §15); "
                              "answer the INVITE with a final response instead")
        if method == "INVITE":
            if self.state is DialogState.EARLY:
                raise DialogError("no re-INVITE on an early dialog (RFC 3261 §14.1); "
                                  "use UPDATE (RFC 3311)")
            if self.outgoing_invite is not None or self.incoming_invite is not None:
                raise DialogError("an INVITE transaction is still in progress in this dialog "
                                  "(RFC 3261 §14.1): wait for its final response")
        seq = self._next_local_seq()
        request = self._build(method, seq, headers, body, content_type)
        self.local_seq = seq   # only a request actually built uses up a number
        if method == "INVITE":
            self.outgoing_invite = seq
        return request

    def _next_local_seq(self) -> int:
        if self.local_seq is None:  # the callee's first request: pick a start (§12.2.1.1)
            if self.first_local_seq is None:
                self.first_local_seq = random_below(2 ** 31)
            return self.first_local_seq
        if self.local_seq >= _MAX_CSEQ:
            raise DialogError("local CSeq would pass 2**32-1")
        return self.local_seq + 1

    def resend(self, request: Request, headers: Iterable[tuple[str, object]] = ()) -> Request:
        """``request`` again as a new request of this dialog — next CSeq, new branch, same
        method, body and extension headers — plus ``headers``: what a 401/407 to a re-INVITE,
        BYE or REFER asks for, with the new Authorization / Proxy-Authorization (§22.2).
        Old credentials are not copied."""
        keep = [(name, value) for name, value in request.headers
                if header_key(name) not in _NOT_RESENT]
        return self.create_request(request.method, body=request.body,
                                   content_type=request.get("Content-Type"),
                                   headers=keep + list(headers))

    def create_prack(self, response: Response, body: bytes | str = b"",
                     content_type: str | None = None,
                     headers: Iterable[tuple[str, object]] = ()) -> Request | None:
        """The PRACK for a reliable provisional response (``Require: 100rel`` + ``RSeq``,
        RFC 3262 §4), with ``RAck: <RSeq> <CSeq number> <method>``; None when it needs none:
        a retransmission (RSeq already acknowledged) or one out of order (not the next RSeq).
        The PRACK may carry an answer (or an offer) in ``body``."""
        if not (100 < response.status < 200):
            raise DialogError(f"only a 101-199 response is PRACKed, not {response.status}")
        require = {t.strip().lower() for v in response.get_all("Require") for t in v.split(",")}
        rseq_text = response.get("RSeq")
        if "100rel" not in require or rseq_text is None:
            raise DialogError(f"this {response.status} is not reliable (no Require: 100rel "
                              f"and RSeq): nothing to PRACK")
        rseq_text = rseq_text.strip()
        if not rseq_text.isdigit() or not 1 <= int(rseq_text) <= _MAX_CSEQ:
            raise ParseError(f"bad RSeq {rseq_text!r} (want 1..2**32-1, RFC 3262 §7.1)")
        rseq = int(rseq_text)
        if self.remote_rseq is not None and rseq != self.remote_rseq + 1:
            return None   # a retransmission (its PRACK transaction answers it) or out of order
        cseq = response.cseq
        prack = self.create_request("PRACK", body, content_type,
                                    [("RAck", f"{rseq} {cseq.seq} {cseq.method}"), *headers])
        self.remote_rseq = rseq
        return prack

    def create_ack(self, invite_cseq: int | object, body: bytes | str = b"",
                   content_type: str | None = None,
                   headers: Iterable[tuple[str, object]] = (),
                   credentials_from: Request | None = None) -> Request:
        """The ACK for a 2xx to an INVITE of this dialog (§13.2.2.4): built like any in-dialog
        request, but with the INVITE's CSeq number (``int`` or ``CSeq``) and method ACK, a new
        branch, and no change to the local CSeq.  It carries the answer when the 2xx had the
        offer, and the INVITE's credentials when given it as ``credentials_from``.  Kept in
        ``self.ack`` to resend on a retransmitted 2xx."""
        if credentials_from is not None:
            headers = [(name, value) for name in _CREDENTIALS
                       for value in credentials_from.headers.lines(name)] + list(headers)
        seq = getattr(invite_cseq, "seq", invite_cseq)
        if not isinstance(seq, int) or not 0 <= seq <= _MAX_CSEQ:
            raise DialogError(f"invite_cseq must be the INVITE's CSeq number, not {invite_cseq!r}")
        if self.role == "uac" and self.state is DialogState.EARLY:
            raise DialogError("an early dialog has no 2xx to acknowledge yet")
        request = self._build("ACK", seq, headers, body, content_type)
        self.ack = request
        return request

    # receiving -------------------------------------------------------------------------------
    def receive_request(self, request: Request) -> Response | None:
        """Check an in-dialog request and learn from it (§12.2.2).  Returns None when the
        request may go on to the application, or the response to send instead: 500 for a
        CSeq lower than the last one (out of order), 481 when the dialog is terminated.
        A re-INVITE while an INVITE is in progress gets 491 (ours is pending) or 500 with
        Retry-After (theirs is, §14.2); tell ``response_sent`` when you answer it.
        A target refresh with a Contact replaces the remote target; an accepted BYE ends
        the dialog.  ACK and CANCEL do not move the remote CSeq."""
        if not self.matches(request):
            raise DialogError(f"{request.method} does not belong to dialog {self.id}")
        method = request.method
        seq = request.cseq.seq
        if self.state is DialogState.TERMINATED and method != "ACK":
            return request.make_response(481, "Dialog Does Not Exist")
        if method in ("ACK", "CANCEL"):
            return None
        if self.remote_seq is not None and seq < self.remote_seq:
            response = request.make_response(500, "CSeq Out of Order")
            response.add("Retry-After", str(random_below(10) + 1))
            return response
        if method == "INVITE":
            if self.outgoing_invite is not None:
                return request.make_response(491)      # glare: both sides re-INVITEd
            if self.incoming_invite is not None:
                response = request.make_response(500, "Previous INVITE Still in Progress")
                response.add("Retry-After", str(random_below(10) + 1))
                return response
            self.incoming_invite = seq
        self.remote_seq = seq
        if method in TARGET_REFRESH_METHODS:
            contacts = request.contact
            if contacts and not contacts[0].is_star:
                self.remote_target = contacts[0].uri
        if method == "BYE":
            self._fire("BYE" if self.state is DialogState.CONFIRMED else "BYE (caller)")
        return None

    def receive_response(self, response: Response) -> None:
        """Learn from a response to a request we sent in this dialog.

        For the INVITE that created the dialog (caller side): a later 1xx may update the
        remote target, the 2xx confirms the dialog and recomputes the route set and remote
        target from itself (§13.2.2.4), a final error ends an early dialog.  For later
        requests: a 2xx to a target refresh takes its Contact as the remote target
        (§12.2.1.2); 481 or 408 end the dialog; any final response to our BYE ends it."""
        if not self.matches(response):
            raise DialogError(f"response {response.status} does not belong to dialog {self.id}")
        status, cseq = response.status, response.cseq
        if cseq.method == "INVITE" and cseq.seq == self.outgoing_invite and status >= 200:
            self.outgoing_invite = None
        if self.role == "uac" and cseq.method == self.method and cseq.seq == self.invite_seq:
            if self.state is DialogState.EARLY:
                if status < 200:
                    if response.contact and not response.contact[0].is_star:
                        self.remote_target = response.contact[0].uri
                    self._fire("1xx")
                elif status < 300:
                    self.route_set = list(reversed(response.record_route))
                    self.remote_target = _remote_target(response, status)
                    self._fire("2xx")
                else:
                    self._fire("3xx-6xx to the INVITE")
            return
        if status in (408, 481):
            self._fire("481 / 408 to a request")
        elif cseq.method == "BYE" and status >= 200:
            self._fire("BYE" if self.state is DialogState.CONFIRMED else "BYE (caller)")
        elif 200 <= status < 300 and cseq.method in TARGET_REFRESH_METHODS:
            if response.contact and not response.contact[0].is_star:
                self.remote_target = response.contact[0].uri
            if self.state is DialogState.CONFIRMED:
                self._fire("target refresh (re-INVITE, UPDATE)")

    def response_sent(self, response: Response) -> None:
        """We sent a response to an INVITE of this dialog: a final one ends that INVITE
        transaction (a new re-INVITE may follow).  For the INVITE that created the dialog
        (callee side) a 2xx confirms the early dialog and a 3xx-6xx ends it."""
        cseq = response.cseq
        if cseq.method == "INVITE" and cseq.seq == self.incoming_invite \
                and response.status >= 200:
            self.incoming_invite = None
        if self.role != "uas" or cseq.method != self.method or cseq.seq != self.invite_seq \
                or self.state is not DialogState.EARLY:
            return
        if 200 <= response.status < 300:
            self._fire("2xx")
        elif response.status >= 300:
            self._fire("3xx-6xx to the INVITE")

    def terminate(self) -> None:
        """End the dialog from the application (e.g. a BYE that got no answer)."""
        self._fire("terminate()")

    def _fire(self, event: str) -> bool:
        """Take the transition ``TRANSITIONS[(state, event)]``; False when there is none."""
        target = TRANSITIONS.get((self.state.value, event))
        if target is None:
            return False
        self.history.append((self.state.value, event, target))
        self.state = DialogState(target)
        return True

    def __repr__(self) -> str:
        return (f"<Dialog {self.role} {self.state.value} {self.call_id} "
                f"local={self.local_tag} remote={self.remote_tag}>")


def _event_of(status: int) -> str:
    return "2xx" if status >= 200 else "1xx with To tag"


def _check_creating(request: Request, response: Response) -> int:
    if not isinstance(request, Request) or not isinstance(response, Response):
        raise DialogError("a dialog is made from a Request and a Response")
    if request.method not in DIALOG_CREATING_METHODS:
        raise DialogError(f"{request.method} does not create a dialog "
                          f"(only {', '.join(sorted(DIALOG_CREATING_METHODS))})")
    status = response.status
    if not 101 <= status <= 299:
        raise DialogError(f"a {status} response does not create a dialog (101-299 do)")
    if response.cseq.seq != request.cseq.seq or response.call_id != request.call_id:
        raise DialogError("the response does not answer this request (Call-ID/CSeq differ)")
    return status


def _remote_target(message: Request | Response, status: int | None) -> URI:
    """The peer's Contact URI; required in a dialog-creating request or 2xx (§12.1)."""
    contacts = message.contact
    if contacts and not contacts[0].is_star:
        return contacts[0].uri
    what = message.method if isinstance(message, Request) else str(status)
    if isinstance(message, Response) and status is not None and status < 200:
        # a provisional response may omit Contact; the target is then the To URI for now
        return message.to.uri
    raise ParseError(f"{what} without a Contact header cannot create a dialog (RFC 3261 §12.1)")


# ---------------------------------------------------------------------------------------------
# Looking dialogs up


class DialogTable:
    """Every dialog of one user agent, by ``DialogId``.  ``find(message)`` gives the dialog an
    incoming request (our tag in To) or response (our tag in From) belongs to."""

    def __init__(self):
        self._dialogs: dict[DialogId, Dialog] = {}

    def add(self, dialog: Dialog) -> Dialog:
        if dialog.id in self._dialogs and self._dialogs[dialog.id] is not dialog:
            raise DialogError(f"a dialog with id {dialog.id} is already in the table")
        self._dialogs[dialog.id] = dialog
        return dialog

    def remove(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.id, None)

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def find(self, message: Request | Response) -> Dialog | None:
        try:
            call_id = message.call_id
            to_tag, from_tag = _tag_or_none(message.to), _tag_or_none(message.from_)
        except ParseError:
            return None
        if isinstance(message, Request):
            if to_tag is None:
                return None  # a request without To tag is outside any dialog
            return self._dialogs.get(DialogId(call_id, to_tag, from_tag))
        if from_tag is None:
            return None
        return self._dialogs.get(DialogId(call_id, from_tag, to_tag))

    def prune(self) -> list[Dialog]:
        """Drop the terminated dialogs; returns them."""
        gone = [d for d in self._dialogs.values() if d.terminated]
        for dialog in gone:
            del self._dialogs[dialog.id]
        return gone

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def __contains__(self, dialog: Dialog) -> bool:
        return self._dialogs.get(dialog.id) is dialog


class DialogSet:
    """The dialogs one INVITE of ours creates (§12.1.2, §13.2.2.4): a forking proxy may
    deliver it to several phones, each answering with its own To tag — one early dialog per
    tag, and possibly several 2xx (each must be ACKed; keep one call, BYE the others).

        dialogs = DialogSet(invite, table=table)
        dialog = dialogs.receive_response(response)   # the dialog of this response, or None
    """

    def __init__(self, invite: Request, *, table: DialogTable | None = None,
                 local_via: Via | str | None = None):
        if invite.method not in DIALOG_CREATING_METHODS:
            raise DialogError(f"{invite.method} does not create dialogs")
        self.invite = invite
        self.table = table
        self.local_via = local_via
        self.dialogs: dict[str, Dialog] = {}   # by remote (To) tag, in order of creation
        self.final_status: int | None = None

    @property
    def early(self) -> list[Dialog]:
        return [d for d in self.dialogs.values() if d.early]

    @property
    def confirmed(self) -> list[Dialog]:
        return [d for d in self.dialogs.values() if d.confirmed]

    def receive_response(self, response: Response) -> Dialog | None:
        """Create or update the dialog of a response to our INVITE: None for a 100 or a 1xx
        without To tag, and for a final error — which also ends every early dialog."""
        if response.cseq.seq != self.invite.cseq.seq or response.cseq.method != self.invite.method:
            raise DialogError(f"response {response.status} ({response.cseq}) does not answer "
                              f"this {self.invite.method}")
        status = response.status
        if status >= 300:
            self.final_status = self.final_status or status
            for dialog in self.early:
                dialog._fire("3xx-6xx to the INVITE")
            return None
        tag = _tag_or_none(response.to)
        if tag is None or status == 100:
            return None
        if 200 <= status and self.final_status is None:
            self.final_status = status
        dialog = self.dialogs.get(tag)
        if dialog is None:
            dialog = Dialog.from_uac(self.invite, response, local_via=self.local_via)
            self.dialogs[tag] = dialog
            if self.table is not None:
                self.table.add(dialog)
        else:
            dialog.receive_response(response)
        return dialog

    def transaction_finished(self) -> list[Dialog]:
        """The INVITE transaction is over: early dialogs that never got a 2xx end (§13.2.2.4).
        Returns them."""
        ended = self.early
        for dialog in ended:
            dialog._fire("INVITE ended without 2xx")
        return ended

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self.dialogs.values()))

    def __len__(self) -> int:
        return len(self.dialogs)
