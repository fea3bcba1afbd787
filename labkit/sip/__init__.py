"""labkit.sip — SIP on the wire and as a protocol, sans-I/O (see docs/architecture.md).

Introduced in notebook 01 (wire format: URIs, messages, typed headers, SDP).
Other modules of this package add their exports below; keep this import list tolerant.
"""
from .uri import AbsoluteURI, Params, ParseError, SipURI, TelURI, URI, parse_uri
from .headers import AuthHeader, CSeq, NameAddr, Via
from .message import Headers, Message, Request, Response, REASONS, frame_stream, parse
from .sdp import SessionDescription, Media

__all__ = [
    "AbsoluteURI", "Params", "ParseError", "SipURI", "TelURI", "URI", "parse_uri",
    "AuthHeader", "CSeq", "NameAddr", "Via",
    "Headers", "Message", "Request", "Response", "REASONS", "frame_stream", "parse",
    "SessionDescription", "Media",
]
