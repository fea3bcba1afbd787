"""MIME multipart bodies in SIP messages (RFC 2046 §5.1 as RFC 5621 §4 uses it).

Why: real INVITEs carry more than SDP.  PSTN gateways send SIP-I/SIP-T (RFC 3204):
multipart/mixed with application/sdp and the ISUP message; location conveyance (RFC 6442)
adds application/pidf+xml.  A PBX has to find the session description among the parts.

SIP is 8-bit clean (RFC 5621 §3.1): parts are bytes as received, never transfer-decoded, and
may hold NUL, CR and LF.  A delimiter is CRLF ``--boundary`` (the CRLF belongs to it), so a
part's body keeps every byte up to that CRLF.  Parsing is sans-I/O and strict: malformed input
raises ``ParseError`` saying which part and what is wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .headers import TOKEN, parse_params, unquote
from .randomness import random_hex
from .uri import Params, ParseError

__all__ = ["BodyPart", "parse_multipart", "build_multipart", "session_part", "session_body",
           "MAX_DEPTH"]

MAX_DEPTH = 8     # multipart inside multipart this deep at most: a hostile body cannot recurse
_EMPTY = Params()
# RFC 2046 §5.1.1: 1-70 of bchars, the last one not a space
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_BARE_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'+_\-.]+")   # needs no quotes (MIME token chars)
_HEADER_RE = re.compile(rb"([!-9;-~]+)[ \t]*:[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN_RE = re.compile(TOKEN)
_FOLD_RE = re.compile(rb"\r\n(?=[ \t])")
_PADDING = b" \t"
_IDENTITY_ENCODINGS = frozenset(("7bit", "8bit", "binary"))


@dataclass(frozen=True, slots=True)
class BodyPart:
    """One body part: its Content-Type value as written ("" when it has none), its body bytes,
    its other headers in order (Content-Disposition, Content-ID …), and, for a multipart/*
    part, the parts inside it."""

    content_type: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    parts: tuple["BodyPart", ...] = ()

    @classmethod
    def nested(cls, parts, boundary: str | None = None, subtype: str = "mixed",
               headers: tuple[tuple[str, str], ...] = ()) -> "BodyPart":
        """A multipart/* part holding ``parts`` (built with ``build_multipart``)."""
        content_type, body = build_multipart(parts, boundary, subtype)
        return cls(content_type, body, tuple(headers), tuple(parts))

    @property
    def media_type(self) -> str:
        """``type/subtype`` in lower case, no parameters; text/plain when the part has no
        Content-Type (RFC 2046 §5.1)."""
        return _media_type(self.content_type) or "text/plain"

    @property
    def params(self) -> Params:
        """The Content-Type parameters (``boundary``, ``version`` …), values unquoted."""
        return _type_params(self.content_type)[1] if ";" in self.content_type else _EMPTY

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), Content-Type included."""
        key = name.lower()
        if key == "content-type":
            return self.content_type or default
        for hname, value in self.headers:
            if hname.lower() == key:
                return value
        return default

    @property
    def disposition(self) -> str | None:
        """The Content-Disposition type in lower case (``session``, ``signal`` …), or None."""
        value = self.header("Content-Disposition")
        return None if value is None else value.split(";", 1)[0].strip().lower()

    @property
    def transfer_encoding(self) -> str:
        """Content-Transfer-Encoding in lower case; 7bit when absent (RFC 2045 §6.1)."""
        return (self.header("Content-Transfer-Encoding") or "7bit").strip().lower()


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _type_params(content_type: str) -> tuple[str, Params]:
    """``multipart/mixed;boundary="a b"`` -> ("multipart/mixed", {boundary: "a b"})."""
    media, sep, rest = content_type.partition(";")
    params = parse_params(sep + rest, "Content-Type")
    unquoted = [(name, unquote(value) if value and value[:1] == '"' else value)
                for name, value in params.items()]
    return media.strip().lower(), Params(unquoted)


# ---------------------------------------------------------------------------------------------
# parsing

def parse_multipart(content_type: str, body: bytes) -> list[BodyPart]:
    """The parts of a multipart/* body whose Content-Type value is ``content_type``.

    Preamble and epilogue are ignored; a part that is multipart itself is parsed into
    ``.parts``.  Raises ParseError for a missing or bad boundary, a missing first or closing
    delimiter, a part whose headers do not end with an empty line, a bad header line."""
    return _parse(content_type, body, "")


def _parse(content_type: str, body: bytes, path: str) -> list[BodyPart]:
    """``path`` names the multipart being read in errors: "" at the top, "2." in part 2."""
    where = f"part {path[:-1]}: " if path else ""
    media, params = _type_params(content_type)
    if not media.startswith("multipart/"):
        raise ParseError(f"{where}not a multipart Content-Type: {content_type!r}")
    if path.count(".") >= MAX_DEPTH:
        raise ParseError(f"{where}multipart nested deeper than {MAX_DEPTH} levels")
    boundary = params.get("boundary")
    if boundary is None:
        raise ParseError(f"{where}{media} without a boundary parameter")
    if _BOUNDARY_RE.fullmatch(boundary) is None:
        raise ParseError(f"{where}bad boundary {boundary!r} (1 to 70 characters of RFC 2046 "
                         "bchars, not ending in a space)")
    dash = b"--" + boundary.encode()
    delimiter = b"\r\n" + dash
    text = b"\r\n" + body          # the first delimiter may open the body: no CRLF before it
    parts = []
    pos = _next_delimiter(text, delimiter, 0)
    if pos < 0:
        if re.search(rb"(?<!\r)\n" + re.escape(dash), text):
            raise ParseError(f"{where}lines must end with CRLF (found bare LF before "
                             f"{dash.decode()!r})")
        raise ParseError(f"{where}no delimiter line {dash.decode()!r} in the body")
    while True:
        start = pos + len(delimiter)
        if text.startswith(b"--", start):    # close-delimiter: the epilogue follows, ignored
            return parts
        start = text.index(b"\r\n", start) + 2     # _next_delimiter checked padding + CRLF
        end = _next_delimiter(text, delimiter, start)
        if end < 0:
            raise ParseError(f"{where}no closing delimiter {dash.decode() + '--'!r}")
        parts.append(_part(text[start:end], f"{path}{len(parts) + 1}"))
        pos = end


def _next_delimiter(text: bytes, delimiter: bytes, pos: int) -> int:
    """Where the next delimiter line starts (CRLF --boundary, then ``--`` or optional blanks
    and CRLF), or -1.  ``--boundary`` followed by anything else is part content."""
    size = len(delimiter)
    while True:
        pos = text.find(delimiter, pos)
        if pos < 0:
            return -1
        after = pos + size
        if text.startswith(b"--", after):
            return pos
        line_end = text.find(b"\r\n", after)
        if line_end >= 0 and not text[after:line_end].strip(_PADDING):
            return pos
        pos = after


def _part(raw: bytes, path: str) -> BodyPart:
    """One body-part: MIME headers, an empty line, the body (RFC 2046 §5.1.1)."""
    where = f"part {path}: "
    if not raw or raw.startswith(b"\r\n"):   # no headers: defaults apply
        return BodyPart("", raw[2:])
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        raise ParseError(f"{where}no empty line (CRLFCRLF) after its headers")
    content_type, headers = None, []
    for line in _FOLD_RE.sub(b"", raw[:end]).split(b"\r\n"):
        m = _HEADER_RE.fullmatch(line)
        if m is None:
            raise ParseError(f"{where}bad header line {line[:40]!r}")
        try:
            name, value = m.group(1).decode("ascii"), m.group(2).decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(f"{where}header {m.group(1)[:40]!r} is not UTF-8") from None
        if name.lower() != "content-type":
            headers.append((name, value))
        elif content_type is None:
            content_type = value
        else:
            raise ParseError(f"{where}more than one Content-Type")
    body = raw[end + 4:]
    part = BodyPart(content_type or "", body, tuple(headers))
    if part.media_type.startswith("multipart/"):
        inner = _parse(content_type, body, path + ".")
        part = BodyPart(part.content_type, body, part.headers, tuple(inner))
    return part


# ---------------------------------------------------------------------------------------------
# building

def build_multipart(parts, boundary: str | None = None,
                    subtype: str = "mixed") -> tuple[str, bytes]:
    """``(Content-Type value, body)`` of a multipart/``subtype`` body holding ``parts``
    (BodyPart each).  A random boundary is chosen unless given; ValueError when a given
    boundary occurs inside a part, or a part has a bad header."""
    if not _TOKEN_RE.fullmatch(subtype):
        raise ValueError(f"bad multipart subtype {subtype!r}")
    encoded = [_encode(part, n) for n, part in enumerate(parts, 1)]
    if boundary is None:
        boundary = "labkit-" + random_hex(12)
        while any(b"--" + boundary.encode() in e for e in encoded):   # pragma: no cover
            boundary = "labkit-" + random_hex(12)
    elif _BOUNDARY_RE.fullmatch(boundary) is None:
        raise ValueError(f"bad boundary {boundary!r} (1 to 70 RFC 2046 bchars, no final space)")
    dash = b"--" + boundary.encode()
    for n, e in enumerate(encoded, 1):
        if dash in e:
            raise ValueError(f"boundary {boundary!r} occurs inside part {n}")
    body = b"".join(dash + b"\r\n" + e + b"\r\n" for e in encoded) + dash + b"--\r\n"
    param = boundary if _BARE_BOUNDARY_RE.fullmatch(boundary) else f'"{boundary}"'
    return f"multipart/{subtype};boundary={param}", body


def _encode(part: BodyPart, n: int) -> bytes:
    """A part's headers, the empty line and its body."""
    lines = [("Content-Type", part.content_type)] if part.content_type else []
    for name, value in part.headers:
        if not _TOKEN_RE.fullmatch(name):
            raise ValueError(f"part {n}: bad header name {name!r}")
        if name.lower() == "content-type":
            raise ValueError(f"part {n}: Content-Type goes in BodyPart.content_type, not headers")
        lines.append((name, value))
    for name, value in lines:
        if _CTL_RE.search(value) or value != value.strip(" \t"):
            raise ValueError(f"part {n}: {name} value {value!r} has control or outer blank "
                             "characters")
    head = "".join(f"{name}: {value}\r\n" for name, value in lines)
    return head.encode() + b"\r\n" + part.body


# ---------------------------------------------------------------------------------------------
# finding the session description

def session_part(parts, alternative: bool = False) -> BodyPart | None:
    """The application/sdp part that describes the session: the first one, depth first, whose
    Content-Disposition is ``session`` or absent (RFC 3261 §20.11, RFC 5621 §3.3) and whose
    bytes are not transfer-encoded.  In multipart/alternative the last alternative is the
    preferred one (RFC 2046 §5.1.4), so ``alternative`` parts are tried from the end."""
    for part in (reversed(parts) if alternative else parts):
        if part.parts:
            found = session_part(part.parts, part.media_type == "multipart/alternative")
            if found is not None:
                return found
        elif (part.media_type == "application/sdp" and part.disposition in (None, "session")
              and part.transfer_encoding in _IDENTITY_ENCODINGS):
            return part
    return None


def unsupported_required(parts, understood: frozenset[str]) -> BodyPart | None:
    """The first part, depth first, that a UAS understanding only the media types in
    ``understood`` (multipart containers are walked into) must refuse with 415 (RFC 5621 §5, RFC
    3261 §20.11): one it does not understand whose Content-Disposition ``handling`` is
    ``required`` -- the default when the parameter is absent. None when every such part may be
    ignored (``handling=optional``, as SIP-I gateways mark their ISUP)."""
    for part in parts:
        if part.parts:
            found = unsupported_required(part.parts, understood)
            if found is not None:
                return found
        elif part.media_type not in understood and handling(part.header("Content-Disposition")) == "required":
            return part
    return None


def handling(disposition: str | None) -> str:
    """The ``handling`` parameter of a Content-Disposition value in lower case: ``required``
    when the header or the parameter is absent (RFC 3261 §20.11)."""
    if disposition is None or ";" not in disposition:
        return "required"
    return (_type_params(disposition)[1].get("handling") or "required").lower()


def session_body(message) -> bytes:
    """The session description bytes a SIP message carries, for an SDP offer/answer: its body,
    unless that is multipart/*, then the session part's (b"" when no part is one, as for an
    INVITE without offer).  ParseError when the multipart body is malformed."""
    media = message.content_type or ""
    if not media.startswith("multipart/"):
        return message.body
    part = session_part(message.parts, media == "multipart/alternative")
    return b"" if part is None else part.body
