"""A SIP-I style INVITE (RFC 3204: multipart/mixed with SDP and a binary ISUP IAM) through the
PBX: it must find the offer in the SDP part and answer it (RFC 5621)."""
import asyncio

import pytest

import labkit.lab.softphone as softphone
from labkit.sip import BodyPart, build_multipart

from .test_calls import pbx, phones, run, settle  # noqa: F401  (pbx: fixture)

IAM = bytes.fromhex("01 00 20 01 0a 00 02 0a 08 83 10 02 10 53 01 1f 0d 0a 07 03 13 0d 0a 2d 2d 0d 00")


def test_pbx_answers_the_sdp_part_of_a_sipi_invite(pbx, monkeypatch):
    sent = []
    plain = softphone.make_request

    def sipi_request(method, uri, *, body=b"", content_type=None, **kw):
        """Alice's INVITE as a PSTN gateway would send it: her offer plus the ISUP IAM."""
        if method == "INVITE" and body:
            content_type, body = build_multipart([
                BodyPart("application/sdp", body),
                BodyPart("application/ISUP;version=itu-t92+", IAM,
                         (("Content-Disposition", "signal;handling=optional"),))])
        request = plain(method, uri, body=body, content_type=content_type, **kw)
        sent.append(request)
        return request
    monkeypatch.setattr(softphone, "make_request", sipi_request)

    async def scenario():
        alice, bob = await phones(pbx, ("100", {"codecs": ("pcma",)}), ("101", {}))
        call = await alice.call(pbx.address, "101")
        invite = next(r for r in sent if r.method == "INVITE")
        assert invite.content_type == "multipart/mixed" and invite.parts[1].body == IAM
        assert call.status == 200
        assert call.media.codec == "pcma"    # the PBX answered the offer in the SDP part
        incoming = await bob.incoming_calls.get()
        await incoming.answered.wait()
        assert (await call.hangup()).status == 200
        await asyncio.wait_for(incoming.ended.wait(), 3)
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_pbx_refuses_a_multipart_invite_without_its_closing_delimiter(pbx, monkeypatch):
    plain = softphone.make_request

    def cut_request(method, uri, *, body=b"", content_type=None, **kw):
        if method == "INVITE" and body:
            content_type, body = build_multipart([BodyPart("application/sdp", body)], "cut")
            body = body[:-len(b"--cut--\r\n")]
        return plain(method, uri, body=body, content_type=content_type, **kw)
    monkeypatch.setattr(softphone, "make_request", cut_request)

    async def scenario():
        alice, bob = await phones(pbx, ("100", {}), ("101", {}))
        call = await alice.call(pbx.address, "101")
        assert call.status == 400
        assert bob.incoming_calls.empty()
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def test_pbx_refuses_a_body_part_it_must_understand_with_415_and_accept(pbx, monkeypatch):
    """RFC 5621 §5 / RFC 3261 §20.11: a part the PBX does not understand whose handling is
    required -- the default when Content-Disposition says nothing -- is a 415 naming what it
    accepts; the callee never rings."""
    plain = softphone.make_request
    sent = []

    def strict_isup(method, uri, *, body=b"", content_type=None, **kw):
        if method == "INVITE" and body:
            content_type, body = build_multipart([BodyPart("application/sdp", body),
                                                  BodyPart("application/ISUP;version=itu-t92+", IAM)])
        sent.append(plain(method, uri, body=body, content_type=content_type, **kw))
        return sent[-1]
    monkeypatch.setattr(softphone, "make_request", strict_isup)

    refusals = []
    pbx.call(lambda: pbx.server.bus.subscribe(
        lambda ev: refusals.append(ev.data["message"]) if getattr(ev.data["message"], "status", 0) == 415
        else None, "sip.out"))

    async def scenario():
        alice, bob = await phones(pbx, ("100", {}), ("101", {}))
        call = await alice.call(pbx.address, "101")
        assert call.status == 415
        assert [r.get_all("Accept") for r in refusals] == [["application/sdp", "multipart/mixed",
                                                             "multipart/alternative"]]
        assert bob.incoming_calls.empty()
        await settle(pbx)
        for p in (alice, bob):
            await p.stop()
    run(pbx, scenario)


def _request(content_type: str, body: bytes, disposition: str | None = None):
    from labkit.sip import parse
    extra = f"Content-Disposition: {disposition}\r\n" if disposition else ""
    return parse((f"INVITE sip:101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
                  f"From: <sip:100@127.0.0.1>;tag=1\r\nTo: <sip:101@127.0.0.1>\r\nCall-ID: c1\r\n"
                  f"CSeq: 1 INVITE\r\nContent-Type: {content_type}\r\n{extra}"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)


SDP = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def test_which_bodies_the_pbx_must_refuse_with_415():
    from labkit.pbx.calls import _sdp_of
    from labkit.pbx.callmedia import MediaError

    assert _sdp_of(_request("application/sdp", SDP), answerable=True) == SDP
    with pytest.raises(MediaError) as refused:                       # handling defaults to required
        _sdp_of(_request("text/plain", b"hello"), answerable=True)
    assert (refused.value.status, refused.value.reason) == (415, "Unsupported Media Type")
    assert _sdp_of(_request("text/plain", b"hello", "render;handling=optional"), answerable=True) == b""
    optional = build_multipart([BodyPart("application/sdp", SDP), BodyPart(
        "application/ISUP;version=itu-t92+", IAM, (("Content-Disposition", "signal;handling=optional"),))])
    assert _sdp_of(_request(*optional), answerable=True) == SDP
    required = build_multipart([BodyPart("application/sdp", SDP), BodyPart(
        "application/ISUP;version=itu-t92+", IAM, (("Content-Disposition", "signal;handling=REQUIRED"),))])
    with pytest.raises(MediaError, match="Unsupported Media Type"):
        _sdp_of(_request(*required), answerable=True)
    assert _sdp_of(_request(*required)) == SDP                      # a response or ACK: not refused
