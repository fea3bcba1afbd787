"""Symmetric RTP latching: learn where a phone's media really comes from.

A phone behind NAT writes its private address in SDP (``c=192.168.1.20``, ``m=audio 4000``)
but its packets arrive from the NAT's public address and some other port. Symmetric RTP
(RFC 4961) says: send to the address the packets come from. The relay therefore *latches*
onto the source of the first valid RTP packet and sends there from then on.

What labkit chose (compare rtpengine's learning / strict-source modes and Asterisk's
``strictrtp``):

* **Learning**: until the leg's SDP is known nothing is accepted (closes the "RTP bleed"
  window before the call is set up); then the first packet with a payload type negotiated
  for the leg latches, from any address — the NAT case.
* **Strict source** once latched: packets from any other address are dropped and counted.
* **Re-latch** only for a *new SSRC* from another address, and only after the latched
  source has been silent for ``relatch_after`` seconds (a phone that changed network, or
  a re-INVITE to a new device). A stranger cannot steal a live stream by spraying packets,
  and cannot take it over with a copied SSRC at all.
* A new SDP address (re-INVITE) starts learning again: :meth:`Latch.reset`.

Sans-I/O: the relay's fast path only compares the source with :attr:`Latch.source`; a
packet from anywhere else comes here with its arrival time and the leg's count of packets
accepted so far (silence = that count did not move), so tests step a fake clock.
Introduced in notebook 06.
"""
from __future__ import annotations

__all__ = ["Latch"]

Address = tuple  # (host, port) or (host, port, flowinfo, scope_id)


class Latch:
    """Where a leg's RTP comes from; decides whether a packet from a new address may latch."""

    def __init__(self, relatch_after: float = 0.5):
        if relatch_after < 0:
            raise ValueError(f"relatch_after must be >= 0 seconds, got {relatch_after!r}")
        self.relatch_after = relatch_after
        self.armed = False                  # True once the leg's SDP is known
        self.source: Address | None = None  # latched address (None while learning)
        self.ssrc: int | None = None
        self.relatches = 0
        self._probe: tuple[float, int] | None = None   # (time, accepted count) of the first challenger

    def arm(self) -> None:
        """The leg's remote SDP is known: learn from the next valid packet."""
        self.armed = True

    def reset(self) -> None:
        """Forget the latched source (new SDP address in a re-INVITE): learn again."""
        self.source = None
        self.ssrc = None
        self._probe = None

    def offer(self, address: Address, ssrc: int, now: float, accepted: int) -> bool:
        """A valid packet came from ``address`` (not the latched source). Latch onto it?

        ``accepted`` is how many packets the leg has accepted from the latched source so far;
        if it has not grown for ``relatch_after`` seconds since the first challenger came, that
        source is silent and a new SSRC may take over.
        """
        if not self.armed:
            return False
        if self.source is None:
            self._latch(address, ssrc)
            return True
        if ssrc == self.ssrc:
            return False                    # same stream from elsewhere: strict source
        probe = self._probe
        if probe is None or probe[1] != accepted:
            self._probe = (now, accepted)   # latched source still talking (or first look)
            return False
        if now - probe[0] >= self.relatch_after:
            self._latch(address, ssrc)
            self.relatches += 1
            return True
        return False

    def _latch(self, address: Address, ssrc: int) -> None:
        self.source = address
        self.ssrc = ssrc
        self._probe = None

    def __repr__(self) -> str:
        state = "learning" if self.source is None else f"latched to {self.source} ssrc={self.ssrc:#010x}"
        return f"Latch({state if self.armed else 'not armed'})"
