"""Typed SIP header values and the header-name tables (RFC 3261 §7.3, §20, §25.1).

Introduced in notebook 01.  A message keeps every header as raw text; these classes are what
``msg.via``, ``msg.from_``, ``msg.cseq`` … turn that text into on first access.  Values are
immutable (like URIs): ``via.with_params(received="192.0.2.1")`` or ``to.with_tag("x")`` build a
changed copy, which you then put back with ``msg.set(...)``.  Generic parameter values keep
their quotes (``+sip.instance="<urn:...>"``) so that they format back exactly as received.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, NamedTuple

from .uri import (SIP_USUAL, URI, AbsoluteURI, ParseError, Params, SipURI, TelURI, check_host,
                  parse_uri)

__all__ = [
    "Via", "NameAddr", "CSeq", "AuthHeader", "Params", "canonical_name", "header_key",
    "split_list", "parse_params", "quote", "unquote", "COMPACT_FORMS", "LIST_HEADERS",
]

TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_TOKEN_RE = re.compile(TOKEN)
_TOKEN_WORDS_RE = re.compile(rf"{TOKEN}(?:[ \t]+{TOKEN})*")
# quoted-string: qdtext is anything but '"' and '\', a quoted-pair is '\' + any char but CR/LF.
_QUOTED_RE = re.compile(r'"((?:[^"\\\r\n]|\\[^\r\n])*)"')
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)

# RFC 3261 §7.3.3 and the later RFCs that defined one-letter forms.
COMPACT_FORMS = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to",
    "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires",
    "y": "identity",
}

_CANONICAL_NAMES = """Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events
Authentication-Info Authorization Call-ID Call-Info Contact Content-Disposition Content-Encoding
Content-Language Content-Length Content-Type CSeq Date Error-Info Event Expires From History-Info
Identity Identity-Info In-Reply-To Max-Forwards MIME-Version Min-Expires Min-SE Organization
P-Asserted-Identity P-Preferred-Identity Path Priority Privacy Proxy-Authenticate
Proxy-Authorization Proxy-Require RAck Reason Record-Route Refer-To Referred-By Reject-Contact
Replaces Reply-To Request-Disposition Require Retry-After Route RSeq Security-Client
Security-Server Security-Verify Server Service-Route Session-Expires SIP-ETag SIP-If-Match Subject
Subscription-State Supported Timestamp To Unsupported User-Agent Via Warning WWW-Authenticate""".split()
CANONICAL = {name.lower(): name for name in _CANONICAL_NAMES}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): only these are split.
# Others may contain commas that are not separators (Date, WWW-Authenticate, Authorization …).
LIST_HEADERS = frozenset("""via route record-route contact allow supported require proxy-require
unsupported accept accept-encoding accept-language alert-info call-info error-info content-encoding
content-language in-reply-to warning path service-route allow-events reason p-asserted-identity
p-preferred-identity security-client security-server security-verify history-info accept-contact
reject-contact request-disposition""".split())


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact form expanded (``i`` -> ``call-id``)."""
    key = _KEYS.get(name)
    if key is None:
        key = name.lower()
        if len(key) == 1:
            key = COMPACT_FORMS.get(key, key)
        if len(_KEYS) < 2048:
            _KEYS[name] = key
    return key


_KEYS: dict[str, str] = {}


def canonical_name(name: str) -> str:
    """How labkit writes a header name: ``v`` / ``VIA`` -> ``Via``; unknown names unchanged."""
    return CANONICAL.get(header_key(name), name)


def split_list(value: str) -> list[str]:
    """Split a header value at the commas that separate list elements — not those inside a
    quoted string or a <URI> (``"Doe, John" <sip:j@x>, <sip:k@y>`` has two elements)."""
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",") if part.strip()]
    parts, start, i, n = [], 0, 0, len(value)
    while i < n:
        ch = value[i]
        if ch == '"':
            i += 1
            while i < n and value[i] != '"':
                i += 2 if value[i] == "\\" else 1
            if i >= n:
                raise ParseError(f"unterminated quoted string in {value!r}")
        elif ch == "<":
            end = value.find(">", i)
            if end < 0:
                raise ParseError(f"missing '>' in {value!r}")
            i = end
        elif ch == ",":
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def unquote(text: str) -> str:
    """``"A \\"B\\""`` -> ``A "B"`` (a quoted-string's content with its quoted-pairs resolved)."""
    m = _QUOTED_RE.fullmatch(text)
    if m is None:
        raise ParseError(f"bad quoted string {text!r}")
    inner = m.group(1)
    return _UNESCAPE_RE.sub(r"\1", inner) if "\\" in inner else inner


def quote(text: str) -> str:
    """The quoted-string that unquotes to ``text``."""
    if "\r" in text or "\n" in text:
        raise ValueError(f"a quoted string cannot hold CR or LF: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_PARAM_RE = re.compile(
    rf'[ \t]*;[ \t]*({TOKEN})(?:[ \t]*=[ \t]*("(?:[^"\\\r\n]|\\[^\r\n])*"|[^\s;,"]+))?[ \t]*')
_PLAIN_VALUE_RE = re.compile(r'[^\s;,"]+')


_PARAM_VALUE = r'(?:"(?:[^"\\\r\n]|\\[^\r\n])*"|[^\s;,"]+)'
_PARAMS_ALL_RE = re.compile(rf"(?:[ \t]*;[ \t]*{TOKEN}(?:[ \t]*=[ \t]*{_PARAM_VALUE})?)*[ \t]*\Z")
# Possessive runs here and in the usual-shape patterns below: see uri.SIP_USUAL.
_SIMPLE_PARAMS = rf"(?:;{TOKEN}+(?:=[^\s;,\"=]++)?)"
_SIMPLE_PARAMS_RE = re.compile(rf"{_SIMPLE_PARAMS}+\Z")
_PARAM_PAIR_RE = re.compile(rf"[ \t]*;[ \t]*({TOKEN})(?:[ \t]*=[ \t]*({_PARAM_VALUE}))?")


def parse_params(text: str, where: str = "") -> Params:
    """``;a=1 ; b ;c="x;y"`` -> Params (generic-params of RFC 3261 §25.1; quotes kept)."""
    if _SIMPLE_PARAMS_RE.match(text) is not None:   # no spaces, no quotes: split is enough
        return _split_simple_params(text)
    if _PARAMS_ALL_RE.match(text) is None:
        return _parse_params_slow(text, where)
    return Params._from_store({name.lower(): (name, value or None)
                               for name, value in _PARAM_PAIR_RE.findall(text)})


def _split_simple_params(text: str) -> Params:
    """Params from ``;a=1;b`` already matched by ``_SIMPLE_PARAMS`` (no blanks, no quotes)."""
    store = {}
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        store[name.lower()] = (name, value if eq else None)
    params = _new_params(Params)
    params._items = store
    return params


_new_params = Params.__new__


def _lone_param(text: str, key: str) -> str | None:
    """The value of parameter ``key`` (lower case) in ``text``, ONE parameter that
    ``_SIMPLE_PARAMS`` matched: what building its Params and looking ``key`` up would give."""
    name, eq, value = text[1:].partition("=")
    return value if eq and name.lower() == key else None


def _parse_params_slow(text: str, where: str) -> Params:
    """Walk the parameters one by one to say which one is wrong."""
    pos, end = 0, len(text.rstrip())
    while pos < end:
        m = _PARAM_RE.match(text, pos)
        if m is None:
            bad = text[pos:].strip()
            if not bad.startswith(";"):
                raise ParseError(f"unexpected {bad[:30]!r} before/between parameters{_in(where)}")
            raise ParseError(f"bad parameter {bad.split(';')[1].strip()[:30]!r}{_in(where)}")
        pos = m.end()
    raise ParseError(f"bad parameters {text.strip()[:40]!r}{_in(where)}")  # pragma: no cover


def _in(where: str) -> str:
    return f" in {where}" if where else ""


def _as_params(params) -> Params:
    return params if isinstance(params, Params) else Params(params)


# ---------------------------------------------------------------------------------------------

_VIA_RE = re.compile(
    rf"[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]+"   # SIP / 2.0 / UDP
    r"(\[[0-9A-Fa-f:.]*\]|[^\s;:\[\]]+)"                                   # host
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?"                                      # :port
    r"([ \t]*(?:;.*)?)\Z", re.S)

# The usual Via, in one match: what Via.parse takes without looking at whitespace or quotes.
# The last group is the branch when ;branch=... is the one parameter (the usual Via).
_VIA_USUAL_RE = re.compile(
    r"SIP/2\.0/([A-Za-z]++) ([A-Za-z0-9.\-]++|\[[0-9A-Fa-f:.]++\])(?::([0-9]{1,5}))?"
    rf"((?:;branch=([^\s;,\"=]++)\Z)?{_SIMPLE_PARAMS}*+)\Z")
_TRANSPORTS = frozenset(("UDP", "TCP", "TLS", "SCTP", "WS", "WSS"))


def _via_port(digits: str) -> int:
    """A Via sent-by port from digits the pattern already matched: only the range is left."""
    port = int(digits)
    if port > 65535:
        raise ParseError(f"port out of range: {port}")
    return port


class Via:
    """One Via header element (RFC 3261 §20.42, RFC 3581 for rport).

    ``transport`` is upper case ('UDP', 'TCP', 'TLS', 'WS', 'WSS', 'SCTP'); ``host``/``port``
    form the sent-by (``port`` is None when absent); ``params`` holds branch, received, rport …
    ``rport`` is the rport value as an int, None when absent *or* valueless; ``has_rport`` says
    whether the parameter is there at all (a valueless rport asks the server to fill it in).
    """

    # _params is None until first use when _rest holds ;params a pattern already checked
    # (``branch`` reads a lone ;branch= without building them).
    __slots__ = ("protocol", "transport", "host", "port", "_params", "_rest", "_branch", "_text")

    def __init__(self, transport: str, host: str, port: int | None = None,
                 params: Mapping | Iterable | None = None, protocol: str = "SIP/2.0"):
        check_host(host, "Via")
        self.protocol = protocol
        self.transport = transport.upper()
        self.host = host
        self.port = None if port is None else int(port)
        self._params = _as_params(params)
        self._text = None

    @classmethod
    def parse(cls, text: str) -> "Via":
        m = _VIA_USUAL_RE.match(text)
        if m is not None:   # SIP/2.0/UDP host[:port] and simple ;params, single spaces
            transport, host, port, rest, branch = m.groups()
            via = _new_via(cls)
            via.protocol = "SIP/2.0"
            via.transport = transport if transport in _TRANSPORTS else transport.upper()
            if host[0] == "[" or not host[-1].isalpha():
                check_host(host, "Via")
            via.host = host
            via.port = None if port is None else _via_port(port)
            if rest:
                via._params = None
                via._rest = rest
                via._branch = branch
            else:
                via._params = _NO_PARAMS
            via._text = text
            return via
        m = _VIA_RE.match(text)
        if m is None:
            raise ParseError(f"bad Via {text.strip()!r} (want SIP/2.0/UDP host[:port];params)")
        name, version, transport, host, port, rest = m.groups()
        via = cls.__new__(cls)
        via.protocol = f"{name}/{version}" if name == "SIP" else f"{name.upper()}/{version}"
        via.transport = transport.upper()
        if host[0] == "[" or not host[-1].isalpha():
            check_host(host, "Via")
        via.host = host
        via.port = None if port is None else _via_port(port)
        via._params = parse_params(rest) if rest else _NO_PARAMS
        via._text = text.strip()
        return via

    @property
    def params(self) -> Params:
        params = self._params
        if params is None:
            params = self._params = _split_simple_params(self._rest)
        return params

    @property
    def branch(self) -> str | None:
        params = self._params
        if params is None:
            branch = self._branch
            if branch is not None:   # the pattern found ;branch= as the one parameter
                return branch
            rest = self._rest
            if rest.count(";") == 1:
                return _lone_param(rest, "branch")
            params = self.params
        item = params._items.get("branch")   # the key is lower case already
        return item and item[1]

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() else None

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def replace(self, **changes) -> "Via":
        values = dict(transport=self.transport, host=self.host, port=self.port,
                      params=self.params, protocol=self.protocol)
        values.update(changes)
        return Via(**values)

    def with_params(self, **params: str | int | None) -> "Via":
        """A copy with parameters added/replaced, e.g. ``via.with_params(received="10.0.0.1")``."""
        return self.replace(params=self.params.with_(**params))

    def stamp(self, source_host: str, source_port: int) -> "Via":
        """What a server does to the top Via of a request it received from ``source``:
        add ``received`` when the sent-by host differs (RFC 3261 §18.2.1) and, when the
        client asked with a valueless ``rport``, fill in the source port (RFC 3581 §4)."""
        changes: dict[str, str | None] = {}
        host = source_host if ":" not in source_host or source_host.startswith("[") \
            else f"[{source_host}]"
        if self.host.lower() != host.lower() or self.has_rport:
            changes["received"] = source_host
        if self.has_rport:
            changes["rport"] = str(source_port)
        return self.with_params(**changes) if changes else self

    def __str__(self) -> str:
        if self._text is None:
            port = "" if self.port is None else f":{self.port}"
            self._text = f"{self.protocol}/{self.transport} {self.host}{port}{self.params.format()}"
        return self._text

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Via):
            return NotImplemented
        return (self.protocol.upper() == other.protocol.upper()
                and self.transport == other.transport and self.host.lower() == other.host.lower()
                and self.port == other.port and self.params == other.params)

    def __hash__(self):
        return hash((self.transport, self.host.lower(), self.port, self.branch))


_NO_PARAMS = Params()
_new_via = Via.__new__


# ---------------------------------------------------------------------------------------------

# "display" <uri>;params  or  token words <uri>;params — the usual shapes, in one match.
_NAME_ADDR_FAST_RE = re.compile(
    rf'[ \t]*(?:"((?:[^"\\\r\n]|\\[^\r\n])*)"[ \t]*|({TOKEN}(?:[ \t]+{TOKEN})*)[ \t]*)?'
    r'<([^<>"\s]+)>((?:[ \t]*;[^,]*)?)[ \t]*\Z')

# [display ]<uri>[;params]: groups display-quoted, display-words, uri text, the five groups of
# a usual SIP URI (None when the URI has another shape), header params, and the tag when
# ;tag=... is the one header parameter.
_NAME_ADDR_USUAL_RE = re.compile(
    rf'(?:"((?:[^"\\\r\n]|\\[^\r\n])*+)" ?|({TOKEN}+(?: {TOKEN}+)*+) )?'
    rf'<({SIP_USUAL}|[^<>"\s]++)>((?:;tag=([^\s;,"=]++)\Z)?{_SIMPLE_PARAMS}*+)\Z')

# sip:user@host:port;params with no <> (as SIPp writes Contact): the parameters belong to the
# header (RFC 3261 §20), and the user part holds none of ';', '?', ',' that would make it
# ambiguous.  Groups: scheme, user, host, port, header params.
_ADDR_SPEC_USUAL_RE = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$/]++)@)?([A-Za-z0-9.\-]++)(?::([0-9]{1,5}))?"
    rf"({_SIMPLE_PARAMS}*+)\Z")


class NameAddr:
    """From, To, Contact, Route, Record-Route, Reply-To, Refer-To … (RFC 3261 §20, §25.1).

    ``display`` is the display name with quotes and escapes removed (None when absent),
    ``uri`` the parsed URI, ``params`` the *header* parameters (tag, expires, q, lr …).
    In the addr-spec form (no angle brackets) parameters after the URI belong to the header,
    not to the URI (§20): ``sip:a@b;tag=1`` has tag 1.  ``NameAddr.STAR`` is the ``*`` Contact.
    """

    # _match: the usual-shape match the URI and parameters are taken from on first use;
    # _params: None until then (``tag`` reads a lone ;tag= without building them).
    __slots__ = ("_display", "_uri", "_match", "_params", "_text")
    is_star = False

    def __init__(self, uri: URI | str, display: str | None = None,
                 params: Mapping | Iterable | None = None):
        self._uri = parse_uri(uri) if isinstance(uri, str) else uri
        self._match = None
        self._display = display
        self._params = _as_params(params)
        self._text = None

    @classmethod
    def parse(cls, text: str, where: str = "") -> "NameAddr":
        """Parse one element; the URI itself is checked on first access of ``.uri``
        (``Message.validate()`` does that for From, To and Contact)."""
        m = _NAME_ADDR_USUAL_RE.match(text)
        if m is not None:   # [display ]<uri>[;simple params], single spaces
            na = _new_name_addr(cls)
            na._display = _FROM_MATCH
            na._uri = None
            na._match = m
            na._params = _NO_PARAMS if m.end(3) + 1 == len(text) else None   # '>' ends it
            na._text = text
            return na
        m = _ADDR_SPEC_USUAL_RE.match(text)
        if m is not None:   # the URI of an addr-spec is checked here, as _parse_slow does
            scheme, user, host, port, rest = m.groups()
            na = _new_name_addr(cls)
            na._display = None
            na._uri = SipURI._from_usual(text[:m.start(5)], scheme, user, host, port, "")
            na._match = None
            na._params = _split_simple_params(rest) if rest else _NO_PARAMS
            na._text = text
            return na
        m = _NAME_ADDR_FAST_RE.match(text)
        if m is None:
            return cls._parse_slow(text, where)
        quoted, words, uri_text, rest = m.groups()
        na = cls.__new__(cls)
        na._display = _display(quoted, words or None)
        na._uri = uri_text
        na._match = None
        na._params = parse_params(rest, where) if rest else _NO_PARAMS
        na._text = text.strip()
        return na

    @classmethod
    def _parse_slow(cls, text: str, where: str) -> "NameAddr":
        """Every form the fast pattern does not take: addr-spec, '*', or an error message."""
        text = text.strip()
        if text == "*":
            return cls.STAR
        display = None
        if text[:1] == '"':
            m = _QUOTED_RE.match(text)
            if m is None:
                raise ParseError(f"unterminated quoted display name{_in(where)}: {text!r}")
            inner = m.group(1)
            display = _UNESCAPE_RE.sub(r"\1", inner) if "\\" in inner else inner
            lt = m.end()
            while lt < len(text) and text[lt] in " \t":
                lt += 1
            if text[lt:lt + 1] != "<":
                raise ParseError(f"expected '<' after the display name{_in(where)}: {text!r}")
        else:
            lt = text.find("<")
            if lt > 0 and ":" in text[:lt]:
                lt = -1  # addr-spec whose parameters hold a '<' (a token never holds ':')
            if lt > 0:
                words = text[:lt].strip()
                if words:
                    if not _TOKEN_WORDS_RE.fullmatch(words):
                        raise ParseError(f"display name {words!r}{_in(where)} must be quoted "
                                         f"(it has characters a token cannot hold)")
                    display = words
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise ParseError(f"missing '>'{_in(where)}: {text!r}")
            uri_text, rest = text[lt + 1:gt], text[gt + 1:]
        else:
            semi = text.find(";")
            uri_text, rest = (text, "") if semi < 0 else (text[:semi].rstrip(), text[semi:])
            if "?" in uri_text or "," in uri_text:
                raise ParseError(f"a URI with '?' or ',' must be in <>{_in(where)}: {text!r}")
        if not uri_text:
            raise ParseError(f"empty URI{_in(where)}: {text!r}")
        na = cls.__new__(cls)
        na._display = display
        na._uri = parse_uri(uri_text)
        na._match = None
        na._params = parse_params(rest, where) if rest else _NO_PARAMS
        na._text = text
        return na

    @property
    def display(self) -> str | None:
        display = self._display
        if display is _FROM_MATCH:   # the usual shape: taken from its match on first read
            display = self._display = _display(*self._match.group(1, 2))
        return display

    @property
    def uri(self) -> URI | None:
        uri = self._uri
        if uri is None or uri.__class__ is str:
            m = self._match
            if m is None:
                if uri is None:   # the '*' Contact
                    return None
                uri = SipURI.parse(uri) if uri[:4] == "sip:" else parse_uri(uri)
            else:
                groups = m.group(3, 4, 5, 6, 7, 8)
                if groups[1] is not None:   # the name-addr match already took the URI apart
                    uri = SipURI._from_usual(*groups)
                else:
                    uri = groups[0]
                    uri = SipURI.parse(uri) if uri[:4] == "sip:" else parse_uri(uri)
            self._uri = uri
        return uri

    @property
    def params(self) -> Params:
        params = self._params
        if params is None:   # the usual shape: its ;params text matched _SIMPLE_PARAMS
            params = self._params = _split_simple_params(self._match[9])
        return params

    @property
    def tag(self) -> str | None:
        params = self._params
        if params is None:
            m = self._match
            tag = m[10]
            if tag is not None:   # the pattern found ;tag= as the one parameter
                return tag
            rest = m[9]
            if rest.count(";") == 1:
                return _lone_param(rest, "tag")
            params = self.params
        item = params._items.get("tag")   # the key is lower case already
        return item and item[1]

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        return int(value) if value and value.isdigit() else None

    def replace(self, **changes) -> "NameAddr":
        values = dict(uri=self.uri, display=self.display, params=self.params)
        values.update(changes)
        return NameAddr(**values)

    def with_tag(self, tag: str) -> "NameAddr":
        return self.replace(params=self.params.with_(tag=tag))

    def with_params(self, **params: str | int | None) -> "NameAddr":
        return self.replace(params=self.params.with_(**params))

    def __str__(self) -> str:
        if self._text is None:
            display = "" if self.display is None else quote(self.display) + " "
            self._text = f"{display}<{self.uri}>{self.params.format()}"
        return self._text

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"

    def __reduce__(self):
        # Pickled as its text: the pattern match it may hold cannot be pickled (values are
        # immutable, so the text gives the same value back).
        return NameAddr.parse, (str(self),)

    def __eq__(self, other) -> bool:
        if not isinstance(other, NameAddr):
            return NotImplemented
        if self.is_star or other.is_star:
            return self.is_star and other.is_star
        return (self.display == other.display and self.uri == other.uri
                and self.params == other.params)

    def __hash__(self):
        return hash((self.uri, self.tag))


_FROM_MATCH = object()   # NameAddr._display not yet taken from the usual-shape match


def _display(quoted: str | None, words: str | None) -> str | None:
    """The display name from a quoted-string's content (escapes resolved) or token words."""
    if quoted is not None:
        return _UNESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
    return words


class _StarAddr(NameAddr):
    """The ``*`` of ``Contact: *`` (RFC 3261 §10.2.2): no URI, no display name."""

    __slots__ = ()
    is_star = True


def _star() -> NameAddr:
    na = _StarAddr.__new__(_StarAddr)
    na._display, na._uri, na._match, na._params, na._text = None, None, None, _NO_PARAMS, "*"
    return na


NameAddr.STAR = _star()
_new_name_addr = NameAddr.__new__


# ---------------------------------------------------------------------------------------------

_CSEQ_RE = re.compile(rf"[ \t]*([0-9]{{1,10}})[ \t]+({TOKEN})[ \t]*\Z")


class CSeq(NamedTuple):
    """``CSeq: 4711 INVITE`` -> CSeq(seq=4711, method='INVITE') (RFC 3261 §20.16)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> "CSeq":
        number, space, method = text.partition(" ")
        if method in _GOOD_METHODS and number.isdigit() and number.isascii() \
                and len(number) <= 10:   # the usual "4711 INVITE"
            seq = int(number)
            if seq < 2 ** 32:
                return _new_tuple(cls, (seq, method))
        m = _CSEQ_RE.match(text)
        if m is None:
            raise ParseError(f"bad CSeq {text.strip()!r} (want: number METHOD)")
        seq = int(m.group(1))
        if seq >= 2 ** 32:
            raise ParseError(f"CSeq number {seq} does not fit in 32 bits")
        method = m.group(2)
        if len(_GOOD_METHODS) < 256:
            _GOOD_METHODS.add(method)
        return cls(seq, method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


# Methods known to match the token grammar (grows, bounded, as others are checked).
_GOOD_METHODS = {"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO", "UPDATE",
                 "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}
_new_tuple = tuple.__new__


# ---------------------------------------------------------------------------------------------

_AUTH_PARAM_RE = re.compile(
    rf'[ \t]*({TOKEN})[ \t]*=[ \t]*("(?:[^"\\\r\n]|\\[^\r\n])*"|{TOKEN})[ \t]*(?:,|\Z)')


class AuthHeader:
    """WWW-Authenticate / Authorization / Proxy-* values (RFC 3261 §20.7, §25.1):
    ``scheme`` ('Digest') and ``params`` with quotes removed; ``quoted`` lists the names that
    were (or should be) written quoted, so formatting gives the same text back."""

    __slots__ = ("scheme", "params", "quoted")

    def __init__(self, scheme: str, params: Mapping[str, str], quoted: Iterable[str] = ()):
        self.scheme = scheme
        self.params = _as_params(params)
        self.quoted = frozenset(q.lower() for q in quoted)

    @classmethod
    def parse(cls, text: str) -> "AuthHeader":
        text = text.strip()
        m = _TOKEN_RE.match(text)
        if m is None:
            raise ParseError(f"bad authentication header {text!r} (want: Scheme name=value, ...)")
        scheme, pos = m.group(0), m.end()
        if pos < len(text) and text[pos] not in " \t":
            raise ParseError(f"bad authentication scheme in {text!r}")
        store, quoted = {}, set()
        while pos < len(text):
            m = _AUTH_PARAM_RE.match(text, pos)
            if m is None:
                raise ParseError(f"bad authentication parameter at {text[pos:].strip()!r}")
            name, value = m.groups()
            if value[0] == '"':
                value = unquote(value)
                quoted.add(name.lower())
            store[name.lower()] = (name, value)
            pos = m.end()
        return cls(scheme, Params._from_store(store), quoted)

    def __str__(self) -> str:
        parts = [f"{name}={quote(value) if name.lower() in self.quoted else value}"
                 for name, value in self.params.items()]
        return f"{self.scheme} " + ", ".join(parts)

    def __repr__(self) -> str:
        return f"AuthHeader({str(self)!r})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, AuthHeader):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.params == other.params


__all__ += ["URI", "SipURI", "TelURI", "AbsoluteURI", "ParseError"]
