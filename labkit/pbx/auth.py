"""Who is calling? Digest authentication for the PBX, with a fail2ban-like defence.

Introduced in notebook 03. The sans-I/O pieces live in `labkit.sip.digest` (`DigestServer`,
`FailureBan`); this module applies them to incoming requests: challenge (401/407, SHA-256
and MD5 offered), verify, re-challenge with `stale=true`, answer malformed credentials with
400 and a reason, and ban a source address that keeps failing. An unknown user and a wrong
password take the same path, the same work and get the same answer: no user enumeration.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from typing import Callable

from ..events import EventBus
from ..sip.digest import Credential, DigestCredentials, DigestError, DigestServer, FailureBan
from ..sip.endpoint import ServerRequest
from .config import Config

log = logging.getLogger("labkit.security")


class Authenticator:
    def __init__(self, config: Config, *, bus: EventBus | None = None,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.bus = bus or EventBus()
        self.clock = clock
        self.digest = DigestServer(config.realm, self._credential, nonce_lifetime=config.nonce_lifetime,
                                   algorithms=config.digest_algorithms)
        self.ban = FailureBan(config.max_failures, config.window, config.ban_seconds)
        self.ban_ignore = [ipaddress.ip_network(a, strict=False) for a in config.ban_ignore]

    def _ignored(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.ban_ignore)

    def _credential(self, user: str) -> Credential | None:
        ep = self.config.endpoints.get(user)
        if ep is None:
            return None
        return Credential(password=ep.password, ha1_md5=ep.ha1_md5, ha1_sha256=ep.ha1_sha256)

    def challenge_or_user(self, incoming: ServerRequest, *, proxy: bool = False) -> str | None:
        """The authenticated user name, or None after answering the request (401/407/400/403)."""
        request, host = incoming.request, incoming.peer.host
        now = self.clock()
        self._log_ban_events(self.ban.handle_timer(now))
        if self.ban.is_banned(host, now):
            # Answered (not dropped) so the transaction ends; the answer tells nothing new.
            incoming.reply(403, "Forbidden")
            return None
        header = "Proxy-Authorization" if proxy else "Authorization"
        chosen = None
        for value in request.headers.lines(header):
            try:
                creds = DigestCredentials.parse(value)
            except DigestError as exc:
                self._fail(incoming, host, now, f"malformed {header}: {exc.reason}")
                incoming.reply(400, f"Malformed {header}: {exc.reason}"[:120])
                return None
            if creds.realm == self.config.realm:
                chosen = creds
                break
        if chosen is None:
            self._challenge(incoming, proxy, now)
            return None
        result = self.digest.verify(chosen, request.method, now, body=request.body, request_uri=str(request.uri))
        if result.ok:
            self.ban.success(host)
            return result.username
        if result.stale:
            self._challenge(incoming, proxy, now, stale=True)
            return None
        self._fail(incoming, host, now, result.reason, user=result.username)
        if result.status == 400:
            incoming.reply(400, result.reason[:120])
        else:
            self._challenge(incoming, proxy, now)
        return None

    def _challenge(self, incoming: ServerRequest, proxy: bool, now: float, stale: bool = False) -> None:
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        status, reason = (407, "Proxy Authentication Required") if proxy else (401, "Unauthorized")
        incoming.reply(status, reason, [(header, c) for c in self.digest.challenges(now, stale=stale)],
                       to_tag=None)

    def _fail(self, incoming: ServerRequest, host: str, now: float, reason: str, user: str | None = None) -> None:
        log.warning("authentication failed from %s (user %r, %s): %s", incoming.peer, user,
                    incoming.request.method, reason)
        self.bus.publish("security.auth_failed", peer=incoming.peer, user=user, reason=reason)
        if not self._ignored(host):
            self._log_ban_events(self.ban.failure(host, now))

    def _log_ban_events(self, events) -> None:
        for ev in events:
            log.warning("security: %s", ev)
            self.bus.publish("security.ban", event=ev)
