"""SDP offer/answer (RFC 3264): agree on codecs, ports and direction for a call.

Introduced in notebook 06.  One side *offers* what it can receive (codecs by payload type,
its address and port, ptime, direction); the other *answers* for each offered m-line: accept
with the codecs both have, or reject with port 0.  Afterwards each side knows where to send,
with which payload type, at which packet time — a :class:`NegotiatedMedia` per stream, what
the B2BUA needs for each call leg (and to decide whether to transcode between them).

    neg = SdpNegotiator("192.0.2.10", 20000, codecs=("pcmu", "pcma", "telephone-event"))
    offer = neg.create_offer()                    # -> SessionDescription, str() for the body
    result = neg.receive_answer(answer_text)      # -> Negotiation; result.audio: NegotiatedMedia
    result = neg.answer(offer_text)               # when the peer offers; result.sdp is ours
    neg.hold(); neg.create_offer()                # a re-offer: same o= session id, version + 1

Rules followed (RFC 3264 §5, §6, §8, RFC 4733, RFC 3605):

* Dynamic payload types are matched by their ``a=rtpmap`` name and clock rate, never by
  number; static ones (0 PCMU, 8 PCMA, 9 G722) also without rtpmap.  The answer uses the
  offer's numbers, so it never contains a codec or payload type that was not offered.
* Codec order: ``prefer="offer"`` (default) keeps the offerer's order — the caller's first
  choice wins, like Asterisk's ``prefer: pending``; ``prefer="local"`` puts ours first.
  ``keep="first"`` (default) answers with the one chosen codec (as FreeSWITCH does, so the
  media path never meets a codec switch mid-call); ``keep="all"`` lists every common codec.
* telephone-event is matched by clock rate: the one at the chosen codec's rate is kept (an
  8 kHz one for PCMU, a 48 kHz one for Opus), its events intersected with ours (0-16).
* ptime: the offerer's is echoed when the chosen codec can use it, else ours.
* Direction: sendrecv→sendrecv, sendonly→recvonly, recvonly→sendonly, inactive→inactive,
  further restricted by our own (when we hold).  Hold is a=sendonly / a=inactive, or the
  RFC 2543 ``c=0.0.0.0``.
* Versions: every SDP we send carries the same o= session id; its version goes up by one
  when the content changed since our previous SDP and stays when it did not (§8).
* One audio stream per call is accepted; further m-lines (video, a second audio) get port 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ..codecs import CODECS, Codec, codec_for_payload_type, get_codec
from .randomness import random_below
from .sdp import DIRECTIONS, Connection, Media, Origin, SessionDescription
from .uri import ParseError

__all__ = [
    "SdpNegotiator", "Negotiation", "NegotiatedMedia", "OfferAnswerError", "Format",
    "answer_direction", "is_hold", "offered_formats", "parse_events", "format_events",
    "TELEPHONE_EVENT", "ANSWER_DIRECTION",
]

TELEPHONE_EVENT = "telephone-event"
#: RFC 3264 §6.1: the direction an answer gives to each offered direction.
ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly",
                    "recvonly": "sendonly", "inactive": "inactive"}
_SEND = {"sendrecv": True, "sendonly": True, "recvonly": False, "inactive": False}
_RECV = {"sendrecv": True, "sendonly": False, "recvonly": True, "inactive": False}
_DTMF_EVENTS = "0-16"     # the 16 DTMF digits and flash (RFC 4733 §3.2)
_TE_PAYLOAD_TYPES = {8000: 101, 16000: 102, 48000: 110}   # customary numbers


class OfferAnswerError(ValueError):
    """An offer or answer that cannot be used; ``status`` is the SIP response to give:
    488 Not Acceptable Here (nothing in common), 491 Request Pending (offer glare),
    400 (a malformed description)."""

    def __init__(self, message: str, status: int = 488):
        super().__init__(message)
        self.status = status


def _direction(send: bool, recv: bool) -> str:
    return {(True, True): "sendrecv", (True, False): "sendonly",
            (False, True): "recvonly", (False, False): "inactive"}[(send, recv)]


def answer_direction(offered: str, local: str = "sendrecv") -> str:
    """The direction to answer ``offered`` with when we ourselves want ``local``: we send
    only if the offerer receives and we want to send, and the other way round."""
    for name, value in (("offered", offered), ("local", local)):
        if value not in DIRECTIONS:
            raise ValueError(f"{name} direction must be one of {DIRECTIONS}, not {value!r}")
    return _direction(_RECV[offered] and _SEND[local], _SEND[offered] and _RECV[local])


def is_hold(media: Media) -> bool:
    """Does this m-line put the stream on hold?  a=sendonly or a=inactive (RFC 3264 §8.4),
    or the old RFC 2543 way: a connection address of 0.0.0.0."""
    return media.direction in ("sendonly", "inactive") or _zero_address_hold(media)


def _zero_address_hold(media: Media) -> bool:
    """c=0.0.0.0 is an RFC 2543 hold — unless ICE is in use (a=candidate / a=ice-ufrag), where
    0.0.0.0 with port 9 is only a placeholder for the candidates (RFC 8839 §4.2.1)."""
    if media.address != "0.0.0.0":
        return False
    levels = [media] + ([media.session] if media.session is not None else [])
    return not any(level.get_attribute(name) is not None
                   for level in levels for name in ("candidate", "ice-ufrag"))


def parse_events(text: str) -> set[int]:
    """``0-15,66,70`` (an RFC 4733 fmtp event list) -> the set of event numbers."""
    return set(_parse_events(text))


@lru_cache(maxsize=256)
def _parse_events(text: str) -> frozenset[int]:
    """parse_events, remembered: every call leg reads the same few lists (``0-16``, ``0-15``)."""
    events: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"bad telephone-event list {text!r}")
        first, last = int(low), int(high) if dash else int(low)
        if first > last or last > 255:
            raise ValueError(f"bad telephone-event range {part!r} in {text!r}")
        events.update(range(first, last + 1))
    return frozenset(events)


def format_events(events: set[int]) -> str:
    """The inverse of parse_events, with runs written as ranges: {0..16} -> ``0-16``."""
    return _format_events(frozenset(events))


@lru_cache(maxsize=256)
def _format_events(events: frozenset[int]) -> str:
    parts, ordered = [], sorted(events)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


# ---------------------------------------------------------------------------------------------
# What an m-line offers


@dataclass(frozen=True)
class Format:
    """One payload type of an m-line, understood: ``codec`` is the labkit registry name
    ('pcmu', 'opus' …), 'telephone-event', or None for something we do not know."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None
    fmtp: str | None
    codec: str | None

    @property
    def is_telephone_event(self) -> bool:
        return self.codec == TELEPHONE_EVENT


def _codec_named(encoding: str, clock_rate: int, channels: int | None) -> Codec | None:
    """The registry codec an rtpmap names; a missing channel count matches any (lenient)."""
    key = (encoding, clock_rate, channels, len(CODECS))   # the registry only ever grows
    try:
        return _NAMED[key]
    except KeyError:
        pass
    if len(_NAMED) > 1024:    # names come from peers' SDP: bounded
        _NAMED.clear()
    found = _NAMED[key] = _find_codec_named(encoding, clock_rate, channels)
    return found


_NAMED: dict[tuple, Codec | None] = {}


def _find_codec_named(encoding: str, clock_rate: int, channels: int | None) -> Codec | None:
    enc = encoding.lower()
    for codec in CODECS.values():
        if codec.rtpmap_name.lower() == enc and codec.clock_rate == clock_rate \
                and (channels is None or channels == codec.channels):
            return codec
    return None


def offered_formats(media: Media) -> list[Format]:
    """Every payload type of an m-line in its order, mapped to codecs by rtpmap (name and
    rate, never by dynamic number) or by the static table for numbers below 96.

    A phone sends the same m-line in every call, and a call reads it up to three times
    (answer, then each side of the answer), so the result is remembered by the m-line's
    formats and attributes (and the registry's size, which only grows): one tuple and a
    dict probe instead of re-reading rtpmap/fmtp lines (6 us)."""
    try:
        key = (tuple(media.formats), tuple(media.attributes), len(CODECS))
        found = _FORMATS.get(key)
    except TypeError:           # an attribute value someone made unhashable: just read it
        return _read_formats(media)
    if found is None:
        if len(_FORMATS) > 1024:    # m-lines come from peers' SDP: bounded
            _FORMATS.clear()
        found = _FORMATS[key] = tuple(_read_formats(media))
    return list(found)


_FORMATS: dict[tuple, tuple[Format, ...]] = {}


def _read_formats(media: Media) -> list[Format]:
    rtpmaps, fmtps = media.rtpmap, media.fmtp
    out = []
    for pt in media.payload_types:
        if pt > 127:   # RTP has 7 bits for it: a larger number names nothing
            out.append(Format(pt, "", 0, None, None, None))
            continue
        rtpmap = rtpmaps.get(pt)
        if rtpmap is not None:
            if rtpmap.encoding.lower() == TELEPHONE_EVENT:
                name = TELEPHONE_EVENT
            else:
                codec = _codec_named(rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels)
                name = codec.name if codec else None
            out.append(Format(pt, rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels,
                              fmtps.get(pt), name))
        elif pt < 96:
            try:
                codec = codec_for_payload_type(pt)
            except ValueError:
                out.append(Format(pt, "", 0, None, fmtps.get(pt), None))
                continue
            out.append(Format(pt, codec.rtpmap_name, codec.clock_rate,
                              codec.channels if codec.channels != 1 else None,
                              fmtps.get(pt), codec.name))
        else:
            out.append(Format(pt, "", 0, None, fmtps.get(pt), None))  # dynamic, no rtpmap
    return out


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class NegotiatedMedia:
    """What one accepted stream was agreed to be, from our side.

    ``payload_type`` is the number to put in the RTP we *send* (the peer's number for the
    codec); ``local_payload_type`` the one the peer puts in what it sends us — the same after
    we answered, possibly different after we offered.  ``direction`` is ours: 'sendonly'
    means we send and do not receive.  ``remote_hold``: the peer put the stream on hold.
    ``codecs`` lists every (payload type, codec) the answer allows, chosen codec first."""

    index: int
    remote_address: str
    remote_port: int
    remote_rtcp_port: int | None
    local_address: str
    local_port: int
    codec: str
    payload_type: int
    local_payload_type: int
    clock_rate: int
    channels: int
    fmtp: str | None
    ptime: int
    telephone_event_pt: int | None
    local_telephone_event_pt: int | None
    direction: str
    remote_hold: bool
    codecs: tuple[tuple[int, str], ...] = ()

    @property
    def sends(self) -> bool:
        return _SEND[self.direction] and self.remote_port != 0 \
            and self.remote_address not in ("0.0.0.0", "::")

    @property
    def receives(self) -> bool:
        return _RECV[self.direction]

    @property
    def codec_info(self) -> Codec:
        """The registry entry (encoder, decoder, timestamp step …) of the chosen codec."""
        return get_codec(self.codec)


@dataclass
class Negotiation:
    """One completed offer/answer exchange: ``sdp`` is what we sent (our offer or answer),
    ``remote`` what we received, ``streams`` the accepted streams, ``rejected`` the m-lines
    given port 0 with why, ``changed`` False when the peer re-sent an unchanged SDP."""

    sdp: SessionDescription
    remote: SessionDescription
    streams: list[NegotiatedMedia] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    changed: bool = True

    @property
    def audio(self) -> NegotiatedMedia | None:
        """The accepted audio stream (None when every stream was rejected)."""
        return self.streams[0] if self.streams else None


# ---------------------------------------------------------------------------------------------
# The negotiator


@lru_cache(maxsize=64)
def _resolve_codecs(names: tuple) -> tuple[tuple[Codec, ...], bool, int | None]:
    """A negotiator's codec list -> (registry codecs in order, telephone-event?, its rate).
    Remembered: a PBX makes two negotiators per call from the same few lists."""
    codecs: list[Codec] = []
    telephone_event, rate_wanted = False, None
    for name in names:
        if isinstance(name, str) and name.lower().startswith(TELEPHONE_EVENT):
            telephone_event = True
            _, _, rate = name.partition("/")
            if rate and not rate.isdigit():
                raise ValueError(f"bad telephone-event rate in {name!r}")
            rate_wanted = int(rate) if rate else None
        else:
            codec = get_codec(name)
            if codec not in codecs:
                codecs.append(codec)
    if not codecs:
        raise ValueError("at least one audio codec is needed, not only telephone-event")
    return tuple(codecs), telephone_event, rate_wanted


class SdpNegotiator:
    """Our side of the offer/answer exchanges of one call leg (like pjmedia's SDP
    negotiator): local capabilities and state in, SDP and NegotiatedMedia out.

    ``codecs`` are registry names in preference order ("pcmu", "PCMA", "g722",
    "opus/48000/2" …) plus "telephone-event" (offered at every clock rate of our codecs) or
    "telephone-event/8000" (that rate only).  ``session_id`` / ``session_version`` start the
    o= line (random id by default).  ``protocols`` are the m-line transports we accept.
    """

    def __init__(self, address: str, port: int, codecs=("pcmu", "pcma", TELEPHONE_EVENT), *,
                 ptime: int = 20, direction: str = "sendrecv", prefer: str = "offer",
                 keep: str = "first", session_id: int | None = None, session_version: int = 0,
                 username: str = "labkit", session_name: str = "labkit",
                 protocols=("RTP/AVP",), dtmf_events: str = _DTMF_EVENTS):
        self._check_address(address, port)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        if prefer not in ("offer", "local"):
            raise ValueError(f"prefer must be 'offer' or 'local', not {prefer!r}")
        if keep not in ("first", "all"):
            raise ValueError(f"keep must be 'first' or 'all', not {keep!r}")
        if not isinstance(ptime, int) or not 1 <= ptime <= 200:
            raise ValueError(f"ptime must be a whole number of ms 1..200, not {ptime!r}")
        self.address = address
        self.port = port
        try:
            resolved, self.telephone_event, self.telephone_event_rate = _resolve_codecs(tuple(codecs))
        except TypeError:   # something unhashable in the list: resolve it without the memory
            resolved, self.telephone_event, self.telephone_event_rate = _resolve_codecs.__wrapped__(
                tuple(codecs))
        self.codecs: list[Codec] = list(resolved)
        self.events = parse_events(dtmf_events)
        self.ptime = ptime
        self.direction = direction
        self.prefer = prefer
        self.keep = keep
        self.protocols = tuple(protocols)
        self.username = username
        self.session_name = session_name
        self.session_id = str(session_id if session_id is not None
                              else random_below(2 ** 62) + 1)
        self.session_version = session_version
        #: our previous SDP (or its lines without the o= line), see _stamp
        self._last_sent: SessionDescription | list[str] | None = None
        self.pending_offer: SessionDescription | None = None
        self.current: Negotiation | None = None
        self._remote_origin: Origin | None = None
        #: payload type numbers already used in this session, by codec name or
        #: 'telephone-event/<rate>': a re-offer keeps them (RFC 3264 §8.3.2)
        self.bound_payload_types: dict[str, int] = {}

    @staticmethod
    def _check_address(address: str, port: int) -> None:
        if not isinstance(address, str) or not address or " " in address:
            raise ValueError(f"bad media address {address!r}")
        if not isinstance(port, int) or not 0 < port <= 65535:
            raise ValueError(f"media port must be 1..65535, not {port!r}")

    # local changes ---------------------------------------------------------------------------
    def set_local(self, address: str | None = None, port: int | None = None) -> None:
        """Move our media (e.g. the B2BUA re-anchors it); the next SDP gets a new version."""
        address = self.address if address is None else address
        port = self.port if port is None else port
        self._check_address(address, port)
        self.address, self.port = address, port

    def hold(self, inactive: bool = False) -> None:
        """Put the peer on hold: we keep sending (music on hold) but ask for nothing back
        (a=sendonly), or stop both ways (a=inactive).  Takes effect with the next offer."""
        self.direction = "inactive" if inactive else "sendonly"

    def resume(self) -> None:
        self.direction = "sendrecv"

    # SDP building ----------------------------------------------------------------------------
    def _addrtype(self) -> str:
        return "IP6" if ":" in self.address else "IP4"

    def _session(self, times=None) -> SessionDescription:
        sd = SessionDescription(
            origin=Origin(self.username, self.session_id, self.session_version, "IN",
                          self._addrtype(), self.address),
            name=self.session_name, connection=Connection("IN", self._addrtype(), self.address))
        if times:
            sd.times = list(times)
        return sd

    def _stamp(self, sd: SessionDescription) -> SessionDescription:
        """Give ``sd`` our o= line: the version moves on only when the content changed.

        The previous SDP is kept as it was sent and written out only when a later one must
        be compared with it: most call legs send one SDP and never need its text here."""
        previous = self._last_sent
        if previous is not None:
            if isinstance(previous, SessionDescription):
                previous = _content_lines(previous)
            body = _content_lines(sd)
            if body != previous:
                self.session_version += 1
            self._last_sent = body
        else:
            self._last_sent = sd
        sd.origin = Origin(self.username, self.session_id, self.session_version, "IN",
                           self._addrtype(), self.address)
        return sd

    def _te_rates(self, codecs: list[Codec]) -> list[int]:
        if not self.telephone_event:
            return []
        if self.telephone_event_rate is not None:
            return [self.telephone_event_rate]
        rates: list[int] = []
        for codec in codecs:
            if codec.clock_rate not in rates:
                rates.append(codec.clock_rate)
        return rates

    def create_offer(self) -> SessionDescription:
        """Our offer: one audio m-line with every local codec.  Call again for a re-offer
        (hold, resume, new address): the o= version goes up only if something changed."""
        if self.pending_offer is not None:
            raise OfferAnswerError("an offer of ours is still waiting for its answer", 491)
        bound = self.bound_payload_types
        wanted = [(c.name, c.rtpmap, c.fmtp,
                   bound.get(c.name, c.payload_type)) for c in self.codecs]
        wanted += [(f"{TELEPHONE_EVENT}/{rate}", f"{TELEPHONE_EVENT}/{rate}",
                    format_events(self.events),
                    bound.get(f"{TELEPHONE_EVENT}/{rate}", _TE_PAYLOAD_TYPES.get(rate)))
                   for rate in self._te_rates(self.codecs)]
        # numbers bound to something else, static numbers, and those the peer's SDP gave to
        # some codec are never handed out to another one
        used = {pt for key, pt in bound.items()}
        if self.current is not None:
            used |= {pt for m in self.current.remote.media for pt in m.payload_types}
        used |= {c.payload_type for c in self.codecs if not c.dynamic and c.payload_type is not None}
        chosen: list[tuple[int, str, str | None]] = []   # (pt, rtpmap, fmtp)
        for key, rtpmap, fmtp, preferred in wanted:
            if key in bound or (preferred is not None and preferred < 96):
                pt = preferred
            elif preferred is not None and preferred not in used:
                pt = preferred
            else:
                pt = next((n for n in range(96, 128) if n not in used), None)
                if pt is None:
                    raise ValueError("no free dynamic payload type left (96-127)")
            used.add(pt)
            chosen.append((pt, rtpmap, fmtp))
            bound[key] = pt
        sd = self._session()
        sd.add_media(self._media(self.port, self.protocols[0], chosen, self.ptime,
                                 self.direction))
        self.pending_offer = self._stamp(sd)
        return sd

    @staticmethod
    def _media(port: int, proto: str, formats: list[tuple[int, str, str | None]],
               ptime: int | None, direction: str) -> Media:
        media = Media("audio", port, proto, [str(pt) for pt, _, _ in formats])
        for pt, rtpmap, fmtp in formats:
            media.add_attribute("rtpmap", f"{pt} {rtpmap}")
            if fmtp:
                media.add_attribute("fmtp", f"{pt} {fmtp}")
        if ptime:
            media.add_attribute("ptime", str(ptime))
        media.add_attribute(direction)
        return media

    def cancel_offer(self) -> None:
        """Our offer was refused (488 to a re-INVITE, CANCEL): the previous session stays."""
        self.pending_offer = None

    # answering -------------------------------------------------------------------------------
    def answer(self, offer: SessionDescription | str | bytes) -> Negotiation:
        """Answer the peer's offer.  Returns the Negotiation whose ``sdp`` is the answer to
        send; raises OfferAnswerError 488 when no stream can be accepted (send 488 Not
        Acceptable Here, nothing changes), 491 while our own offer is pending, 400 for a
        description that cannot be used."""
        if self.pending_offer is not None:
            raise OfferAnswerError("offer glare: our own offer is still pending", 491)
        offer = _as_sdp(offer, "offer")
        answer = self._session(times=offer.times)
        streams, rejected = [], []
        bound: dict[str, int] = {}    # codec key -> payload type, of the accepted m-lines
        for index, media in enumerate(offer.media):
            result = self._answer_media(index, media, accepted_audio=bool(streams))
            if isinstance(result, str):
                rejected.append((index, result))
                formats = media.formats or ["0"]
                answer.add_media(Media(media.kind, 0, media.proto, formats))
            else:
                accepted, m_line, binds = result
                streams.append(accepted)
                answer.add_media(m_line)
                bound.update(binds)
        if not streams:
            why = "; ".join(f"m-line {i + 1}: {reason}" for i, reason in rejected) \
                or "the offer has no m-line"
            raise OfferAnswerError(f"nothing acceptable in the offer ({why})", 488)
        changed = self._remote_changed(offer)
        self.bound_payload_types.update(bound)
        self._stamp(answer)
        self._remote_origin = offer.origin
        self.current = Negotiation(answer, offer, streams, rejected, changed)
        return self.current

    def _remote_changed(self, remote: SessionDescription) -> bool:
        last = self._remote_origin
        return last is None or (last.username, last.session_id, last.session_version,
                                last.address) != (remote.origin.username,
                                                  remote.origin.session_id,
                                                  remote.origin.session_version,
                                                  remote.origin.address)

    def _answer_media(self, index: int, media: Media, accepted_audio: bool):
        """(NegotiatedMedia, answer m-line, {codec key: payload type} it binds) for an
        acceptable m-line, else why not (str)."""
        if media.port == 0:
            return "disabled by the offerer (port 0)"
        if media.kind != "audio":
            return f"{media.kind} is not supported (audio only)"
        if media.proto not in self.protocols:
            return f"transport {media.proto} is not supported (we take {', '.join(self.protocols)})"
        if accepted_audio:
            return "only one audio stream per call"
        address = media.address
        if address is None:
            raise OfferAnswerError(f"offer m-line {index + 1} has no c= line (and the session "
                                   f"has none)", 400)
        addrtype = _addrtype_of(media)
        if addrtype != self._addrtype():
            return (f"media address {address} is {addrtype}, ours ({self.address}) is "
                    f"{self._addrtype()}")
        formats = offered_formats(media)
        common = self._common(formats)
        if not common:
            offered = ", ".join(f.encoding + (f"/{f.clock_rate}" if f.clock_rate else "")
                                if f.encoding else str(f.payload_type) for f in formats)
            ours = ", ".join(c.rtpmap for c in self.codecs)
            return f"no codec in common (offered {offered}; we have {ours})"
        if self.keep == "first":
            common = common[:1]
        chosen = [CODECS[f.codec] for f in common]    # Format.codec is a registry name
        first_codec = chosen[0]
        events = self._events_for(formats, [c.clock_rate for c in chosen])
        ptime = _usable_ptime(first_codec, media.ptime) or _usable_ptime(first_codec, self.ptime) \
            or 20
        local_direction = answer_direction(_effective_direction(media), self.direction)
        lines = [(f.payload_type, c.rtpmap, c.fmtp) for f, c in zip(common, chosen)]
        binds = {f.codec: f.payload_type for f in common}
        for f in formats:
            if f.payload_type in events:
                lines.append((f.payload_type, f"{TELEPHONE_EVENT}/{f.clock_rate}", events[f.payload_type]))
                binds[f"{TELEPHONE_EVENT}/{f.clock_rate}"] = f.payload_type
        m_line = self._media(self.port, media.proto, lines, ptime, local_direction)
        te = next((f.payload_type for f in formats if f.payload_type in events
                   and f.clock_rate == first_codec.clock_rate), None)
        negotiated = NegotiatedMedia(
            index=index, remote_address=address, remote_port=media.port,
            remote_rtcp_port=_rtcp_port(media), local_address=self.address,
            local_port=self.port, codec=first_codec.name, payload_type=common[0].payload_type,
            local_payload_type=common[0].payload_type, clock_rate=first_codec.clock_rate,
            channels=first_codec.channels, fmtp=common[0].fmtp, ptime=ptime,
            telephone_event_pt=te, local_telephone_event_pt=te, direction=local_direction,
            remote_hold=is_hold(media),
            codecs=tuple((f.payload_type, f.codec) for f in common))
        return negotiated, m_line, binds

    def _common(self, formats: list[Format]) -> list[Format]:
        """The offered formats we share, in the offerer's order or ours; one per codec."""
        ours = [c.name for c in self.codecs]
        offered = [f for f in formats if f.codec in ours]
        if self.prefer == "local":
            offered.sort(key=lambda f: ours.index(f.codec))
        out, seen = [], set()
        for f in offered:
            if f.codec not in seen:
                seen.add(f.codec)
                out.append(f)
        return out

    def _events_for(self, formats: list[Format], rates: list[int]) -> dict[int, str]:
        """telephone-event payload types to keep: one per accepted clock rate, events ∩ ours."""
        if not self.telephone_event:
            return {}
        out, done = {}, set()
        for f in formats:
            if not f.is_telephone_event or f.clock_rate not in rates or f.clock_rate in done:
                continue
            if self.telephone_event_rate not in (None, f.clock_rate):
                continue
            try:
                theirs = parse_events(f.fmtp) if f.fmtp else set(range(16))  # RFC 4733: none means 0-15
            except ValueError:
                continue
            common = theirs & self.events
            if common:
                out[f.payload_type] = format_events(common)
                done.add(f.clock_rate)
        return out

    # receiving an answer ---------------------------------------------------------------------
    def receive_answer(self, answer: SessionDescription | str | bytes) -> Negotiation:
        """Take the peer's answer to our pending offer.  Streams the answer rejects (port 0)
        or answers without any codec we offered are listed in ``rejected``; when none is
        left, ``audio`` is None (ACK, then end the call).  An answer whose m-lines do not
        line up with the offer raises OfferAnswerError."""
        offer = self.pending_offer
        if offer is None:
            raise OfferAnswerError("an answer arrived but we have no offer pending", 400)
        answer = _as_sdp(answer, "answer")
        if len(answer.media) != len(offer.media):
            raise OfferAnswerError(f"the answer has {len(answer.media)} m-lines, our offer had "
                                   f"{len(offer.media)} (RFC 3264 §6)", 488)
        streams, rejected = [], []
        for index, (mine, theirs) in enumerate(zip(offer.media, answer.media)):
            result = self._take_answer(index, mine, theirs)
            if isinstance(result, str):
                rejected.append((index, result))
            else:
                streams.append(result)
        self.pending_offer = None
        changed = self._remote_changed(answer)
        self._remote_origin = answer.origin
        self.current = Negotiation(offer, answer, streams, rejected, changed)
        return self.current

    def _take_answer(self, index: int, mine: Media, theirs: Media):
        if theirs.kind != mine.kind or theirs.proto != mine.proto:
            raise OfferAnswerError(f"answer m-line {index + 1} is {theirs.kind} {theirs.proto}, "
                                   f"the offer's was {mine.kind} {mine.proto}", 488)
        if theirs.port == 0:
            return "rejected by the answerer (port 0)"
        address = theirs.address
        if address is None:
            raise OfferAnswerError(f"answer m-line {index + 1} has no c= line", 400)
        offered = offered_formats(mine)
        ours_by_codec = {f.codec: f for f in offered if f.codec}
        answered = offered_formats(theirs)
        common = [f for f in answered if f.codec in ours_by_codec and not f.is_telephone_event]
        if not common:
            return "the answer holds no codec we offered"
        first_codec = get_codec(common[0].codec)
        te = next((f for f in answered if f.is_telephone_event
                   and f.clock_rate == first_codec.clock_rate
                   and any(o.is_telephone_event and o.clock_rate == f.clock_rate
                           for o in offered)), None)
        local_te = next((o.payload_type for o in offered if o.is_telephone_event
                         and te is not None and o.clock_rate == te.clock_rate), None)
        ptime = _usable_ptime(first_codec, theirs.ptime) or _usable_ptime(first_codec,
                                                                         self.ptime) or 20
        # their direction is what *they* do; ours is its mirror, within what we offered
        direction = answer_direction(_effective_direction(theirs), mine.direction)
        return NegotiatedMedia(
            index=index, remote_address=address, remote_port=theirs.port,
            remote_rtcp_port=_rtcp_port(theirs), local_address=self.address,
            local_port=mine.port, codec=first_codec.name, payload_type=common[0].payload_type,
            local_payload_type=ours_by_codec[first_codec.name].payload_type,
            clock_rate=first_codec.clock_rate, channels=first_codec.channels,
            fmtp=common[0].fmtp, ptime=ptime,
            telephone_event_pt=te.payload_type if te else None,
            local_telephone_event_pt=local_te, direction=direction,
            remote_hold=is_hold(theirs),
            codecs=tuple((f.payload_type, f.codec) for f in common))


def _content_lines(sd: SessionDescription) -> list[str]:
    """An SDP's lines without its o= line: what _stamp compares."""
    return [line for line in sd.lines() if not line.startswith("o=")]


def _as_sdp(value, what: str) -> SessionDescription:
    if isinstance(value, SessionDescription):
        return value
    if not isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"the {what} must be SDP text, bytes or a SessionDescription")
    try:
        return SessionDescription.parse(value)
    except ParseError as err:
        raise OfferAnswerError(f"bad SDP in the {what}: {err}", 400) from None


def _addrtype_of(media: Media) -> str:
    connection = media.connection or (media.session.connection if media.session else None)
    return connection.addrtype.upper() if connection else "IP4"


def _effective_direction(media: Media) -> str:
    """The m-line's direction, with the RFC 2543 hold (c=0.0.0.0: send nothing to me)
    read as 'this side does not receive'."""
    direction = media.direction
    if _zero_address_hold(media):
        direction = _direction(_SEND[direction], False)
    return direction


def _usable_ptime(codec: Codec, ptime: int | None) -> int | None:
    if not ptime:
        return None
    try:
        codec.samples_per_frame(ptime)
    except ValueError:
        return None
    return ptime


def _rtcp_port(media: Media) -> int | None:
    """Where the peer wants RTCP: a=rtcp (RFC 3605), else the RTP port + 1 (None when that
    is past 65535).  We never offer or accept a=rtcp-mux, so an offered one is not in force."""
    value = media.get_attribute("rtcp")
    if value:
        port = value.split()[0]
        if port.isdigit() and 0 < int(port) <= 65535:
            return int(port)
    return media.port + 1 if media.port < 65535 else None
