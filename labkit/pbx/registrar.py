"""The registrar (RFC 3261 §10.3): phones tell the PBX where they can be reached.

Introduced in notebook 03. `register()` runs after authentication and applies one REGISTER to
the location service: several contacts per address-of-record, expiry from the contact's
`expires` parameter or the `Expires` header, `Expires: 0` and `Contact: *` removal,
`423 Interval Too Brief` with `Min-Expires`, q-values, Call-ID/CSeq ordering, `Path`
(RFC 3327), and the source address (received/rport) so replies reach phones behind NAT.
The 200 OK lists every current binding with its remaining time.

The AOR is the endpoint name (an extension such as `100`): labkit serves one domain.
"""
from __future__ import annotations

import logging
import time
from email.utils import formatdate
from typing import Callable

from ..events import EventBus
from ..sip.message import ParseError, Request
from ..sip.transport import Peer, format_host
from .config import Config
from .location import Binding, LocationService

log = logging.getLogger("labkit.registrar")

Result = tuple[int, str, list[tuple[str, str]]]


def contact_key(uri) -> str:
    """A binding's identity: the contact URI compared as RFC 3261 §19.1.4 says (case-folded
    scheme and host, parameters sorted), so `sip:a@Host;transport=udp` matches `sip:a@host;transport=UDP`."""
    text = str(uri)
    try:
        scheme = uri.scheme.lower()
        user = f"{uri.user}@" if uri.user else ""
        port = f":{uri.port}" if uri.port else ""
        params = ";".join(sorted(f"{k.lower()}={(v or '').lower()}" for k, v in uri.params.items()))
        return f"{scheme}:{user}{uri.host.lower()}{port};{params}"
    except AttributeError:
        return text


class Registrar:
    def __init__(self, config: Config, location: LocationService, *,
                 clock: Callable[[], float] = time.time, bus: EventBus | None = None):
        self.config = config
        self.location = location
        self.clock = clock
        self.bus = bus or EventBus()

    def register(self, request: Request, peer: Peer, user: str) -> Result:
        """Apply an authenticated REGISTER from `user`; return (status, reason, extra headers)."""
        try:
            to_user = request.to.uri.user
            contacts = request.contact
            header_expires = request.expires
        except (ParseError, ValueError) as exc:
            return 400, f"Bad REGISTER: {exc}"[:120], []
        except AttributeError:
            return 400, "Bad REGISTER: To must be a SIP URI with a user part", []
        if to_user != user:
            # Authenticated, but for somebody else's AOR (RFC 3261 §10.3 step 3)
            return 403, "Forbidden", []
        aor = user
        now = self.clock()
        call_id, cseq = request.call_id, request.cseq.seq
        existing = {b.key: b for b in self.location.lookup(aor, now)}

        if contacts and any(c.is_star for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                return 400, "Invalid wildcard Contact: needs Expires: 0 and no other Contact", []
            for b in existing.values():
                if b.call_id == call_id and cseq <= b.cseq:
                    return 400, "Out-of-order REGISTER (CSeq not higher than the binding's)", []
            self.location.apply(aor, remove_all=True)
            log.info("unregistered all contacts of %s", aor)
            self.bus.publish("registrar.removed", aor=aor, contact="*")
            return self._ok(aor, request)

        upserts: list[Binding] = []
        removals: list[str] = []
        path = request.get_all("Path")
        source = f"{peer.transport}:{format_host(peer.host)}:{peer.port}"
        user_agent = request.get("User-Agent")
        for contact in contacts:
            try:
                raw = contact.params.get("expires")
                expires = int(raw) if raw is not None else header_expires
            except ValueError:
                return 400, f"Bad expires parameter {raw!r} in Contact", []
            if expires is None:
                expires = self.config.default_expires
            if expires < 0:
                return 400, "Negative expires", []
            if 0 < expires < self.config.min_expires:
                return 423, "Interval Too Brief", [("Min-Expires", str(self.config.min_expires))]
            expires = min(expires, self.config.max_expires)
            key = contact_key(contact.uri)
            old = existing.get(key)
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                return 400, "Out-of-order REGISTER (CSeq not higher than the binding's)", []
            if expires == 0:
                removals.append(key)
                continue
            try:
                q = float(contact.params["q"]) if contact.params.get("q") else None
            except ValueError:
                return 400, f"Bad q-value {contact.params.get('q')!r} in Contact", []
            if q is not None and not 0.0 <= q <= 1.0:
                return 400, f"q-value {q} out of range 0-1", []
            upserts.append(Binding(
                aor=aor, contact=str(contact.uri), key=key, expires_at=now + expires, call_id=call_id,
                cseq=cseq, source=source, q=q, path=path, user_agent=user_agent,
                instance=contact.params.get("+sip.instance"), updated_at=now,
            ))

        endpoint = self.config.endpoints.get(aor)
        limit = endpoint.max_contacts if endpoint else 1
        kept = set(existing) - set(removals) | {b.key for b in upserts}
        if len(kept) > limit:
            return 403, f"Too many contacts (at most {limit})", []
        self.location.apply(aor, upserts, removals)
        for b in upserts:
            if b.key not in existing:
                log.info("registered %s -> %s (expires in %d s, from %s)", aor, b.contact,
                         b.expires_at - now, source)
            self.bus.publish("registrar.bound", aor=aor, contact=b.contact, expires=b.expires_at - now, source=source)
        for key in removals:
            if key in existing:
                log.info("unregistered %s -> %s", aor, existing[key].contact)
                self.bus.publish("registrar.removed", aor=aor, contact=existing[key].contact)
        return self._ok(aor, request)

    def _ok(self, aor: str, request: Request) -> Result:
        now = self.clock()
        headers = [("Contact", f"<{b.contact}>;expires={b.expires_in(now)}" + (f";q={b.q}" if b.q is not None else ""))
                   for b in self.location.lookup(aor, now)]
        if request.get_all("Path"):
            headers += [("Path", p) for p in request.get_all("Path")]
        headers.append(("Date", formatdate(now, usegmt=True)))
        return 200, "OK", headers
