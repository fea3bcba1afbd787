"""Digest access authentication for SIP: MD5 and SHA-256 (RFC 7616, RFC 8760; RFC 2617 compatible).

Introduced in notebook 03 (registrar). Everything here is sans-I/O: header *values* (strings)
and a ``now`` time go in, header values and verdicts come out. The registrar decides which SIP
response to send from the verdict:

=================  ==========================================================
``AuthOutcome``    registrar answer
=================  ==========================================================
OK                 go on (200 OK for a REGISTER)
STALE              401 with fresh challenges carrying ``stale=true``
REJECTED           401 with fresh challenges (wrong password *or* unknown user)
INVALID_NONCE      401 with fresh challenges (forged / tampered / foreign nonce)
REPLAY             401 with fresh challenges (nonce count not increasing)
MALFORMED          400 with ``result.reason`` as the reason phrase
=================  ==========================================================

Why the server keeps (almost) no state: a nonce carries its own issue time and an HMAC made
with a per-server secret, so the server can check any nonce it ever issued without remembering
it (the same trick Kamailio's ``auth`` module uses). Only replay detection needs memory: the
highest nonce count ``nc`` seen per nonce, kept in a small bounded map (see ``NonceCounts``).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping
from urllib.parse import unquote

from .randomness import random_bytes

__all__ = [
    "ALGORITHMS",
    "AuthOutcome",
    "AuthResult",
    "BanEvent",
    "Credential",
    "DigestClient",
    "DigestChallenge",
    "DigestCredentials",
    "DigestError",
    "DigestServer",
    "FailureBan",
    "NonceCounts",
    "authorization_for",
    "compute_ha1",
    "compute_response",
    "format_auth_params",
    "parse_auth_params",
    "pick_challenge",
]


class DigestError(ValueError):
    """A Digest header value the peer sent is malformed; answer 400 with ``reason``.

    ``status`` is the SIP status hint (always 400 here), ``reason`` a short phrase fit for a
    SIP reason phrase (it never echoes attacker-controlled text longer than a few characters).
    """

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


# --------------------------------------------------------------------------------------------
# Hash algorithms
# --------------------------------------------------------------------------------------------


def _hasher(name: str) -> Callable[[bytes], str]:
    def digest(data: bytes) -> str:
        return hashlib.new(name, data).hexdigest()

    return digest


def _available(name: str) -> bool:
    try:
        hashlib.new(name, b"")
    except ValueError:
        return False
    return True


#: Algorithm token (as written in headers, upper case) -> hex digest function.
#: The ``-sess`` variants use the same hash; ``compute_ha1`` adds the session step.
ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": _hasher("md5"),
    "SHA-256": _hasher("sha256"),
}
if _available("sha512_256"):  # RFC 7616 also names SHA-512/256; OpenSSL usually has it
    ALGORITHMS["SHA-512-256"] = _hasher("sha512_256")


def _split_algorithm(algorithm: str | None) -> tuple[str, bool]:
    """'sha-256-SESS' -> ('SHA-256', True). Missing means MD5 (RFC 2617 default)."""
    name = (algorithm or "MD5").upper()
    sess = name.endswith("-SESS")
    if sess:
        name = name[: -len("-SESS")]
    if name not in ALGORITHMS:
        raise DigestError(f"unsupported digest algorithm {algorithm[:20]!r}")
    return name, sess


def _h(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode("utf-8"))


def compute_ha1(
    algorithm: str,
    username: str,
    realm: str,
    password: str | None = None,
    *,
    ha1: str | None = None,
    nonce: str = "",
    cnonce: str = "",
) -> str:
    """HA1 = H(username:realm:password); for ``-sess``: H(H(username:realm:password):nonce:cnonce).

    Pass a precomputed ``ha1`` (of the base algorithm) instead of ``password`` to keep
    passwords out of configuration files, as Asterisk's ``md5_cred`` does.
    """
    base, sess = _split_algorithm(algorithm)
    if ha1 is None:
        if password is None:
            raise TypeError("compute_ha1 needs a password or a precomputed ha1")
        ha1 = _h(base, f"{username}:{realm}:{password}")
    if sess:
        ha1 = _h(base, f"{ha1}:{nonce}:{cnonce}")
    return ha1


def compute_response(
    algorithm: str,
    *,
    method: str,
    uri: str,
    nonce: str,
    username: str = "",
    realm: str = "",
    password: str | None = None,
    ha1: str | None = None,
    qop: str | None = None,
    nc: str | int = 1,
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 (RFC 2617 §3.2.2.1 when ``qop`` is None).

    ``nc`` may be an int (formatted as 8 hex digits) or the literal 8-hex-digit string.
    """
    base, _ = _split_algorithm(algorithm)
    key = compute_ha1(algorithm, username, realm, password, ha1=ha1, nonce=nonce, cnonce=cnonce)
    if qop == "auth-int":
        ha2 = _h(base, f"{method}:{uri}:{ALGORITHMS[base](body)}")
    elif qop in (None, "auth"):
        ha2 = _h(base, f"{method}:{uri}")
    else:
        raise DigestError(f"unsupported qop {qop[:20]!r}")
    if qop is None:
        return _h(base, f"{key}:{nonce}:{ha2}")
    nc_text = f"{nc:08x}" if isinstance(nc, int) else nc
    return _h(base, f"{key}:{nonce}:{nc_text}:{cnonce}:{qop}:{ha2}")


# --------------------------------------------------------------------------------------------
# Header value grammar: scheme, then comma-separated name=value (token or quoted-string)
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z0-9!%'*+\-.^_`|~]+")
_LWS = re.compile(r"[ \t\r\n]*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


#: One parameter as phones write it: name=token or name="text without backslashes", then
#: ", " (or ",") before the next one or the end of the value.
_USUAL_PARAM = re.compile(r'([A-Za-z0-9!%\'*+\-.^_`|~]+)=(?:"([^"\\]*)"|([A-Za-z0-9!%\'*+\-.^_`|~]+))(,[ ]?|$)')


def _parse_usual(value: str) -> tuple[str, dict[str, str]] | None:
    """``parse_auth_params`` for the usual form (one space after the scheme, no escapes, no
    odd spacing) in one pass of one pattern; None for anything else, which the full parser
    then reads (and explains when malformed). Same result wherever it answers (a test
    compares both on mutated headers)."""
    scheme, space, rest = value.partition(" ")
    if not space or not _TOKEN.fullmatch(scheme):
        return None
    params: dict[str, str] = {}
    pos, end = 0, len(rest)
    for m in _USUAL_PARAM.finditer(rest):
        if m.start() != pos:
            return None
        name = m.group(1).lower()
        if name in params:
            return None
        quoted = m.group(2)
        params[name] = quoted if quoted is not None else m.group(3)
        pos = m.end()
        if pos == end:
            return (scheme, params) if not m.group(4) else None   # a trailing ',' is an error
    return (scheme, params) if end == 0 else None


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest realm="x", nonce="y", algorithm=MD5`` into ('Digest', {'realm': 'x', ...}).

    Parameter names are lower-cased (they are case-insensitive); quoted values are unescaped
    (``\\"`` -> ``"``). Raises ``DigestError`` with a specific reason for anything malformed.
    """
    if isinstance(value, str):
        usual = _parse_usual(value)
        if usual is not None:
            return usual
    return _parse_auth_params(value)


def _parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """The full parser: every spacing and escape RFC 7616 allows, a reason for every error."""
    if not isinstance(value, str):
        raise DigestError("authentication header value must be text")
    text = value.strip()
    if not text:
        raise DigestError("empty authentication header")
    m = _TOKEN.match(text)
    if not m:
        raise DigestError("authentication header does not start with a scheme")
    scheme = m.group()
    pos = m.end()
    if pos < len(text) and text[pos] not in " \t\r\n":
        raise DigestError("authentication scheme must be followed by a space")
    params: dict[str, str] = {}
    n = len(text)
    pos = _LWS.match(text, pos).end()
    while pos < n:
        m = _TOKEN.match(text, pos)
        if not m:
            raise DigestError(f"expected a parameter name at offset {pos}")
        name = m.group().lower()
        pos = _LWS.match(text, m.end()).end()
        if pos >= n or text[pos] != "=":
            raise DigestError(f"expected '=' after digest parameter {name[:20]!r}")
        pos = _LWS.match(text, pos + 1).end()
        if pos < n and text[pos] == '"':
            m = _QUOTED.match(text, pos)
            if not m:
                raise DigestError(f"unterminated quoted string in digest parameter {name[:20]!r}")
            param = m.group(1)
            if "\\" in param:
                param = _QUOTED_PAIR.sub(r"\1", param)
            pos = m.end()
        else:
            m = _TOKEN.match(text, pos)
            if not m:
                raise DigestError(f"missing value for digest parameter {name[:20]!r}")
            param = m.group()
            pos = m.end()
        if name in params:
            raise DigestError(f"duplicate digest parameter {name[:20]!r}")
        params[name] = param
        pos = _LWS.match(text, pos).end()
        if pos < n:
            if text[pos] != ",":
                raise DigestError(f"expected ',' after digest parameter {name[:20]!r}")
            pos = _LWS.match(text, pos + 1).end()
            if pos >= n:
                raise DigestError("trailing ',' in authentication header")
    return scheme, params


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_auth_params(scheme: str, params: Iterable[tuple[str, str, bool]]) -> str:
    """Inverse of ``parse_auth_params``: (name, value, quoted) triples -> header value."""
    parts = [f"{name}={_quote(value) if quoted else value}" for name, value, quoted in params]
    return f"{scheme} " + ", ".join(parts)


def _require_digest(scheme: str) -> None:
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported authentication scheme {scheme[:20]!r}")


# --------------------------------------------------------------------------------------------
# Challenge (WWW-Authenticate / Proxy-Authenticate) and credentials (Authorization / Proxy-Authorization)
# --------------------------------------------------------------------------------------------


@dataclass
class DigestChallenge:
    """One ``WWW-Authenticate``/``Proxy-Authenticate`` value (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    userhash: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> "DigestChallenge":
        scheme, p = parse_auth_params(value)
        _require_digest(scheme)
        for required in ("realm", "nonce"):
            if required not in p:
                raise DigestError(f"digest challenge lacks {required}")
        algorithm = p.pop("algorithm", "MD5")
        qop_text = p.pop("qop", None)
        qop = tuple(q.strip().lower() for q in qop_text.split(",") if q.strip()) if qop_text else ()
        return cls(
            realm=p.pop("realm"),
            nonce=p.pop("nonce"),
            algorithm=algorithm,
            qop=qop,
            opaque=p.pop("opaque", None),
            stale=p.pop("stale", "false").lower() == "true",
            domain=p.pop("domain", None),
            userhash=p.pop("userhash", "false").lower() == "true",
            extra=p,
        )

    def __str__(self) -> str:
        params: list[tuple[str, str, bool]] = [("realm", self.realm, True)]
        if self.domain is not None:
            params.append(("domain", self.domain, True))
        params.append(("nonce", self.nonce, True))
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        params.append(("algorithm", self.algorithm, False))
        if self.qop:
            params.append(("qop", ",".join(self.qop), True))
        if self.stale:
            params.append(("stale", "true", False))
        if self.userhash:
            params.append(("userhash", "true", False))
        return format_auth_params("Digest", params)


_NC = re.compile(r"[0-9a-fA-F]{8}")


@dataclass
class DigestCredentials:
    """One ``Authorization``/``Proxy-Authorization`` value (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    userhash: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> "DigestCredentials":
        scheme, p = parse_auth_params(value)
        _require_digest(scheme)
        if "username*" in p:
            if "username" in p:
                raise DigestError("both username and username* present")
            p["username"] = _decode_ext_value(p.pop("username*"))
        for required in ("username", "realm", "nonce", "uri", "response"):
            if required not in p:
                raise DigestError(f"digest credentials lack {required}")
        qop = p.pop("qop", None)
        qop = qop.lower() if qop is not None else None
        nc, cnonce = p.pop("nc", None), p.pop("cnonce", None)
        if qop is not None:
            if nc is None or cnonce is None:
                raise DigestError("qop given without nc and cnonce")
            if not _NC.fullmatch(nc):
                raise DigestError("nc must be 8 hex digits")
        if not re.fullmatch(r"[0-9a-fA-F]+", p["response"]):
            raise DigestError("digest response is not hexadecimal")
        return cls(
            username=p.pop("username"),
            realm=p.pop("realm"),
            nonce=p.pop("nonce"),
            uri=p.pop("uri"),
            response=p.pop("response").lower(),
            algorithm=p.pop("algorithm", "MD5"),
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=p.pop("opaque", None),
            userhash=p.pop("userhash", "false").lower() == "true",
            extra=p,
        )

    @property
    def nc_value(self) -> int | None:
        return int(self.nc, 16) if self.nc is not None else None

    def __str__(self) -> str:
        params: list[tuple[str, str, bool]] = [
            ("username", self.username, True),
            ("realm", self.realm, True),
            ("nonce", self.nonce, True),
            ("uri", self.uri, True),
            ("response", self.response, True),
            ("algorithm", self.algorithm, False),
        ]
        if self.cnonce is not None:
            params.append(("cnonce", self.cnonce, True))
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        if self.qop is not None:
            params.append(("qop", self.qop, False))
            params.append(("nc", self.nc or "00000001", False))
        if self.userhash:
            params.append(("userhash", "true", False))
        return format_auth_params("Digest", params)


def _decode_ext_value(value: str) -> str:
    """RFC 8187 ext-value (``UTF-8''J%C3%A4s%C3%B8n``) as used by RFC 7616 ``username*``."""
    charset, sep, rest = value.partition("'")
    lang_sep = rest.find("'")
    if not sep or lang_sep < 0 or charset.upper() != "UTF-8":
        raise DigestError("username* must be UTF-8''percent-encoded")
    try:
        return unquote(rest[lang_sep + 1 :], encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise DigestError("username* is not valid UTF-8") from None


# --------------------------------------------------------------------------------------------
# Client side (our UAC)
# --------------------------------------------------------------------------------------------


def pick_challenge(values: Iterable[str]) -> DigestChallenge:
    """The first Digest challenge whose algorithm we support (RFC 7616 §3.7: servers list their
    preferred one first, clients take the first they can do). Raises ``DigestError`` if none."""
    reasons = []
    for value in values:
        try:
            challenge = DigestChallenge.parse(value)
            _split_algorithm(challenge.algorithm)
        except DigestError as e:
            reasons.append(e.reason)
            continue
        return challenge
    raise DigestError("no usable digest challenge" + (f" ({reasons[0]})" if reasons else ""))


def authorization_for(
    challenge: DigestChallenge | str,
    username: str,
    password: str | None,
    method: str,
    uri: str,
    body: bytes = b"",
    *,
    ha1: str | None = None,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The ``Authorization`` (or ``Proxy-Authorization``) value answering ``challenge``.

    Uses ``qop=auth`` when offered (``auth-int`` only if it is the sole choice), and the legacy
    RFC 2069 form when the challenge has no qop. ``cnonce`` defaults to 16 random bytes.
    """
    if isinstance(challenge, str):
        challenge = DigestChallenge.parse(challenge)
    if "auth" in challenge.qop:
        qop: str | None = "auth"
    elif "auth-int" in challenge.qop:
        qop = "auth-int"
    elif challenge.qop:
        raise DigestError(f"no supported qop in {','.join(challenge.qop)[:40]!r}")
    else:
        qop = None
    _, sess = _split_algorithm(challenge.algorithm)
    if cnonce is None and (qop is not None or sess):
        cnonce = base64.b64encode(random_bytes(16)).decode("ascii").rstrip("=")
    response = compute_response(
        challenge.algorithm,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        username=username,
        realm=challenge.realm,
        password=password,
        ha1=ha1,
        qop=qop,
        nc=nc,
        cnonce=cnonce or "",
        body=body,
    )
    credentials = DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=f"{nc:08x}" if qop is not None else None,
        cnonce=cnonce if (qop is not None or sess) else None,
        opaque=challenge.opaque,
    )
    return str(credentials)


class DigestClient:
    """Our UAC's credentials and nonce counts: answers 401/407 challenges and, like PJSIP, reuses
    the last nonce for the next request (``nc`` + 1) so a REGISTER refresh or an in-dialog
    re-INVITE does not cost an extra round trip. A ``stale=true`` challenge just resets it."""

    def __init__(self, username: str, password: str | None = None, *, ha1: dict[str, str] | None = None):
        if password is None and not ha1:
            raise ValueError("DigestClient needs a password or HA1 values per algorithm")
        self.username = username
        self.password = password
        self.ha1 = {k.upper(): v for k, v in (ha1 or {}).items()}
        self.challenge: DigestChallenge | None = None
        self.nc = 0

    def _usable(self, challenge: DigestChallenge) -> bool:
        base, _ = _split_algorithm(challenge.algorithm)
        return self.password is not None or base in self.ha1

    def answer(self, challenges: Iterable[str], method: str, uri: str, body: bytes = b"") -> str:
        """Authorization value for a request challenged with these header values."""
        values = list(challenges)
        usable = []
        for value in values:
            try:
                c = DigestChallenge.parse(value)
                if self._usable(c):
                    usable.append(c)
            except DigestError:
                continue
        if not usable:
            pick_challenge(values)  # raises the specific reason
            raise DigestError("no digest challenge matches our credentials")
        self.challenge, self.nc = usable[0], 0
        return self.authorize(method, uri, body)

    def authorize(self, method: str, uri: str, body: bytes = b"") -> str | None:
        """Pre-emptive Authorization with the last nonce (None before any challenge)."""
        if self.challenge is None:
            return None
        self.nc += 1
        base, _ = _split_algorithm(self.challenge.algorithm)
        return authorization_for(
            self.challenge, self.username, self.password, method, uri, body,
            ha1=None if self.password is not None else self.ha1[base], nc=self.nc,
        )


# --------------------------------------------------------------------------------------------
# Server side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """What the server knows about one user: a password, or HA1 values per algorithm.

    HA1 values are bound to the realm they were computed for (H(user:realm:password)).
    """

    password: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None

    def ha1(self, algorithm: str, username: str, realm: str) -> str | None:
        if self.password is not None:
            return compute_ha1(algorithm, username, realm, self.password)
        if algorithm == "MD5":
            return self.ha1_md5
        if algorithm == "SHA-256":
            return self.ha1_sha256
        return None


class AuthOutcome(enum.Enum):
    OK = "ok"
    STALE = "stale"
    REJECTED = "rejected"
    INVALID_NONCE = "invalid-nonce"
    REPLAY = "replay"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class AuthResult:
    """Verdict of ``DigestServer.verify``. ``reason`` is for logs (and the 400 reason phrase)."""

    outcome: AuthOutcome
    username: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is AuthOutcome.OK

    @property
    def status(self) -> int:
        """SIP status hint: 200 for OK, 400 for malformed, otherwise 401 (re-challenge)."""
        if self.outcome is AuthOutcome.OK:
            return 200
        if self.outcome is AuthOutcome.MALFORMED:
            return 400
        return 401

    @property
    def stale(self) -> bool:
        return self.outcome is AuthOutcome.STALE

    @property
    def counts_as_failure(self) -> bool:
        """Whether a brute-force defence should count it (a stale nonce is an honest client)."""
        return self.outcome not in (AuthOutcome.OK, AuthOutcome.STALE)


class NonceCounts:
    """Highest ``nc`` seen per nonce, bounded in size and in time.

    Trade-off: a server that forgot a nonce could accept a replayed request. So when the map
    is full we forget the oldest nonces *and* remember the newest issue time we forgot
    (``forgotten_until``); nonces issued at or before it are then treated as stale, which makes
    the client fetch a fresh nonce. Memory stays at ``capacity`` entries; the price under a
    flood is extra 401 round trips for honest clients, never an accepted replay.
    """

    def __init__(self, capacity: int = 4096):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._highest: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self.forgotten_until = float("-inf")

    def __len__(self) -> int:
        return len(self._highest)

    def forgotten(self, issued: float) -> bool:
        return issued <= self.forgotten_until

    def check_and_update(self, nonce: str, issued: float, nc: int) -> bool:
        """True if ``nc`` is above every count seen for ``nonce`` (and records it)."""
        seen = self._highest.get(nonce)
        if seen is not None and nc <= seen[0]:
            return False
        self._highest[nonce] = (nc, issued)
        if seen is None:
            while len(self._highest) > self.capacity:
                _, (_, old_issued) = self._highest.popitem(last=False)
                self.forgotten_until = max(self.forgotten_until, old_issued)
        return True

    def expire(self, older_than: float) -> None:
        """Drop entries for nonces issued before ``older_than`` (they are stale anyway).

        Walks from the oldest first use and stops at the first young entry: O(expired), not
        O(size). An old entry behind a young one waits its turn; it is harmless (its nonce is
        stale) and the capacity bound still holds."""
        while self._highest:
            nonce, (_, issued) = next(iter(self._highest.items()))
            if issued >= older_than:
                break
            del self._highest[nonce]


def _same_uri(digest_uri: str, request_uri: str) -> bool:
    """RFC 3261 §22.4 wants the digest ``uri`` to be the Request-URI; phones differ in how they
    write it (case of the host, parameter order), so compare as SIP URIs (§19.1.4) when plain
    text differs."""
    if digest_uri == request_uri:
        return True
    from .uri import parse_uri  # the wire-format layer below; imported late to keep digest light

    try:
        return parse_uri(digest_uri) == parse_uri(request_uri)
    except ValueError:
        return False


_NONCE_TIME = struct.Struct(">q")
_NONCE_MAC_LEN = 16
_NONCE_RAND_LEN = 8
_NONCE_LEN = _NONCE_TIME.size + _NONCE_RAND_LEN + _NONCE_MAC_LEN


#: Where the nonce goes in a cached challenge (nonces are base64url: never this text, never
#: anything that needs quoting).
_NONCE_SLOT = "\x00nonce\x00"


class DigestServer:
    """Challenges and verifies Digest credentials for one realm.

    ``credentials`` maps a username to a ``Credential`` (a dict, or any callable returning
    ``Credential | None``). ``algorithms`` are offered in order, each as its own challenge
    header (SHA-256 first so RFC 8760 phones use it, MD5 for the rest). Nonces are stateless:
    base64url(issue time in ms | 8 random bytes | HMAC-SHA256(secret, realm|time|random)[:16]).
    """

    def __init__(
        self,
        realm: str,
        credentials: Mapping[str, Credential] | Callable[[str], Credential | None],
        *,
        secret: bytes | None = None,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        qop: Iterable[str] = ("auth",),
        allow_no_qop: bool = False,
        nonce_lifetime: float = 300.0,
        max_tracked_nonces: int = 4096,
    ):
        self.realm = realm
        self._lookup = credentials.get if isinstance(credentials, Mapping) else credentials
        self._secret = secret if secret is not None else os.urandom(32)
        self.algorithms = tuple(algorithms)
        for a in self.algorithms:
            _split_algorithm(a)  # fail early on a typo in configuration
        if not self.algorithms:
            raise ValueError("offer at least one digest algorithm")
        self.qop = tuple(qop)
        self.allow_no_qop = allow_no_qop
        self.nonce_lifetime = nonce_lifetime
        self.nonce_counts = NonceCounts(max_tracked_nonces)
        self._templates: dict[tuple, list[str]] = {}   # (stale, realm, ...) -> values, see challenges
        # Stands in for the HA1 of a user that does not exist, so the work is the same.
        self._dummy_password = base64.b64encode(hmac.digest(self._secret, b"dummy", "sha256")).decode()

    # -- nonces -----------------------------------------------------------------------------

    def make_nonce(self, now: float) -> str:
        stamp = _NONCE_TIME.pack(int(round(now * 1000)))
        rand = random_bytes(_NONCE_RAND_LEN)
        mac = self._mac(stamp + rand)
        return base64.urlsafe_b64encode(stamp + rand + mac).decode("ascii").rstrip("=")

    def _mac(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, self.realm.encode("utf-8") + b"|" + data, "sha256")[:_NONCE_MAC_LEN]

    def nonce_issued_at(self, nonce: str) -> float | None:
        """Issue time (seconds) of a nonce we made, or None if it is not ours / was tampered with."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != _NONCE_LEN:
            return None
        body, mac = raw[:-_NONCE_MAC_LEN], raw[-_NONCE_MAC_LEN:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        return _NONCE_TIME.unpack(body[: _NONCE_TIME.size])[0] / 1000.0

    # -- challenges -------------------------------------------------------------------------

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        """Header values for ``WWW-Authenticate`` (or ``Proxy-Authenticate``), preferred first.

        All share one nonce: whichever the client picks, its answer verifies against it.
        """
        nonce = self.make_nonce(now)
        key = (stale, self.realm, self.algorithms, self.qop)
        templates = self._templates.get(key)
        if templates is None:   # written once: only the nonce differs from one 401 to the next
            templates = self._templates[key] = [
                str(DigestChallenge(realm=self.realm, nonce=_NONCE_SLOT, algorithm=a, qop=self.qop, stale=stale))
                for a in self.algorithms
            ]
        return [t.replace(_NONCE_SLOT, nonce, 1) for t in templates]

    # -- verification -----------------------------------------------------------------------

    def verify(
        self,
        authorization: str | DigestCredentials,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        request_uri: str | None = None,
    ) -> AuthResult:
        """Check one ``Authorization`` value for a request with this ``method`` (and body).

        Unknown users and wrong passwords give the same outcome and reason after the same
        hashing work (a dummy HA1 stands in), so responses do not reveal which users exist.
        """
        try:
            creds = (
                authorization
                if isinstance(authorization, DigestCredentials)
                else DigestCredentials.parse(authorization)
            )
            algorithm, _ = _split_algorithm(creds.algorithm)
        except DigestError as e:
            return AuthResult(AuthOutcome.MALFORMED, None, e.reason)
        user = creds.username
        if creds.realm != self.realm:
            return AuthResult(AuthOutcome.REJECTED, user, "realm does not match")
        if creds.algorithm.upper() not in (a.upper() for a in self.algorithms):
            return AuthResult(AuthOutcome.REJECTED, user, "digest algorithm not offered")
        if creds.userhash:
            return AuthResult(AuthOutcome.REJECTED, user, "userhash not offered")
        if request_uri is not None and not _same_uri(creds.uri, request_uri):
            return AuthResult(AuthOutcome.MALFORMED, user, "digest uri does not match Request-URI")
        if creds.qop is None:
            if not self.allow_no_qop:
                return AuthResult(AuthOutcome.REJECTED, user, "qop required")
        elif creds.qop not in self.qop:
            return AuthResult(AuthOutcome.REJECTED, user, "qop not offered")

        issued = self.nonce_issued_at(creds.nonce)
        if issued is None:
            return AuthResult(AuthOutcome.INVALID_NONCE, user, "nonce failed integrity check")

        credential = self._lookup(user)
        ha1 = credential.ha1(algorithm, user, self.realm) if credential is not None else None
        known = ha1 is not None
        if not known:
            ha1 = compute_ha1(algorithm, user, self.realm, self._dummy_password)
        if creds.algorithm.upper().endswith("-SESS"):
            ha1 = compute_ha1(creds.algorithm, user, self.realm, ha1=ha1, nonce=creds.nonce, cnonce=creds.cnonce or "")
        expected = compute_response(
            algorithm,
            ha1=ha1,
            method=method,
            uri=creds.uri,
            nonce=creds.nonce,
            qop=creds.qop,
            nc=creds.nc or "",
            cnonce=creds.cnonce or "",
            body=body,
        )
        matches = hmac.compare_digest(expected.encode(), creds.response.encode())
        if not (matches and known):
            return AuthResult(AuthOutcome.REJECTED, user, "wrong credentials")

        age = now - issued
        if age > self.nonce_lifetime or age < -1.0 or self.nonce_counts.forgotten(issued):
            return AuthResult(AuthOutcome.STALE, user, "nonce expired")
        self.nonce_counts.expire(now - self.nonce_lifetime)
        if creds.qop is not None and not self.nonce_counts.check_and_update(creds.nonce, issued, creds.nc_value):
            return AuthResult(AuthOutcome.REPLAY, user, "nonce count replayed")
        return AuthResult(AuthOutcome.OK, user, "")


# --------------------------------------------------------------------------------------------
# Brute-force defence (fail2ban-like), sans-I/O
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanEvent:
    """Something to log: ``kind`` is 'banned' or 'unbanned'."""

    kind: str
    source: str
    at: float
    until: float | None = None
    failures: int = 0


class FailureBan:
    """Ban a source address after ``max_failures`` failures within ``window`` seconds.

    Like fail2ban watching Asterisk's security log: the registrar calls ``failure(source, now)``
    for each failed attempt, drops requests while ``is_banned(source, now)``, and logs the
    returned events. Pass the host only (not host:port) so a scanner cannot rotate ports.
    State is bounded: at most ``max_sources`` addresses are tracked (oldest forgotten first).
    """

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 60.0,
        ban_time: float = 600.0,
        max_sources: int = 10000,
    ):
        if max_failures < 1 or window <= 0 or ban_time <= 0 or max_sources < 1:
            raise ValueError("max_failures, window, ban_time and max_sources must be positive")
        self.max_failures = max_failures
        self.window = window
        self.ban_time = ban_time
        self.max_sources = max_sources
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._banned: dict[str, float] = {}

    def failure(self, source: str, now: float) -> list[BanEvent]:
        events = self.handle_timer(now)
        if source in self._banned:
            return events
        times = [t for t in self._failures.pop(source, []) if now - t < self.window]
        times.append(now)
        if len(times) >= self.max_failures:
            until = now + self.ban_time
            self._banned[source] = until
            events.append(BanEvent("banned", source, now, until, len(times)))
            return events
        self._failures[source] = times
        while len(self._failures) > self.max_sources:
            self._failures.popitem(last=False)
        return events

    def success(self, source: str) -> None:
        """A good login forgets earlier failures from that source."""
        self._failures.pop(source, None)

    def is_banned(self, source: str, now: float) -> bool:
        until = self._banned.get(source)
        return until is not None and now < until

    def handle_timer(self, now: float) -> list[BanEvent]:
        """Lift expired bans; returns an 'unbanned' event for each."""
        events = []
        for source, until in list(self._banned.items()):
            if now >= until:
                del self._banned[source]
                events.append(BanEvent("unbanned", source, now))
        return events

    def next_deadline(self) -> float | None:
        return min(self._banned.values(), default=None)

    @property
    def banned(self) -> dict[str, float]:
        return dict(self._banned)
