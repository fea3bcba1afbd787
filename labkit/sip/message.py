"""SIP requests and responses: parse bytes, read and change headers, serialise (RFC 3261 §7, §25).

Introduced in notebook 01.  Parsing is done in two steps, the way fast SIP stacks (Sippy,
Kamailio) do it:

1. ``parse(data)`` checks the structure — start line, one ``Name: value`` per (unfolded)
   line, Content-Length framing — and keeps every header as raw text.  Anything malformed here
   raises ``ParseError`` saying what and where (line number, header name).
2. Typed values (``msg.via``, ``msg.from_``, ``msg.cseq`` …) are parsed on first access and
   cached; a malformed one raises ``ParseError`` naming the header at that moment.
   ``msg.validate()`` reads all the ones a server relies on, in one go.

An unmodified message serialises to exactly the bytes it was parsed from; after a change it is
rebuilt from its headers (one ``Name: value`` line each, compact forms written in full).
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

from .headers import (_GOOD_METHODS, _KEYS, CANONICAL, LIST_HEADERS, TOKEN, AuthHeader, CSeq,
                      NameAddr, Via, header_key, split_list)
from .sdp import SessionDescription
from .uri import _SIP_USUAL_RE, URI, ParseError, SipURI, parse_uri, usual_checks

__all__ = ["Message", "Request", "Response", "Headers", "parse", "frame_stream", "REASONS",
           "MAX_HEADER_BYTES"]

SIP_VERSION = "SIP/2.0"
_MISSING = object()   # "not parsed yet" in the typed cache (None is a parsed value)
MAX_HEADER_BYTES = 65536   # a stream sender that never ends its headers is cut off here (413)

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request",
    401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 412: "Conditional Request Failed",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    580: "Precondition Failure", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

_TOKEN_RE = re.compile(TOKEN)
_FOLD_RE = re.compile(r"\r\n[ \t]+")
_VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)", re.I)
_STATUS_RE = re.compile(r"SIP/(\d+)\.(\d+) ([1-6]\d\d) ([^\r\n]*)\Z", re.I | re.S)
_DIGITS_RE = re.compile(r"[0-9]+")
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CL_RE = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$")
_NO_DUPS = frozenset()


# ---------------------------------------------------------------------------------------------

def _name_entry(name: object) -> tuple[str, str]:
    """(lookup key, name to write) of a header name, refused unless it is a token.  A name
    that passed is remembered: the stack adds the same few dozen names to every message."""
    known = _GOOD_NAMES.get(name) if name.__class__ is str else None
    if known is None:
        if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
            raise ValueError(f"bad header name {name!r}")
        key = header_key(name)
        known = (key, CANONICAL.get(key, name))
        if len(_GOOD_NAMES) < 1024:
            _GOOD_NAMES[name] = known
    return known


_GOOD_NAMES: dict[str, tuple[str, str]] = {}


def _checked(name: str, value: object) -> tuple[str, str, str]:
    """One header line made safe to write: a token name and a value with no CR, LF, NUL or
    other control character (no header injection).  An int is written as is: its digits
    cannot hold one."""
    key, written = _name_entry(name)
    if value.__class__ is int:
        return key, written, str(value)
    text = str(value)
    if _CTL_RE.search(text):
        raise ValueError(f"header {name} value has a control character (CR, LF, NUL …): "
                         f"{text!r}")
    return key, written, text.strip()


def _grouped(entries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Lines in the order ``add`` one after the other would give: the lines of a name kept
    together, after the first of them (only needed when a name comes back after another)."""
    seen: dict[str, int] = {}
    previous = None
    regroup = False
    for key, _, _ in entries:
        if key != previous:
            if key in seen:
                regroup = True
                break
            seen[key] = 1
            previous = key
    if not regroup:
        return entries
    groups: dict[str, list] = {}
    for entry in entries:
        groups.setdefault(entry[0], []).append(entry)
    return [entry for group in groups.values() for entry in group]


class Headers:
    """The headers of one message: ordered, several lines per name allowed, names
    case-insensitive with compact forms folded to full names (``v`` is ``Via``).

    Iterating gives ``(name, value)`` per header line, in order.  ``get``/``get_all`` split
    comma lists only for the headers whose grammar is a list (Via, Contact, Route …); others
    (Date, WWW-Authenticate …) keep their commas.  Every change clears the owner's typed cache
    and its cached raw bytes.

    Lookups go through an index (key -> first line's value, plus the set of keys that have
    several lines), built once per version of the headers: a message is read far more often
    than it is changed, and a dict lookup beats scanning the lines for every header read.
    """

    __slots__ = ("_lines", "_parts", "_typed", "_dirty", "_index", "_dups")

    def __init__(self, items: Iterable[tuple[str, object]] | None = None):
        self._lines: list[tuple[str, str, str]] | None = []
        self._typed: dict = {}
        self._dirty = True
        self._index = None
        self._dups = _NO_DUPS
        if items:
            self._lines = _grouped([_checked(name, value) for name, value in items])

    @classmethod
    def _from_entries(cls, entries: list) -> "Headers":
        h = cls.__new__(cls)
        h._lines = entries
        h._typed = {}
        h._dirty = False
        h._index = None
        h._dups = _NO_DUPS
        return h

    @property
    def _entries(self) -> list[tuple[str, str, str]]:
        """Every line as (key, name to write, value).  A parsed message makes this list only
        when something needs it (iterating, changing, a response copying lines): reading
        headers goes through the index."""
        lines = self._lines
        if lines is None:
            names, values = self._parts
            lines = self._lines = list(zip(map(_KEY_OF.__getitem__, names),
                                           map(_WRITTEN_AS.__getitem__, names), values))
        return lines

    @_entries.setter
    def _entries(self, lines: list[tuple[str, str, str]]) -> None:
        self._lines = lines

    def _changed(self) -> None:
        self._typed.clear()
        self._dirty = True
        self._index = None

    def _build_index(self) -> dict:
        index: dict[str, str] = {}
        dups = set()
        for key, _, value in self._entries:
            if key in index:
                dups.add(key)
            else:
                index[key] = value
        self._index = index
        self._dups = dups or _NO_DUPS
        return index

    # reading ---------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        index = self._index
        if index is None:
            index = self._build_index()
        return header_key(name) in index

    def __eq__(self, other) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._entries] == [(k, v) for k, _, v in other._entries]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def _first(self, key: str) -> str | None:
        """The raw value of the first line with lookup key ``key`` (no comma splitting): what
        ``get`` returns for the headers that are not lists (From, To, Call-ID, CSeq …)."""
        index = self._index
        if index is None:
            index = self._build_index()
        return index.get(key)

    def lines(self, name: str) -> list[str]:
        """The raw value of every line of header ``name`` (no comma splitting)."""
        key = header_key(name)
        index = self._index
        if index is None:
            index = self._build_index()
        if key in self._dups:
            return [v for k, _, v in self._entries if k == key]
        value = index.get(key)
        return [] if value is None else [value]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value (the first element of the first line for list headers)."""
        key = _KEYS.get(name) or header_key(name)
        index = self._index
        if index is None:
            index = self._build_index()
        value = index.get(key)
        if value is None:
            return default
        if "," in value and key in LIST_HEADERS:
            parts = split_list(value)
            return parts[0] if parts else default
        return value

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order, list headers split at their commas."""
        key = _KEYS.get(name) or header_key(name)
        index = self._index
        if index is None:
            index = self._build_index()
        if key in self._dups:
            if key not in LIST_HEADERS:
                return [v for k, _, v in self._entries if k == key]
            out: list[str] = []
            for k, _, value in self._entries:
                if k == key:
                    if "," in value:
                        out += split_list(value)
                    elif value:
                        out.append(value)
            return out
        value = index.get(key)
        if value is None:
            return []
        if key not in LIST_HEADERS:
            return [value]
        if "," in value:
            return split_list(value)
        return [value] if value else []

    # changing --------------------------------------------------------------------------------
    @staticmethod
    def _check(name: str, value: object) -> tuple[str, str, str]:
        return _checked(name, value)

    def set(self, name: str, value: object) -> None:
        """Replace every line of ``name`` by one line holding ``value`` (kept in place)."""
        entry = self._check(name, value)
        key = entry[0]
        out, placed = [], False
        for e in self._entries:
            if e[0] == key:
                if not placed:
                    out.append(entry)
                    placed = True
            else:
                out.append(e)
        if not placed:
            out.append(entry)
        self._entries = out
        self._changed()

    def add(self, name: str, value: object, first: bool = False) -> None:
        """Add a line; ``first=True`` puts it above the other lines of that name (a new top
        Via or Record-Route), else after the last of them (or at the end)."""
        entry = self._check(name, value)
        key = entry[0]
        positions = [i for i, e in enumerate(self._entries) if e[0] == key]
        if first:
            self._entries.insert(positions[0] if positions else 0, entry)
        else:
            self._entries.insert(positions[-1] + 1 if positions else len(self._entries), entry)
        self._changed()

    def remove(self, name: str) -> int:
        """Remove every line of ``name``; returns how many lines went."""
        key = header_key(name)
        before = len(self._entries)
        self._entries = [e for e in self._entries if e[0] != key]
        if len(self._entries) != before:
            self._changed()
        return before - len(self._entries)

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first value of a list header (a proxy pops its own Via), even
        when it shares a line with others (``Via: a, b`` becomes ``Via: b``)."""
        key = header_key(name)
        for i, (k, written, value) in enumerate(self._entries):
            if k == key:
                parts = split_list(value) if key in LIST_HEADERS else [value]
                if len(parts) > 1:
                    self._entries[i] = (k, written, ", ".join(parts[1:]))
                else:
                    del self._entries[i]
                self._changed()
                return parts[0] if parts else None
        return None

    def replace_first(self, name: str, value: object) -> None:
        """Replace the first value of ``name`` (e.g. the top Via after stamping received)."""
        key, written, text = self._check(name, value)
        for i, (k, w, old) in enumerate(self._entries):
            if k == key:
                parts = split_list(old) if key in LIST_HEADERS else [old]
                self._entries[i] = (k, w, ", ".join([text] + parts[1:]))
                self._changed()
                return
        self.add(name, text, first=True)

    def copy(self) -> "Headers":
        h = Headers._from_entries(list(self._entries))
        h._dirty = True
        return h


# ---------------------------------------------------------------------------------------------

class Message:
    """What requests and responses share: version, headers, body, typed header access."""

    __slots__ = ("headers", "version", "_body", "_raw")

    def __init__(self, headers=None, body: bytes = b"", version: str = SIP_VERSION):
        if isinstance(headers, Headers):
            self.headers = headers
        else:
            self.headers = Headers(headers.items() if isinstance(headers, dict) else headers)
        self.version = version
        self._raw = None
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        self._body = bytes(body)
        if "content-length" not in {e[0] for e in self.headers._entries}:
            self.headers.add("Content-Length", len(self._body))

    # serialisation ---------------------------------------------------------------------------
    def start_line(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        if self._raw is not None and not self.headers._dirty:
            return self._raw
        lines = [self.start_line()]
        lines += [f"{name}: {value}" for _, name, value in self.headers._entries]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + self._body
        self._raw = raw
        self.headers._dirty = False
        return raw

    def __str__(self) -> str:
        return bytes(self).decode("utf-8", "replace")

    # body ------------------------------------------------------------------------------------
    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        """Setting the body also sets Content-Length to match."""
        if isinstance(value, str):
            value = value.encode()
        self._body = bytes(value)
        self.headers.set("Content-Length", len(self._body))

    # header access ---------------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def get_all(self, name: str) -> list[str]:
        return self.headers.get_all(name)

    def set(self, name: str, value: object) -> None:
        self.headers.set(name, value)

    def add(self, name: str, value: object, first: bool = False) -> None:
        self.headers.add(name, value, first)

    def remove(self, name: str) -> int:
        return self.headers.remove(name)

    def _one(self, name: str) -> str:
        """The value of a header that is not a list and must be there (From, To …)."""
        value = self.headers._first(_KEYS.get(name) or header_key(name))
        if value is None:
            raise ParseError(f"missing {name} header")
        return value

    # Typed values: parsed on first access, cached in headers._typed (cleared by any change).
    @property
    def via(self) -> list[Via]:
        """Every Via element, top first (the top one is the previous hop)."""
        headers = self.headers
        typed = headers._typed
        value = typed.get("via")
        if value is None:
            try:
                value = typed["via"] = _list_of(Via.parse, headers, "via")
            except ParseError as err:
                raise ParseError(f"Via header: {err}") from None
        return value

    @property
    def from_(self) -> NameAddr:
        headers = self.headers
        typed = headers._typed
        value = typed.get("from")
        if value is None:
            raw = (headers._index or headers._build_index()).get("from")
            if raw is None:
                raise ParseError("missing From header")
            try:
                value = typed["from"] = NameAddr.parse(raw)
            except ParseError as err:
                raise ParseError(f"From header: {err}") from None
        return value

    @property
    def to(self) -> NameAddr:
        headers = self.headers
        typed = headers._typed
        value = typed.get("to")
        if value is None:
            raw = (headers._index or headers._build_index()).get("to")
            if raw is None:
                raise ParseError("missing To header")
            try:
                value = typed["to"] = NameAddr.parse(raw)
            except ParseError as err:
                raise ParseError(f"To header: {err}") from None
        return value

    @property
    def call_id(self) -> str:
        headers = self.headers
        typed = headers._typed
        value = typed.get("call-id")
        if value is None:
            value = (headers._index or headers._build_index()).get("call-id")
            if value is None:
                raise ParseError("missing Call-ID header")
            if not value or " " in value or "\t" in value:
                raise ParseError(f"bad Call-ID {value!r}")
            typed["call-id"] = value
        return value

    @property
    def cseq(self) -> CSeq:
        headers = self.headers
        typed = headers._typed
        value = typed.get("cseq")
        if value is None:
            raw = (headers._index or headers._build_index()).get("cseq")
            if raw is None:
                raise ParseError("missing CSeq header")
            value = typed["cseq"] = CSeq.parse(raw)   # its errors name CSeq
        return value

    @property
    def contact(self) -> list[NameAddr]:
        """Every Contact (empty list when none; ``*`` gives ``NameAddr.STAR``)."""
        headers = self.headers
        typed = headers._typed
        value = typed.get("contact")
        if value is None:
            try:
                value = typed["contact"] = _list_of(NameAddr.parse, headers, "contact")
            except ParseError as err:
                raise ParseError(f"Contact header: {err}") from None
        return value

    @property
    def route(self) -> list[NameAddr]:
        return self._typed("route", lambda: [_typed_or_error(NameAddr.parse, v, "Route")
                                             for v in self.headers.get_all("Route")])

    @property
    def record_route(self) -> list[NameAddr]:
        return self._typed("record-route", lambda: [
            _typed_or_error(NameAddr.parse, v, "Record-Route")
            for v in self.headers.get_all("Record-Route")])

    def _typed(self, key: str, build):
        cache = self.headers._typed
        value = cache.get(key, _MISSING)
        if value is _MISSING:
            value = cache[key] = build()
        return value

    @property
    def max_forwards(self) -> int | None:
        return self._typed("max-forwards", lambda: _int_header(self, "Max-Forwards", 255))

    @property
    def expires(self) -> int | None:
        return self._typed("expires", lambda: _int_header(self, "Expires", 2 ** 32 - 1))

    @property
    def content_length(self) -> int | None:
        typed = self.headers._typed
        value = typed.get("content-length", _MISSING)
        if value is _MISSING:
            value = typed["content-length"] = _int_header(self, "Content-Length", None)
        return value

    @property
    def content_type(self) -> str | None:
        """The media type, lower case, without parameters (``application/sdp``)."""
        value = self.headers._first("content-type")
        if value is None or value == "application/sdp":
            return value
        return value.split(";", 1)[0].strip().lower()

    @property
    def sdp(self) -> SessionDescription | None:
        """The session description: the body when Content-Type is application/sdp; in a
        multipart body, the SDP part that describes the session (RFC 5621 §3.3); else None."""
        headers = self.headers
        typed = headers._typed
        value = typed.get("sdp-body", _MISSING)
        if value is _MISSING:
            value = None
            ctype = (headers._index or headers._build_index()).get("content-type")
            if ctype is not None and self._body:
                if ctype == "application/sdp" or (media := self.content_type) == "application/sdp":
                    value = SessionDescription.parse(self._body)
                elif media.startswith("multipart/"):
                    from .multipart import session_body
                    body = session_body(self)
                    if body:
                        value = SessionDescription.parse(body)
            typed["sdp-body"] = value
        return value

    @property
    def parts(self) -> list:
        """The body as a list of ``BodyPart``: the parts of a multipart/* body (nested ones in
        ``.parts``), else one part holding the whole body with the message's other Content-*
        headers; [] without a body.  A malformed multipart body raises ParseError."""
        typed = self.headers._typed
        value = typed.get("body-parts")
        if value is None:
            from .multipart import BodyPart, parse_multipart
            ctype = self.headers._first("content-type") or ""
            if not self._body:
                value = ()
            elif self.content_type and self.content_type.startswith("multipart/"):
                value = tuple(parse_multipart(ctype, self._body))
            else:
                value = (BodyPart(ctype, self._body, tuple(
                    (name, v) for key, name, v in self.headers._entries
                    if key.startswith("content-") and key not in ("content-type", "content-length"))),)
            typed["body-parts"] = value
        return list(value)

    def auth(self, name: str = "Authorization") -> list[AuthHeader]:
        """The parsed Authorization / WWW-Authenticate / Proxy-* headers (one per line)."""
        return [_typed_or_error(AuthHeader.parse, v, name) for v in self.headers.lines(name)]

    def validate(self) -> "Message":
        """Parse every header a transaction layer relies on (Via, From, To, Call-ID, CSeq,
        Max-Forwards, Contact); raise ParseError for the first bad or missing one.
        On a request the error carries ``request_info`` so a 400 can still be sent."""
        try:
            if not self.via:
                raise ParseError("missing Via header")
            for header, name_addr in (("From", self.from_), ("To", self.to)):
                _typed_or_error(lambda na: na.uri, name_addr, header)
            self.call_id, self.cseq, self.max_forwards, self.content_length
            for contact in self.contact:
                _typed_or_error(lambda na: na.uri, contact, "Contact")
            self._validate_more()
        except ParseError as err:
            if err.request_info is None and isinstance(self, Request):
                err.request_info = self
            raise
        return self

    def _validate_more(self) -> None:
        pass

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return (self.start_line() == other.start_line() and self.headers == other.headers
                and self._body == other._body)

    __hash__ = None


def _list_of(parse_one, headers: Headers, key: str) -> list:
    """Every element of list header ``key``, parsed; one line holding one element (the usual
    case) goes straight from the index."""
    index = headers._index
    if index is None:
        index = headers._build_index()
    value = index.get(key)
    if value and "," not in value and key not in headers._dups:
        return [parse_one(value)]
    return [parse_one(v) for v in headers.get_all(key)]


def _typed_or_error(parse_fn, value: str, name: str):
    try:
        return parse_fn(value)
    except ParseError as err:
        raise ParseError(f"{name} header: {err}", err.status) from None


def _int_header(msg: Message, name: str, limit: int | None) -> int | None:
    value = msg.headers.get(name)
    if value is None:
        return None
    if not _DIGITS_RE.fullmatch(value):
        raise ParseError(f"bad {name} {value!r} (want a number)")
    number = int(value)
    if limit is not None and number > limit:
        raise ParseError(f"{name} {number} is larger than {limit}")
    return number


class Request(Message):
    """A SIP request: ``method``, ``uri`` (SipURI | TelURI | AbsoluteURI), headers, body."""

    __slots__ = ("_method", "_uri")

    def __init__(self, method: str, uri: URI | str, headers=None, body: bytes = b"",
                 version: str = SIP_VERSION):
        if not _TOKEN_RE.fullmatch(method):
            raise ValueError(f"bad method {method!r}")
        self._method = method
        self._uri = parse_uri(uri) if isinstance(uri, str) else uri
        super().__init__(headers, body, version)

    @property
    def method(self) -> str:
        return self._method

    @method.setter
    def method(self, value: str) -> None:
        if not _TOKEN_RE.fullmatch(value):
            raise ValueError(f"bad method {value!r}")
        self._method = value
        self.headers._dirty = True

    @property
    def uri(self) -> URI:
        uri = self._uri
        if uri.__class__ is _Match:   # a parsed usual URI, checked, built on first use
            uri = self._uri = _uri_from_usual(uri.string, *uri.groups())
        return uri

    @uri.setter
    def uri(self, value: URI | str) -> None:
        self._uri = parse_uri(value) if isinstance(value, str) else value
        self.headers._dirty = True

    def start_line(self) -> str:
        return f"{self._method} {self.uri} {self.version}"

    def __getstate__(self):
        self.uri   # a pattern match cannot be pickled: build the SipURI it stands for first
        return super().__getstate__()

    def __repr__(self) -> str:
        return f"<Request {self._method} {self.uri}>"

    def _validate_more(self) -> None:
        if self.cseq.method != self._method:
            raise ParseError(f"CSeq method {self.cseq.method} does not match the request "
                             f"method {self._method}")

    def make_response(self, status: int, reason: str | None = None,
                      to_tag: str | None = None) -> "Response":
        """A response to this request per RFC 3261 §8.2.6: the Via lines, From, To, Call-ID
        and CSeq copied as they are (Timestamp too for 100), a To tag added when given and the
        To has none, and ``Content-Length: 0``.  Record-Route is copied, in order, into 101-299
        responses: those may establish a dialog, whose UAS must echo it (§12.1.1).
        Works on ``ParseError.request_info`` too."""
        if not 100 <= status <= 699:
            raise ValueError(f"status must be 100..699, not {status}")
        entries = []
        copied = ("via", "from", "to", "call-id", "cseq") + (
            ("timestamp",) if status == 100 else ("record-route",) if status < 300 else ())
        for key, name, value in self.headers._entries:
            if key in copied:
                if key == "to" and to_tag and status != 100 and not _HAS_TAG_RE.search(value):
                    value = f"{value};tag={to_tag}"
                entries.append((key, name, value))
        entries.append(("content-length", "Content-Length", "0"))
        response = Response.__new__(Response)
        response.headers = Headers._from_entries(entries)
        response.headers._dirty = True
        response.version = SIP_VERSION
        response._raw = None
        response._body = b""
        response._status = status
        response._reason = REASONS.get(status, "") if reason is None else reason
        return response


_HAS_TAG_RE = re.compile(r";[ \t]*tag[ \t]*=", re.I)


class Response(Message):
    """A SIP response: ``status`` (int), ``reason`` (str), headers, body."""

    __slots__ = ("_status", "_reason")

    def __init__(self, status: int, reason: str | None = None, headers=None, body: bytes = b"",
                 version: str = SIP_VERSION):
        if not 100 <= int(status) <= 699:
            raise ValueError(f"status must be 100..699, not {status}")
        self._status = int(status)
        self._reason = REASONS.get(self._status, "") if reason is None else reason
        super().__init__(headers, body, version)

    @property
    def status(self) -> int:
        return self._status

    @status.setter
    def status(self, value: int) -> None:
        self._status = int(value)
        self.headers._dirty = True

    @property
    def reason(self) -> str:
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value
        self.headers._dirty = True

    def start_line(self) -> str:
        return f"{self.version} {self._status} {self._reason}"

    def __repr__(self) -> str:
        return f"<Response {self._status} {self._reason}>"


# ---------------------------------------------------------------------------------------------
# parsing

def _line_of(text: str, pos: int) -> int:
    return text.count("\r\n", 0, pos) + 1


def parse(data: bytes) -> Request | Response:
    """Parse one SIP message (a UDP datagram, or one message cut out by ``frame_stream``).

    Leading CRLFs are skipped (RFC 3261 §7.5).  With a Content-Length the body is that many
    bytes (extra datagram bytes are ignored, §18.3); without one it is the rest of the data.
    Raises ``ParseError`` (``.status`` 400, or 505 for a SIP version other than 2.0) whose
    message names the line or header at fault; for requests ``.request_info`` holds what could
    be read so that a response can still be sent.
    """
    if data.__class__ is bytes:
        msg = _parse_usual(data)
        if msg is not None:
            return msg
    return _parse_any(data)


# One split cuts the header block into [start line, name, value, name, value, ...]: a header
# line starts after CRLF, its name runs to the colon, the whitespace after the colon goes.
# A CRLF preceded by whitespace (a value with trailing blanks) or not followed by "name:"
# (a folded or broken line) is not a split point, so the line count gives it away.
_HEADER_SPLIT_RE = re.compile(r"\r\n(?<![ \t]\r\n)([^:\r\n]*+):[ \t]*+")   # possessive: same splits
_KEY_OF: dict[str, str] = {}        # header name as written -> lookup key ("v" -> "via")
_uri_from_usual = SipURI._from_usual
_Match = re.Match
_WRITTEN_AS: dict[str, str] = {}    # header name as written -> name to write ("v" -> "Via")


def _parse_usual(data: bytes) -> Request | Response | None:
    """The usual message in as few passes as possible, or None to let ``_parse_any`` deal with
    anything out of the ordinary (folding, trailing blanks, unknown names, bad lines …) and
    say what is wrong.  It accepts only what ``_parse_any`` accepts, with the same result."""
    end_of_headers = data.find(b"\r\n\r\n")
    if end_of_headers <= 0 or data[:2] == b"\r\n":
        return None
    try:
        head = data[:end_of_headers].decode()
    except UnicodeDecodeError:
        return None
    if head[-1] in " \t":
        return None
    parts = _HEADER_SPLIT_RE.split(head)
    rest = "".join(parts)   # a CR or LF left here does not end a "name: value" line
    if "\r" in rest or "\n" in rest or "\x00" in rest:
        return None
    names = parts[1::2]
    values = parts[2::2]
    try:
        index = dict(zip(map(_KEY_OF.__getitem__, names), values))
    except KeyError:   # a name not seen before: check it (and remember it while there is room)
        if not all(_learn_name(name, ":").__class__ is tuple for name in names) \
                or not all(map(_KEY_OF.__contains__, names)):
            return None
        index = dict(zip(map(_KEY_OF.__getitem__, names), values))
    if len(index) == len(names):
        dups = _NO_DUPS
    else:   # a name on several lines: the index keeps the first line's value
        keys = list(map(_KEY_OF.__getitem__, names))
        index = dict(zip(reversed(keys), reversed(values)))
        dups = _duplicated(keys)

    content_length = index.get("content-length")
    if content_length is not None:
        if "content-length" in dups or not content_length.isdigit() \
                or not content_length.isascii():
            return None
        content_length = int(content_length)
        end = end_of_headers + 4 + content_length
        if end > len(data):
            return None
    else:
        end = len(data)

    first = parts[0]
    if first[:4] == "SIP/":
        m = _STATUS_RE.match(first)
        if m is None or first[:8] != SIP_VERSION + " ":
            return None
        msg = Response.__new__(Response)
        msg._status = int(m.group(3))
        msg._reason = m.group(4)
    else:
        request_line = first.split(" ")
        if len(request_line) != 3 or request_line[2] != SIP_VERSION:
            return None
        method, uri_text, _ = request_line
        if method not in _GOOD_METHODS:
            if not method or not _TOKEN_RE.fullmatch(method):
                return None
            if len(_GOOD_METHODS) < 256:
                _GOOD_METHODS.add(method)
        uri = _SIP_USUAL_RE.match(uri_text)
        try:
            if uri is None:
                uri = parse_uri(uri_text)
            else:   # checked now, the SipURI built when .uri is first read
                usual_checks(uri_text, uri[3], uri[4])
        except ParseError:
            return None
        msg = Request.__new__(Request)
        msg._method = method
        msg._uri = uri

    headers = Headers.__new__(Headers)
    headers._lines = None
    headers._parts = (names, values)
    headers._typed = {"content-length": content_length}   # read and checked for framing
    headers._dirty = False
    headers._index = index
    headers._dups = dups
    msg.headers = headers
    msg.version = SIP_VERSION
    msg._body = data[end_of_headers + 4:end]
    msg._raw = data if end == len(data) else data[:end]
    return msg


def _duplicated(keys: list[str]) -> frozenset:
    seen: set[str] = set()
    dups = set()
    for key in keys:
        if key in seen:
            dups.add(key)
        seen.add(key)
    return frozenset(dups)


def _parse_any(data: bytes) -> Request | Response:
    """Parse one SIP message (a UDP datagram, or one message cut out by ``frame_stream``).

    Leading CRLFs are skipped (RFC 3261 §7.5).  With a Content-Length the body is that many
    bytes (extra datagram bytes are ignored, §18.3); without one it is the rest of the data.
    Raises ``ParseError`` (``.status`` 400, or 505 for a SIP version other than 2.0) whose
    message names the line or header at fault; for requests ``.request_info`` holds what could
    be read so that a response can still be sent.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"parse() wants bytes, not {type(data).__name__}")
    data = bytes(data)
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end_of_headers = data.find(b"\r\n\r\n", start)
    if end_of_headers < 0:
        if not data[start:]:
            raise ParseError("empty message")
        if b"\n\n" in data or b"\r\n" not in data and b"\n" in data:
            raise ParseError("lines must end with CRLF (found bare LF)")
        raise ParseError("message ends before the empty line that closes the headers")
    head_bytes = data[start:end_of_headers]
    try:
        head = head_bytes.decode()
    except UnicodeDecodeError as err:
        line = head_bytes.count(b"\r\n", 0, err.start) + 1
        raise ParseError(f"line {line}: bytes that are not UTF-8") from None

    problems: list[tuple[str, int]] = []   # (message, status) — the first one is raised
    if "\x00" in head:
        problems.append((f"line {_line_of(head, head.index(chr(0)))}: NUL byte in headers", 400))
    if "\r\n " in head or "\r\n\t" in head:
        if head[:1] in " \t":
            problems.append(("line 1: starts with whitespace", 400))
        head = _FOLD_RE.sub(" ", head)
    lines = head.split("\r\n")
    first = lines[0]

    # start line ------------------------------------------------------------------------------
    msg_cls = Request
    method = uri_text = reason = None
    status = 0
    version = SIP_VERSION
    if first[:4].upper() == "SIP/":
        msg_cls = Response
        m = _STATUS_RE.match(first)
        if m is None:
            problems.append((f"line 1: bad status line {first!r} "
                             f"(want SIP/2.0 <3-digit code> <reason>)", 400))
        else:
            if (m.group(1), m.group(2)) != ("2", "0"):
                problems.append((f"line 1: unsupported SIP version SIP/{m.group(1)}.{m.group(2)}",
                                 505))
            status, reason = int(m.group(3)), m.group(4)
            version = first[:first.index(" ")]
    else:
        parts = first.split(" ")
        if len(parts) != 3 or not all(parts):
            problems.append((f"line 1: bad request line {first!r} "
                             f"(want METHOD SP Request-URI SP SIP/2.0, single spaces)", 400))
            if parts and _TOKEN_RE.fullmatch(parts[0]):
                method = parts[0]
        else:
            method, uri_text, version = parts
            if not _TOKEN_RE.fullmatch(method):
                problems.append((f"line 1: bad method {method!r}", 400))
                method = None
            if version != SIP_VERSION:    # the usual case needs no pattern
                vm = _VERSION_RE.fullmatch(version)
                if vm is None:
                    problems.append((f"line 1: bad SIP version {version!r}", 400))
                elif (vm.group(1), vm.group(2)) != ("2", "0"):
                    problems.append((f"line 1: unsupported SIP version {version}", 505))

    # headers ---------------------------------------------------------------------------------
    # Fast path: one regex pass yields (name, value) per line; every name must be one seen
    # (and checked) before, and there must be exactly one pair per line.  Anything else goes
    # through the line-by-line loop below, which also says what is wrong.
    entries = None
    content_length = None
    pairs = _HEADER_LINE_RE.findall(head, len(first))
    if len(pairs) == len(lines) - 1:
        try:
            entries = [(*_NAMES[name], value) for name, value in pairs]
        except KeyError:
            entries = None
    if entries is not None:
        lengths = [value for key, _, value in entries if key == "content-length"]
        if lengths:
            if len(lengths) == 1 and lengths[0].isdigit() and lengths[0].isascii():
                content_length = int(lengths[0])
            else:
                entries = None
    if entries is None:
        entries, content_length = _read_header_lines(lines, problems)

    # body ------------------------------------------------------------------------------------
    body_start = end_of_headers + 4
    available = len(data) - body_start
    if content_length is None:
        end = len(data)
    else:
        if content_length > available:
            problems.append((f"Content-Length {content_length} is larger than the "
                             f"{available} bytes of body received", 400))
        end = body_start + content_length

    headers = Headers._from_entries(entries)
    headers._typed["content-length"] = content_length   # already read and checked for framing
    if problems:
        text, code = problems[0]
        info = None
        if msg_cls is Request and method is not None:
            info = Request.__new__(Request)
            info.headers, info.version, info._raw, info._body = headers, SIP_VERSION, None, b""
            info._method = method
            try:
                info._uri = parse_uri(uri_text) if uri_text else None
            except ParseError:
                info._uri = None
        raise ParseError(text, code, info)

    if msg_cls is Request:
        msg = Request.__new__(Request)
        msg._method = method
        try:
            msg._uri = SipURI.parse(uri_text) if uri_text[:4].lower() == "sip:" \
                else parse_uri(uri_text)
        except ParseError as err:
            msg.headers, msg.version, msg._raw, msg._body = headers, version, None, b""
            msg._uri = None
            raise ParseError(f"line 1: bad Request-URI: {err}", 400, msg) from None
    else:
        msg = Response.__new__(Response)
        msg._status = status
        msg._reason = reason
    msg.headers = headers
    msg.version = version
    msg._body = data[body_start:end]
    msg._raw = data[start:end] if start or end != len(data) else data
    return msg


_NAMES: dict[str, tuple[str, str]] = {}   # header name as written -> (key, name to write)
_HEADER_LINE_RE = re.compile(r"\r\n([^:\r\n]*):[ \t]*((?:[^\r\n]*[^\s])?)[ \t]*(?=\r|\Z)")


def _read_header_lines(lines: list[str], problems: list) -> tuple[list, int | None]:
    """Check and read the header lines one by one; problems are appended with line numbers."""
    entries = []
    content_length = None
    names = _NAMES
    for number, line in enumerate(lines[1:], 2):
        name, colon, value = line.partition(":")
        info = names.get(name)
        if info is None:
            info = _learn_name(name, colon)
            if info.__class__ is str:
                problems.append((f"line {number}: {info}", 400))
                continue
        key = info[0]
        value = value.strip(" \t")
        if "\n" in value or "\r" in value:
            problems.append((f"line {number}: bare CR or LF inside the {info[1]} header", 400))
            continue
        if key == "content-length":
            if not _DIGITS_RE.fullmatch(value):
                problems.append((f"line {number}: bad Content-Length {value!r} "
                                 f"(want a non-negative number)", 400))
                continue
            if content_length is not None and int(value) != content_length:
                problems.append((f"line {number}: Content-Length {value} contradicts an "
                                 f"earlier Content-Length {content_length}", 400))
            content_length = int(value)
        entries.append((key, info[1], value))
    return entries, content_length


def _learn_name(name: str, colon: str) -> tuple[str, str] | str:
    """Check a header name not seen before; remember it when valid (returns the problem as a
    string when not).  The cache is what makes the per-line cost a single dict lookup."""
    if not colon:
        return f"header line without ':' {name[:40]!r}"
    stripped = name.rstrip(" \t")
    if not _TOKEN_RE.fullmatch(stripped):
        return f"bad header name {stripped[:40]!r}"
    key = header_key(stripped)
    info = (key, CANONICAL.get(key) or stripped)
    if len(_NAMES) < 2048:
        _NAMES[name] = info
        _KEY_OF[name], _WRITTEN_AS[name] = info
    return info


def frame_stream(buffer: bytearray) -> list[bytes]:
    """Cut the complete messages off the front of a stream buffer (TCP/TLS), in place.

    Leading CRLFs (RFC 5626 keep-alives) are dropped.  Each message must carry Content-Length
    (RFC 3261 §18.3): a missing or bad one raises ParseError, because the stream cannot be
    resynchronised after it.  An incomplete message stays in the buffer for the next read; a
    header block that grows past MAX_HEADER_BYTES without ending raises ParseError (413).
    """
    messages: list[bytes] = []
    while True:
        skip = 0
        while buffer[skip:skip + 2] == b"\r\n":
            skip += 2
        if skip:
            del buffer[:skip]
        if not buffer:
            return messages
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEADER_BYTES:
                raise ParseError(f"no end of headers within {MAX_HEADER_BYTES} bytes", 413)
            return messages
        head = bytes(buffer[:end + 2])
        found = _CL_RE.findall(head)
        if not found:
            raise ParseError("message on a stream without Content-Length")
        if not all(_DIGITS_RE.fullmatch(v.decode("latin-1")) for v in found) \
                or len({int(v) for v in found}) != 1:
            values = ", ".join(v.decode("latin-1") for v in found)
            raise ParseError(f"bad Content-Length {values!r} on a stream")
        total = end + 4 + int(found[0])
        if len(buffer) < total:
            return messages
        messages.append(bytes(buffer[:total]))
        del buffer[:total]
