"""labkit.sip — SIP on the wire and as a protocol, sans-I/O (see docs/architecture.md).

Introduced in notebook 01 (wire format: URIs, messages, typed headers, SDP).
Other modules of this package add their exports below; keep this import list tolerant.
"""
from .uri import AbsoluteURI, Params, ParseError, SipURI, TelURI, URI, parse_uri
from .headers import AuthHeader, CSeq, NameAddr, Via
from .message import Headers, Message, Request, Response, REASONS, frame_stream, parse
from .sdp import SessionDescription, Media
from .multipart import BodyPart, build_multipart, parse_multipart
# the protocol layers (notebooks 03 and 06), all sans-I/O
from .digest import DigestClient, DigestServer, FailureBan
from .transaction import TimerValues, TransactionLayer
from .dialog import Dialog, DialogSet, DialogTable
from .offer_answer import NegotiatedMedia, OfferAnswerError, SdpNegotiator

__all__ = [
    "AbsoluteURI", "Params", "ParseError", "SipURI", "TelURI", "URI", "parse_uri",
    "AuthHeader", "CSeq", "NameAddr", "Via",
    "Headers", "Message", "Request", "Response", "REASONS", "frame_stream", "parse",
    "SessionDescription", "Media", "BodyPart", "build_multipart", "parse_multipart",
    "DigestClient", "DigestServer", "FailureBan", "TimerValues", "TransactionLayer",
    "Dialog", "DialogSet", "DialogTable", "NegotiatedMedia", "OfferAnswerError", "SdpNegotiator",
]
