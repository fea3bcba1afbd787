"""SIP, SIPS and TEL URIs: parse, format and compare (RFC 3261 §19.1, §25.1; RFC 3966).

Introduced in notebook 01. URIs are values — treat them as immutable (not enforced, for speed):
``SipURI.parse(text)`` keeps the original text so ``str(uri)`` gives it back byte for byte, while
the attributes hold the decoded components (``%61lice`` -> ``alice``).  ``uri.replace(port=5062)``
builds a changed copy, which is then formatted from its components.  ``==`` follows the comparison rules of RFC 3261 §19.1.4,
which is why it is not a plain string comparison.

``ParseError`` lives here because this is the lowest module of the wire format: every parser in
``labkit.sip`` raises it, and ``labkit.sip`` exports it.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable, Iterator, Mapping

__all__ = [
    "ParseError", "Params", "SipURI", "TelURI", "AbsoluteURI", "URI", "parse_uri",
    "percent_decode", "percent_encode",
]


class ParseError(ValueError):
    """The peer sent something that is not valid SIP (a remote error, never a local bug).

    ``status`` is the response a server should answer with (400, 505 for a wrong SIP version,
    413 when too large, 416 for an unusable URI scheme); ``request_info`` is, when enough was
    read, a ``Request`` holding the start line and the readable headers, so that
    ``err.request_info.make_response(err.status)`` can still answer the sender.
    """

    def __init__(self, message: str, status: int = 400, request_info=None):
        super().__init__(message)
        self.status = status
        self.request_info = request_info


# ---------------------------------------------------------------------------------------------
# %-escapes (RFC 3261 §25.1 "escaped")

_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def percent_decode(text: str, where: str = "URI") -> str:
    """Decode %HH escapes (as UTF-8 octets); a lone or malformed ``%`` is a ParseError."""
    if "%" not in text:
        return text
    if _BAD_ESCAPE_RE.search(text):
        raise ParseError(f"bad %-escape in {where}: {text!r}")
    octets = bytearray()
    pos = 0
    for m in _ESCAPE_RE.finditer(text):
        octets += text[pos:m.start()].encode()
        octets.append(int(m.group(1), 16))
        pos = m.end()
    octets += text[pos:].encode()
    try:
        return octets.decode()
    except UnicodeDecodeError:
        # Escapes need not spell UTF-8 (e.g. %FF); keep such octets one-to-one.
        return octets.decode("latin-1")


_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()")
USER_SAFE = _UNRESERVED | frozenset("&=+$,;?/")
PASSWORD_SAFE = _UNRESERVED | frozenset("&=+$,")
PARAM_SAFE = _UNRESERVED | frozenset("[]/:&+$")
HEADER_SAFE = _UNRESERVED | frozenset("[]/?:+$")


def percent_encode(text: str, safe: frozenset = _UNRESERVED) -> str:
    """Escape every character outside ``safe`` as %HH of its UTF-8 octets."""
    if all(ch in safe for ch in text):
        return text
    out = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Parameters: an ordered, case-insensitive, read-only mapping


class Params(Mapping):
    """``;name=value`` parameters: ordered, names case-insensitive, values ``str`` or ``None``.

    Read-only, because the URIs and header values that own it are immutable; build a changed
    copy with ``params.with_(name=value)`` / ``params.without("name")``.  The original spelling
    of each name is kept for formatting.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str | None]] | Mapping | None = None):
        store: dict[str, tuple[str, str | None]] = {}
        if items:
            if isinstance(items, Mapping):
                items = items.items()
            for name, value in items:
                if value is not None and not isinstance(value, str):
                    value = str(value)
                store[name.lower()] = (name, value)
        self._items = store

    @classmethod
    def _from_store(cls, store: dict) -> "Params":
        p = cls.__new__(cls)
        p._items = store
        return p

    def __getitem__(self, name: str) -> str | None:
        return self._items[name.lower()][1]

    def get(self, name: str, default=None):
        item = self._items.get(name.lower())
        return default if item is None else item[1]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def items(self):
        return list(self._items.values())

    def __eq__(self, other) -> bool:
        if isinstance(other, Params):
            return {k: v for k, (_, v) in self._items.items()} == {
                k: v for k, (_, v) in other._items.items()}
        if isinstance(other, Mapping):
            return self == Params(other)
        return NotImplemented

    def __hash__(self):
        return hash(frozenset((k, v) for k, (_, v) in self._items.items()))

    def __repr__(self) -> str:
        return f"Params({dict(self._items.values())!r})"

    def with_(self, **changes: str | None) -> "Params":
        """A copy with parameters added or replaced (``None`` = a parameter without value)."""
        store = dict(self._items)
        for name, value in changes.items():
            old = store.get(name.lower())
            store[name.lower()] = (old[0] if old else name, None if value is None else str(value))
        return Params._from_store(store)

    def without(self, *names: str) -> "Params":
        store = dict(self._items)
        for name in names:
            store.pop(name.lower(), None)
        return Params._from_store(store)

    def format(self, safe: frozenset | None = None, sep: str = ";") -> str:
        """``;a=1;b`` (URI parameters are %-escaped when ``safe`` is given)."""
        parts = []
        for name, value in self._items.values():
            if safe is not None:
                name = percent_encode(name, safe)
                if value is not None:
                    value = percent_encode(value, safe)
            parts.append(name if value is None else f"{name}={value}")
        return "".join(sep + p for p in parts) if sep == ";" else sep.join(parts)


# ---------------------------------------------------------------------------------------------
# Hosts

# hostname = *( domainlabel "." ) toplabel [ "." ]; a toplabel starts with a letter, which is
# what tells "example.com" from a (possibly bad) IPv4 address.
_HOSTNAME_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
                          r"[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?")
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
# The usual dotted quad (ASCII, every octet 0-255) in one match, without splitting it.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_USUAL_IPV4_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def check_host(host: str, where: str = "URI") -> str:
    """Validate a hostname, IPv4 address or ``[IPv6]`` reference (RFC 3261 §25.1 ``host``)."""
    if _USUAL_IPV4_RE.fullmatch(host) is not None:
        return host
    if not host:
        raise ParseError(f"empty host in {where}")
    if host[0] == "[":
        if host[-1] != "]":
            raise ParseError(f"unterminated IPv6 reference in {where}: {host!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ParseError(f"bad IPv6 address in {where}: {host!r}") from None
        return host
    if _IPV4_RE.fullmatch(host):
        if any(int(octet) > 255 for octet in host.split(".")):
            raise ParseError(f"bad IPv4 address in {where}: {host!r}")
        return host
    if not _HOSTNAME_RE.fullmatch(host):
        raise ParseError(f"bad host in {where}: {host!r}")
    return host


def _check_port(text: str, where: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"bad port in {where}: {text!r}")
    port = int(text)
    if port > 65535:
        raise ParseError(f"port out of range in {where}: {port}")
    return port


def usual_checks(text: str, host: str, port: str | None) -> int | None:
    """What a ``SIP_USUAL`` match of URI ``text`` leaves to check: a host that is not a plain
    name (IP address, '-' or '..' in it) and the port's range.  Returns the port as an int."""
    if host[-1].isdigit() or host[0] in ".-" or "-" in host or ".." in host:
        check_host(host, f"URI {text!r}")
    return None if port is None else _uri_port(port, text)


def _uri_port(digits: str, text: str) -> int:
    """The port of URI ``text`` from digits its grammar already matched: only the range is left."""
    port = int(digits)
    if port > 65535:
        raise ParseError(f"port out of range in URI {text!r}: {port}")
    return port


# ---------------------------------------------------------------------------------------------
# URIs

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# sip:user:password@host:port;params?headers — the user part may itself hold ';' and '?'
# (user-unreserved), so it is recognised by the '@' that ends it.
_SIP_RE = re.compile(
    r"(?:([^@:]*)(?::([^@]*))?@)?"            # userinfo
    r"(\[[^\]]*\]|[^:;?\[\]]*)"                 # host
    r"(?::([^;?]*))?"                          # port
    r"((?:;[^?]*)?)"                           # ;params
    r"(?:\?(.*))?\Z", re.S)                    # ?headers
# Characters never allowed unescaped anywhere in a URI (RFC 3986 "excluded" + controls).
_FORBIDDEN_RE = re.compile(r'[\x00-\x20\x7f<>"\\^`{|}]')
# The common, fully valid case in one match (anything else goes to _parse_slow, which accepts
# the rarer valid forms or explains the error).  Character classes are RFC 3261 §25.1's.
_SIP_FAST_RE = re.compile(
    r"(sips?|SIPS?):"
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/%]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,%]*))?@)?"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)"
    r"(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]*)?)*)"
    r"(?:\?([A-Za-z0-9\-_.!~*'()\[\]/:?+$%=&]*))?\Z")
# The most usual shape of all — sip:[user@]host[:port][;params], no %-escapes, no password,
# no ?headers — with fewer groups to fill.
# Five groups: scheme, user, host, port, ;params.  headers.py embeds the same pattern in its
# name-addr one, so that ``<sip:...>`` needs a single match (``SipURI._from_usual``).
# Possessive quantifiers (``++``, ``*+``: no backtracking state kept, ~20 % faster matching)
# wherever what follows a run cannot be taken by the run's class, so they match what ``+``/``*``
# would.
SIP_USUAL = (
    r"(sips?):"
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]++)@)?"
    r"([A-Za-z0-9.\-]++)"
    r"(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]*+)?)*+)")
_SIP_USUAL_RE = re.compile(SIP_USUAL + r"\Z")
_PARAM_NAME_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+")
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]*")


def _comparable(other, cls):
    """For ``__eq__``: a string compares as the URI it spells; anything else unchanged.
    Returns False when a string is no URI (or another kind), NotImplemented for non-URIs."""
    if isinstance(other, str):
        try:
            other = parse_uri(other)
        except ParseError:
            return False
        return other if isinstance(other, cls) else False
    return other if isinstance(other, cls) else NotImplemented


class SipURI:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1).

    Attributes hold decoded text: ``scheme`` ('sip'/'sips', lower case), ``user``,
    ``password`` (``None`` when absent), ``host`` (IPv6 with its brackets), ``port``
    (``None`` when absent — which is *not* the same URI as an explicit :5060), ``params``
    and ``headers`` (``Params``).
    """

    __slots__ = ("scheme", "user", "password", "host", "port", "_params", "_params_text",
                 "headers", "_text")

    def __init__(self, host: str, user: str | None = None, port: int | None = None,
                 params: Mapping | Iterable | None = None, headers: Mapping | Iterable | None = None,
                 password: str | None = None, scheme: str = "sip"):
        scheme = scheme.lower()
        if scheme not in ("sip", "sips"):
            raise ValueError(f"SipURI scheme must be 'sip' or 'sips', not {scheme!r}")
        check_host(host)
        if port is not None and not 0 <= int(port) <= 65535:
            raise ValueError(f"port out of range: {port}")
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = None if port is None else int(port)
        self._params = params if isinstance(params, Params) else Params(params)
        self.headers = headers if isinstance(headers, Params) else Params(headers)
        self._text = None

    @classmethod
    def parse(cls, text: str) -> "SipURI":
        """Parse a sip:/sips: URI; raise ParseError saying what is wrong."""
        m = _SIP_USUAL_RE.match(text)
        if m is not None:
            return cls._from_usual(text, *m.groups())
        m = _SIP_FAST_RE.match(text)
        if m is None:
            return cls._parse_slow(text)
        scheme, user, password, host, port, params, headers = m.groups()
        if user is not None:
            if "%" in user:
                user = percent_decode(user, "URI user part")
            if password is not None and "%" in password:
                password = percent_decode(password, "URI password")
        if host[-1].isdigit() or host[0] in "[.-" or "-" in host or ".." in host:
            check_host(host, f"URI {text!r}")
        if port is not None:
            port = _uri_port(port, text)
        uri = cls.__new__(cls)
        uri.scheme = scheme.lower()
        uri.user = user
        uri.password = password
        uri.host = host
        uri.port = port
        # URI parameters are read far less often than parsed: keep the (already validated)
        # text and split it on first access of .params.
        uri._params = None if params else _EMPTY
        uri._params_text = params
        uri.headers = _parse_uri_headers(headers, text) if headers is not None else _EMPTY
        uri._text = text
        return uri

    @classmethod
    def _from_usual(cls, text: str, scheme: str, user: str | None, host: str, port: str | None,
                    params: str) -> "SipURI":
        """The URI from the groups of a ``SIP_USUAL`` match of ``text``."""
        port = usual_checks(text, host, port)
        uri = _new_uri(cls)
        uri.scheme = scheme
        uri.user = user
        uri.password = None
        uri.host = host
        uri.port = port
        # URI parameters are read far less often than parsed: keep the (already validated)
        # text and split it on first access of .params.
        uri._params = None if params else _EMPTY
        uri._params_text = params
        uri.headers = _EMPTY
        uri._text = text
        return uri

    @classmethod
    def _parse_slow(cls, text: str) -> "SipURI":
        """The general parser: accepts what the fast pattern does not, or says what is wrong."""
        colon = text.find(":")
        scheme = text[:colon].lower() if colon > 0 else ""
        if scheme not in ("sip", "sips"):
            raise ParseError(f"not a SIP URI: {text!r}")
        if _FORBIDDEN_RE.search(text):
            raise ParseError(f"forbidden character in URI {text!r}")
        m = _SIP_RE.match(text, colon + 1)
        if m is None:
            raise ParseError(f"bad SIP URI {text!r} (unbalanced '[' ']'?)")
        user, password, host, port, params, headers = m.groups()
        if user is not None:
            if not user:
                raise ParseError(f"empty user part in URI {text!r}")
            if "%" in user:
                user = percent_decode(user, "URI user part")
            if password is not None and "%" in password:
                password = percent_decode(password, "URI password")
        if not host or host[0] == "[" or not _HOSTNAME_RE.fullmatch(host):
            check_host(host, f"URI {text!r}")
        uri = cls.__new__(cls)
        uri.scheme = scheme
        uri.user = user
        uri.password = password
        uri.host = host
        uri.port = None if port is None else _check_port(port, f"URI {text!r}")
        uri._params = _parse_uri_params(params, text) if params else _EMPTY
        uri.headers = _parse_uri_headers(headers, text) if headers is not None else _EMPTY
        uri._text = text
        return uri

    @property
    def params(self) -> Params:
        params = self._params
        if params is None:
            params = self._params = _parse_uri_params(self._params_text, self._text, True)
        return params

    def replace(self, **changes) -> "SipURI":
        """A copy with some components changed, e.g. ``uri.replace(port=5062, params={})``."""
        values = {k: getattr(self, k) for k in
                  ("host", "user", "port", "params", "headers", "password", "scheme")}
        values.update(changes)
        return SipURI(**values)

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def aor(self) -> str:
        """Address of record: scheme, user and host only (what a registrar keys on)."""
        user = "" if self.user is None else percent_encode(self.user, USER_SAFE) + "@"
        return f"{self.scheme}:{user}{self.host.lower()}"

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._format()
            self._text = text
        return text

    def _format(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(percent_encode(self.user, USER_SAFE))
            if self.password is not None:
                parts += [":", percent_encode(self.password, PASSWORD_SAFE)]
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        if self.params:
            parts.append(self.params.format(PARAM_SAFE))
        if self.headers:
            parts += ["?", self.headers.format(HEADER_SAFE, "&")]
        return "".join(parts)

    def __repr__(self) -> str:
        return f"SipURI({str(self)!r})"

    def __eq__(self, other) -> bool:
        """RFC 3261 §19.1.4: user/password case-sensitive, the rest case-insensitive; a
        parameter present in both must match; user, ttl, method, maddr and transport must
        not appear in only one; URI headers must match exactly as a set."""
        other = _comparable(other, SipURI)
        if not isinstance(other, SipURI):
            return other   # False (a string that is not this kind of URI) or NotImplemented
        if (self.scheme != other.scheme or self.user != other.user
                or self.password != other.password or self.port != other.port
                or self.host.lower() != other.host.lower()):
            return False
        mine, theirs = self.params._items, other.params._items  # noqa: SLF001
        for key in mine.keys() | theirs.keys():
            a, b = mine.get(key), theirs.get(key)
            if a is None or b is None:
                if key in _MUST_MATCH_PARAMS:
                    return False
                continue
            if (a[1] or "").lower() != (b[1] or "").lower():
                return False
        mine, theirs = self.headers._items, other.headers._items
        if mine.keys() != theirs.keys():
            return False
        return all((mine[k][1] or "").lower() == (theirs[k][1] or "").lower() for k in mine)

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, self.host.lower(), self.port))


_new_uri = SipURI.__new__
_MUST_MATCH_PARAMS = frozenset(("user", "ttl", "method", "maddr", "transport"))
_EMPTY = Params()


def _parse_uri_params(text: str, uri: str, checked: bool = False) -> Params:
    """``;a=1;b`` of a URI; ``checked`` when a pattern already validated the characters."""
    store = {}
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        if not checked and (not name or not _PARAM_NAME_RE.fullmatch(name)
                            or (eq and not _PARAM_VALUE_RE.fullmatch(value))):
            raise ParseError(f"bad parameter {part!r} in URI {uri!r}")
        if "%" in part:
            name = percent_decode(name, "URI parameter")
            value = percent_decode(value, "URI parameter")
        store[name.lower()] = (name, value if eq else None)
    return Params._from_store(store)


def _parse_uri_headers(text: str, uri: str) -> Params:
    store = {}
    if not text:
        return Params._from_store(store)
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not name or not eq:
            raise ParseError(f"bad header {part!r} in URI {uri!r} (want name=value)")
        name = percent_decode(name, "URI header")
        store[name.lower()] = (name, percent_decode(value, "URI header"))
    return Params._from_store(store)


_TEL_RE = re.compile(r"(\+?[0-9A-Fa-f*#\-.()]+)((?:;[^;]+)*)\Z")
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


class TelURI:
    """A ``tel:`` URI (RFC 3966): ``number`` as written, ``params``; compares without the
    visual separators ``-.()`` and with parameters as an unordered set."""

    __slots__ = ("number", "params", "_text")

    def __init__(self, number: str, params: Mapping | Iterable | None = None):
        if not _TEL_RE.match(number):
            raise ValueError(f"bad telephone number {number!r}")
        self.number = number
        self.params = params if isinstance(params, Params) else Params(params)
        self._text = None

    @classmethod
    def parse(cls, text: str) -> "TelURI":
        if text[:4].lower() != "tel:":
            raise ParseError(f"not a tel URI: {text!r}")
        m = _TEL_RE.match(text, 4)
        if m is None or _FORBIDDEN_RE.search(text):
            raise ParseError(f"bad tel URI {text!r}")
        uri = cls.__new__(cls)
        uri.number = m.group(1)
        uri.params = _parse_uri_params(m.group(2), text) if m.group(2) else _EMPTY
        uri._text = text
        return uri

    scheme = property(lambda self: "tel")

    @property
    def global_number(self) -> bool:
        return self.number.startswith("+")

    def __str__(self) -> str:
        if self._text is None:
            self._text = "tel:" + self.number + self.params.format(PARAM_SAFE)
        return self._text

    def __repr__(self) -> str:
        return f"TelURI({str(self)!r})"

    def __eq__(self, other) -> bool:
        other = _comparable(other, TelURI)
        if not isinstance(other, TelURI):
            return other   # False (a string that is not this kind of URI) or NotImplemented
        norm = lambda n: n.translate(_VISUAL_SEPARATORS).lower()  # noqa: E731
        return (norm(self.number) == norm(other.number)
                and {k: (v or "").lower() for k, (_, v) in self.params._items.items()}
                == {k: (v or "").lower() for k, (_, v) in other.params._items.items()})

    def __hash__(self) -> int:
        return hash(self.number.translate(_VISUAL_SEPARATORS).lower())


class AbsoluteURI:
    """Any other scheme (``http:``, ``urn:``, ``im:`` …) — kept as text, not an error (the
    grammar allows absoluteURI wherever a Request-URI or name-addr is expected).
    ``scheme`` is lower case; ``str()`` gives the text as written."""

    __slots__ = ("scheme", "rest", "_text")

    def __init__(self, scheme: str, rest: str):
        self.scheme = scheme.lower()
        self.rest = rest
        self._text = f"{scheme}:{rest}"

    @classmethod
    def parse(cls, text: str) -> "AbsoluteURI":
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME_RE.fullmatch(scheme):
            raise ParseError(f"bad URI {text!r} (want scheme:...)")
        if not rest or _FORBIDDEN_RE.search(rest):
            raise ParseError(f"bad URI {text!r}")
        return cls(scheme, rest)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"AbsoluteURI({self._text!r})"

    def __eq__(self, other) -> bool:
        other = _comparable(other, AbsoluteURI)
        if not isinstance(other, AbsoluteURI):
            return other   # False (a string that is not this kind of URI) or NotImplemented
        return self.scheme == other.scheme and self.rest == other.rest

    def __hash__(self) -> int:
        return hash((self.scheme, self.rest))


URI = SipURI | TelURI | AbsoluteURI


def parse_uri(text: str) -> URI:
    """Parse any URI: sip/sips -> SipURI, tel -> TelURI, other schemes -> AbsoluteURI."""
    scheme = text[:5].lower()
    if scheme.startswith("sip:") or scheme == "sips:":
        return SipURI.parse(text)
    if scheme.startswith("tel:"):
        return TelURI.parse(text)
    return AbsoluteURI.parse(text)
