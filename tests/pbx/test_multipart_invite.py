"""A SIP-I style INVITE (RFC 3204: multipart/mixed with SDP and a binary ISUP IAM) through the
PBX: it must find the offer in the SDP part and answer it (RFC 5621)."""
import asyncio

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
