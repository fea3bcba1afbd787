"""SDP session descriptions: parse and build (RFC 8866, formerly RFC 4566).

Introduced in notebook 01.  ``SessionDescription.parse(text)`` reads every line into a model
(origin, connection, timing, media sections with their attributes) and ``str(sd)`` writes it
back in the order RFC 8866 §5 prescribes, so ``parse(str(sd)) == sd``.  Media sections answer
the questions an offer/answer engine (RFC 3264) asks: which payload types (``formats``), what
they are (``rtpmap``, ``fmtp``), packet time (``ptime``), direction, and where to send
(``address`` / ``rtp_port`` — falling back to the session-level ``c=``).
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .uri import ParseError

__all__ = ["SessionDescription", "Media", "Origin", "Connection", "RtpMap", "Timing",
           "DIRECTIONS"]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class Origin(NamedTuple):
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>``."""

    username: str
    session_id: str
    session_version: int
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def parse(cls, value: str) -> "Origin":
        parts = value.split()
        if len(parts) != 6 or not parts[1].isdigit() or not parts[2].isdigit() \
                or not parts[2].isascii():
            raise ValueError(f"bad origin {value!r} "
                             f"(want: user sess-id sess-version IN IP4 address)")
        return tuple.__new__(cls, (parts[0], parts[1], int(parts[2]), parts[3], parts[4], parts[5]))

    def __str__(self) -> str:
        return " ".join(map(str, self))


class Connection(NamedTuple):
    """``c=IN IP4 <address>[/<ttl>][/<count>]`` (ttl only for IPv4 multicast)."""

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    count: int | None = None

    @classmethod
    def parse(cls, value: str) -> "Connection":
        parts = value.split(" ")
        if len(parts) == 3 and "/" not in parts[2] and parts[2]:   # the usual unicast form
            return tuple.__new__(cls, (parts[0], parts[1], parts[2], None, None))
        parts = value.split()
        if len(parts) != 3:
            raise ValueError(f"bad connection {value!r} (want: IN IP4 address)")
        address, *extra = parts[2].split("/")
        if not address or len(extra) > 2 or not all(e.isdigit() for e in extra):
            raise ValueError(f"bad connection address {parts[2]!r}")
        numbers = [int(e) for e in extra]
        if parts[1].upper() == "IP6":  # IPv6 multicast has a count but no TTL
            ttl, count = None, (numbers[0] if numbers else None)
        else:
            ttl = numbers[0] if numbers else None
            count = numbers[1] if len(numbers) > 1 else None
        return cls(parts[0], parts[1], address, ttl, count)

    def __str__(self) -> str:
        text = f"{self.nettype} {self.addrtype} {self.address}"
        if self.ttl is not None:
            text += f"/{self.ttl}"
        if self.count is not None:
            text += f"/{self.count}"
        return text


class RtpMap(NamedTuple):
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]``."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        text = f"{self.payload_type} {self.encoding}/{self.clock_rate}"
        return text if self.channels is None else f"{text}/{self.channels}"


class Timing(NamedTuple):
    """``t=<start> <stop>`` (NTP seconds; 0 0 = unbounded) and its ``r=`` repeat lines."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


_UNBOUNDED = Timing(0, 0)
_tuple_new = tuple.__new__
_new_media = object.__new__


class _Attributes:
    """Attribute helpers shared by the session and media levels."""

    __slots__ = ()
    attributes: list[tuple[str, str | None]]

    def get_attribute(self, name: str) -> str | None:
        """The value of the first ``a=name[:value]`` ('' for a flag), None when absent."""
        for attr, value in self.attributes:
            if attr == name:
                return "" if value is None else value
        return None

    def get_attributes(self, name: str) -> list[str]:
        return ["" if v is None else v for a, v in self.attributes if a == name]

    def add_attribute(self, name: str, value: str | None = None) -> None:
        self.attributes.append((name, value))

    def remove_attribute(self, name: str) -> None:
        self.attributes = [(a, v) for a, v in self.attributes if a != name]

    def _own_direction(self) -> str | None:
        for attr, _ in self.attributes:
            if attr in DIRECTIONS:
                return attr
        return None

    def set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        self.attributes = [(a, v) for a, v in self.attributes if a not in DIRECTIONS]
        self.attributes.append((direction, None))


class Media(_Attributes):
    """One ``m=`` section: ``kind`` ('audio'), ``port``, ``port_count``, ``proto``
    ('RTP/AVP'), ``formats`` (payload types as strings, in preference order), its own
    ``connection`` (None = use the session's), ``bandwidths``, ``attributes``; ``session`` is
    the session level it falls back to (its ``connection`` and ``attributes``), None until the
    media is added to a session."""

    __slots__ = ("kind", "port", "port_count", "proto", "formats", "info", "connection",
                 "bandwidths", "key", "attributes", "session")

    def __init__(self, kind: str, port: int, proto: str = "RTP/AVP", formats=(),
                 connection: Connection | None = None, attributes=(), port_count: int | None = None):
        self.kind = kind
        self.port = int(port)
        self.port_count = port_count
        self.proto = proto
        self.formats = [str(f) for f in formats]
        self.info: str | None = None
        self.connection = connection
        self.bandwidths: list[tuple[str, int]] = []
        self.key: str | None = None
        self.attributes: list[tuple[str, str | None]] = list(attributes)
        self.session: _SessionLevel | None = None   # set when added to a session

    @property
    def rtpmap(self) -> dict[int, RtpMap]:
        """``a=rtpmap`` lines by payload type (static types without one are not listed)."""
        out = {}
        for attr, value in self.attributes:
            if attr == "rtpmap" and value:
                pt, _, spec = value.partition(" ")
                parts = spec.strip().split("/")
                if pt.isdigit() and len(parts) >= 2 and parts[1].isdigit():
                    channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
                    out[int(pt)] = RtpMap(int(pt), parts[0], int(parts[1]), channels)
        return out

    @property
    def fmtp(self) -> dict[int, str]:
        """``a=fmtp`` parameters by payload type, e.g. {101: '0-16'}."""
        out = {}
        for attr, value in self.attributes:
            if attr == "fmtp" and value:
                pt, _, params = value.partition(" ")
                if pt.isdigit():
                    out[int(pt)] = params.strip()
        return out

    @property
    def ptime(self) -> int | None:
        value = self.get_attribute("ptime")
        try:
            return None if value is None else int(float(value))
        except ValueError:
            return None

    @property
    def direction(self) -> str:
        """sendrecv / sendonly / recvonly / inactive: the media's own, else the session's,
        else sendrecv (RFC 8866 §6.7)."""
        own = self._own_direction()
        if own is None and self.session is not None:
            own = self.session._own_direction()
        return own or "sendrecv"

    @property
    def address(self) -> str | None:
        """Where this media goes: the media-level c= address, else the session-level one."""
        conn = self.connection or (self.session.connection if self.session else None)
        return conn.address if conn else None

    @property
    def payload_types(self) -> list[int]:
        return [int(f) for f in self.formats if f.isdigit()]

    def _lines(self, out: list[str]) -> None:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        out.append(f"m={self.kind} {port} {self.proto}" +
                   "".join(" " + f for f in self.formats))
        if self.info is not None:
            out.append(f"i={self.info}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={t}:{v}" for t, v in self.bandwidths]
        if self.key is not None:
            out.append(f"k={self.key}")
        out += [f"a={a}" if v is None else f"a={a}:{v}" for a, v in self.attributes]

    def __repr__(self) -> str:
        return f"<Media {self.kind} {self.port} {self.proto} {' '.join(self.formats)}>"


class _SessionLevel(_Attributes):
    """The session-level c= and a= lines, which every media section falls back to.  A media
    holds this rather than its SessionDescription: a back-reference from media to session
    would make every parsed body a reference cycle, freed only by the cyclic GC."""

    __slots__ = ("connection", "attributes")


class SessionDescription(_Attributes):
    """A whole SDP body.  Build one with ``SessionDescription(origin=..., connection=...)``
    and ``add_media(Media(...))``, or parse one; ``str()`` / ``bytes()`` write it (CRLF)."""

    # _start: the usual start's match, from which ``origin`` is built on first read
    __slots__ = ("version", "_origin", "_start", "name", "info", "uri", "emails", "phones",
                 "_level", "bandwidths", "times", "timezones", "key", "media")

    def __init__(self, origin: Origin | None = None, name: str = "-",
                 connection: Connection | None = None, media=(), version: int = 0):
        self.version = version
        self._level = _new_level(_SessionLevel)
        self.origin = origin or Origin("-", "0", 0, "IN", "IP4", "0.0.0.0")
        self.name = name
        self.info: str | None = None
        self.uri: str | None = None
        self.emails: list[str] = []
        self.phones: list[str] = []
        self.connection = connection
        self.bandwidths: list[tuple[str, int]] = []
        self.times: list[Timing] = [Timing()]
        self.timezones: str | None = None
        self.key: str | None = None
        self.attributes: list[tuple[str, str | None]] = []
        self.media: list[Media] = []
        for m in media:
            self.add_media(m)

    @property
    def origin(self) -> Origin | None:
        origin = self._origin
        if origin is None and self._start is not None:
            user, session_id, version, nettype, addrtype, address = self._start.group(
                1, 2, 3, 4, 5, 6)
            origin = self._origin = _tuple_new(Origin, (user, session_id, int(version), nettype,
                                                        addrtype, address))
        return origin

    @origin.setter
    def origin(self, value: Origin | None) -> None:
        self._origin = value
        self._start = None

    @property
    def connection(self) -> Connection | None:
        return self._level.connection

    @connection.setter
    def connection(self, value: Connection | None) -> None:
        self._level.connection = value

    @property
    def attributes(self) -> list[tuple[str, str | None]]:
        return self._level.attributes

    @attributes.setter
    def attributes(self, value: list[tuple[str, str | None]]) -> None:
        self._level.attributes = value

    def add_media(self, media: Media) -> Media:
        media.session = self._level
        self.media.append(media)
        return media

    @classmethod
    def parse(cls, text: str | bytes) -> "SessionDescription":
        """Parse an SDP body; raise ParseError naming the line and what is wrong with it."""
        if text.__class__ is not str:
            if not isinstance(text, (bytes, bytearray)):
                raise TypeError(f"SDP must be str or bytes, not {type(text).__name__}")
            try:
                text = text.decode()
            except UnicodeDecodeError:
                raise ParseError("SDP is not UTF-8 text") from None
        sd = _new_session(cls)
        sd.version = 0
        sd.info = sd.uri = sd.timezones = sd.key = None
        sd.emails = []
        sd.phones = []
        sd.bandwidths = []
        sd.media = []
        sd._level = level = _new_level(_SessionLevel)
        level.attributes = []
        m = _USUAL_START_RE.match(text)
        if m is not None:   # v= o= s= [c=] t=0 0, the way nearly every UA starts its SDP
            sd._origin = None
            sd._start = m   # o= was checked by the pattern; Origin made when first read
            sd.name, cnet, ctype, caddress = m.group(7, 8, 9, 10)
            if cnet is None:
                level.connection = None
                first = 5
            else:
                level.connection = _tuple_new(Connection, (cnet, ctype, caddress, None, None))
                first = 6
            sd.times = [_UNBOUNDED]
            lines = text[m.end():].split("\r\n")
        else:
            lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
            if not lines or lines[0] != "v=0":
                raise ParseError("SDP line 1: must be v=0")
            level.connection = None
            sd.times = []
            # RFC 8866 §5 puts o= and s= right after v=: read them in place, the loop takes the
            # rest (and any other order, which this parser tolerates).
            origin = lines[1] if len(lines) > 2 else ""
            if origin[:2] == "o=" and lines[2][:2] == "s=":
                try:
                    sd.origin = Origin.parse(origin[2:])
                except ValueError as err:
                    raise ParseError(f"SDP line 2 ({origin[:40]!r}): {err}") from None
                sd.name = lines[2][2:]
                del lines[:3]
                first = 4
            else:
                sd.origin = sd.name = None
                del lines[:1]
                first = 2
        if lines and lines[-1] == "":
            lines.pop()
            while lines and lines[-1] == "":
                lines.pop()
        if lines:
            _read_lines(sd, lines, first)
        if sd.name is None or not sd.times or (sd._origin is None and sd._start is None):
            missing = [t for t, v in (("o=", sd.origin), ("s=", sd.name), ("t=", sd.times or None))
                       if v is None]
            raise ParseError(f"SDP is missing its {', '.join(missing)} line")
        return sd

    def lines(self) -> list[str]:
        """The SDP lines in RFC 8866 §5 order, without line ends."""
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.name}"]
        if self.info is not None:
            out.append(f"i={self.info}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={t}:{v}" for t, v in self.bandwidths]
        for timing in self.times:
            out.append(f"t={timing.start} {timing.stop}")
            out += [f"r={r}" for r in timing.repeats]
        if self.timezones is not None:
            out.append(f"z={self.timezones}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out += [f"a={a}" if v is None else f"a={a}:{v}" for a, v in self.attributes]
        for media in self.media:
            media._lines(out)
        return out

    def __str__(self) -> str:
        return "\r\n".join(self.lines()) + "\r\n"

    def __bytes__(self) -> bytes:
        return str(self).encode()

    def __eq__(self, other) -> bool:
        if not isinstance(other, SessionDescription):
            return NotImplemented
        return self.lines() == other.lines()

    __hash__ = None

    def __repr__(self) -> str:
        return f"<SessionDescription {self.origin.address} media={self.media!r}>"


_new_session = object.__new__
_new_level = object.__new__


# v= o= s= [c=] t=0 0 with single spaces: what SessionDescription.parse reads in one match.
# It takes only what the line loop would take, with the same result (the loop has the errors).
# Its runs are possessive (no backtracking state): none can take the character that ends it.
_USUAL_START_RE = re.compile(
    r"v=0\r\no=(\S++) ([0-9]++) ([0-9]++) (\S++) (\S++) (\S++)\r\ns=([^\r\n]*+)\r\n"
    r"(?:c=(\S++) (\S++) ([^\s/]++)\r\n)?t=0 0\r\n")


def _read_lines(sd: SessionDescription, lines: list[str], number: int) -> None:
    """Read SDP lines (the first one is line ``number``) into ``sd``: session-level ones until
    the first m=, then each m= section's own."""
    media = None
    target = sd
    level = sd._level
    attributes = level.attributes   # where a= lines go: the session's, then a media's
    for number, line in enumerate(lines, number):
        if line[1:2] != "=":
            raise ParseError(f"SDP line {number}: {line[:40]!r} is not <type>=<value>")
        kind = line[0]
        value = line[2:]
        try:
            if kind == "a":
                name, colon, rest = value.partition(":")
                if not name or " " in name:
                    raise ValueError(f"bad attribute {value!r}")
                attributes.append((name, rest) if colon else (name, None))
            elif kind == "m":
                parts = value.split()
                if len(parts) < 3:
                    raise ValueError("want: m=<media> <port> <proto> <fmt> ...")
                port = parts[1]
                count = None
                if not port.isdigit():   # the usual port has no /<number of ports>
                    port, _, count = port.partition("/")
                    if not port.isdigit() or (count and not count.isdigit()):
                        raise ValueError(f"bad port {parts[1]!r}")
                if (port := int(port)) > 65535:
                    raise ValueError(f"bad port {parts[1]!r}")
                media = _new_media(Media)
                media.kind = parts[0]
                media.port = port
                media.proto = parts[2]
                media.port_count = int(count) if count else None
                media.formats = parts[3:]
                media.info = media.connection = media.key = None
                media.bandwidths = []
                media.attributes = attributes = []
                media.session = level
                sd.media.append(media)
                target = media
            elif kind == "c":
                if target.connection is not None:
                    raise ValueError("more than one c= line at one level")
                parts = value.split(" ")
                if len(parts) == 3 and parts[2] and "/" not in parts[2]:   # usual unicast form
                    target.connection = _tuple_new(Connection, (*parts, None, None))
                else:
                    target.connection = Connection.parse(value)
            elif kind == "o" and media is None:
                if sd.origin is not None:
                    raise ValueError("more than one o= line")
                sd.origin = Origin.parse(value)
            elif kind == "s" and media is None:
                sd.name = value
            elif kind == "t" and media is None and value == "0 0":
                sd.times.append(_UNBOUNDED)
            elif kind == "t" and media is None:
                times = value.split()
                if len(times) != 2 or not all(t.isdigit() for t in times):
                    raise ValueError("want: t=<start> <stop> (NTP seconds)")
                sd.times.append(Timing(int(times[0]), int(times[1])))
            elif kind == "b":
                btype, _, bw = value.partition(":")
                if not btype or not bw.isdigit():
                    raise ValueError("want: b=<type>:<kbit/s>")
                target.bandwidths.append((btype, int(bw)))
            elif kind == "i":
                target.info = value
            elif kind == "k":
                target.key = value
            elif kind == "r" and media is None and sd.times:
                last = sd.times[-1]
                sd.times[-1] = last._replace(repeats=last.repeats + (value,))
            elif kind == "u" and media is None:
                sd.uri = value
            elif kind == "e" and media is None:
                sd.emails.append(value)
            elif kind == "p" and media is None:
                sd.phones.append(value)
            elif kind == "z" and media is None:
                sd.timezones = value
            else:
                where = "in a media section" if media is not None else "here"
                raise ValueError(f"unexpected line type {kind!r} {where}")
        except ValueError as err:
            raise ParseError(f"SDP line {number} ({line[:40]!r}): {err}") from None
