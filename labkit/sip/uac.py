"""Client side helpers: build out-of-dialog requests and register with digest auth.

Introduced in notebook 03. `make_request` fills in the headers RFC 3261 §8.1.1 requires (Via
with a fresh branch and rport, From with a new tag, To, Call-ID, CSeq, Max-Forwards, Contact);
`UserAgent` is a small softphone core on `SipEndpoint` that notebooks and tests use to talk to
the PBX the way a phone does: `await ua.register("100", "secret")` answers the 401 itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..events import EventBus
from .digest import DigestClient
from .endpoint import ServerRequest, SipEndpoint, new_tag
from .message import Request, Response
from .randomness import random_hex
from .transaction import new_branch
from .transport import Peer, format_host


def new_call_id(host: str = "labkit") -> str:
    return f"{random_hex(8)}@{host}"


def make_request(method: str, uri: str, *, local: tuple[str, int], transport: str = "udp",
                 from_uri: str, to_uri: str | None = None, from_tag: str | None = None,
                 call_id: str | None = None, cseq: int = 1, contact: str | None = None,
                 headers: list[tuple[str, str]] = (), body: bytes = b"",
                 content_type: str | None = None, display: str | None = None) -> Request:
    """An out-of-dialog request with every mandatory header (RFC 3261 §8.1.1)."""
    host, port = local
    sent_by = f"{format_host(host)}:{port}"
    lines = [
        ("Via", f"SIP/2.0/{transport.upper()} {sent_by};branch={new_branch()};rport"),
        ("Max-Forwards", 70),
        ("From", (f'"{display}" ' if display else "") + f"<{from_uri}>;tag={from_tag or new_tag()}"),
        ("To", f"<{to_uri or uri}>"),
        ("Call-ID", call_id or new_call_id(host)),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        lines.append(("Contact", contact))
    lines += [(name, value) for name, value in headers if name.lower() not in ("content-length", "l")]
    if body:
        lines.append(("Content-Type", content_type or "application/sdp"))
    lines.append(("Content-Length", len(body)))   # written here: no header change afterwards
    return Request(method, uri, lines, body)


def rebranch(request: Request) -> None:
    """A new branch on the top Via: a retried request (after 401) is a new transaction."""
    via = request.via[0]
    request.headers.replace_first("Via", via.with_params(branch=new_branch()))


@dataclass
class Registration:
    response: Response
    challenged: bool

    @property
    def ok(self) -> bool:
        return self.response.status == 200

    @property
    def contacts(self) -> list[str]:
        return self.response.get_all("Contact")


class UserAgent:
    """A minimal phone: listens on loopback, registers, sends requests, answers OPTIONS."""

    def __init__(self, user: str, password: str | None = None, *, domain: str = "127.0.0.1",
                 bind: str = "127.0.0.1", port: int = 0, transport: str = "udp",
                 bus: EventBus | None = None, user_agent: str = "labkit-ua"):
        self.user = user
        self.domain = domain
        self.transport = transport
        self.bind, self.port = bind, port
        self.credentials = DigestClient(user, password) if password is not None else None
        self.endpoint = SipEndpoint(self.on_request, bus=bus, user_agent=user_agent)
        self.address: tuple[str, int] | None = None
        self.call_id = new_call_id(bind)
        self.cseq = 0
        self.received: list[Request] = []

    async def start(self) -> None:
        self.address = await self.endpoint.listen(self.bind, self.port, (self.transport,))

    async def stop(self) -> None:
        await self.endpoint.close()

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact(self) -> str:
        host, port = self.address
        return f"<sip:{self.user}@{format_host(host)}:{port};transport={self.transport}>"

    def on_request(self, incoming: ServerRequest) -> None:
        self.received.append(incoming.request)
        if incoming.method == "OPTIONS":
            incoming.reply(200)
        else:
            incoming.reply(501, "Not Implemented")

    async def send(self, request: Request, server: tuple[str, int]) -> tuple[Response, bool]:
        """Send, answering one 401/407 challenge with our credentials; returns (final, challenged)."""
        peer = Peer(self.transport, server[0], server[1])
        response = await self.endpoint.request(request, peer)
        if response.status in (401, 407) and self.credentials is not None:
            header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            auth_header = "Authorization" if response.status == 401 else "Proxy-Authorization"
            value = self.credentials.answer(response.headers.lines(header), request.method,
                                            str(request.uri), request.body)
            self.cseq += 1
            request.set("CSeq", f"{self.cseq} {request.method}")
            request.set(auth_header, value)
            rebranch(request)
            return await self.endpoint.request(request, peer), True
        return response, False

    async def register(self, server: tuple[str, int], expires: int = 600,
                       contact: str | None = None, extra: list[tuple[str, str]] = ()) -> Registration:
        self.cseq += 1
        request = make_request(
            "REGISTER", f"sip:{format_host(server[0])}:{server[1]}", local=self.address,
            transport=self.transport, from_uri=self.aor, to_uri=self.aor, call_id=self.call_id,
            cseq=self.cseq, contact=contact or self.contact,
            headers=[("Expires", str(expires)), *extra],
        )
        response, challenged = await self.send(request, server)
        return Registration(response, challenged)

    async def options(self, server: tuple[str, int], uri: str | None = None) -> Response:
        self.cseq += 1
        request = make_request("OPTIONS", uri or f"sip:{format_host(server[0])}:{server[1]}",
                               local=self.address, transport=self.transport, from_uri=self.aor,
                               cseq=self.cseq)
        response, _ = await self.send(request, server)
        return response
