"""RFC 4733 digits relayed to a phone without telephone-event become in-band DTMF tones.

Real loopback sockets through the relay (both event loops, as in test_relay.py); what phone B
receives is decoded and run through the Goertzel DTMF detector of labkit.dsp.dtmf.
"""
from __future__ import annotations

import numpy as np
import pytest

from labkit.codecs import get_codec
from labkit.dsp.dtmf import detect
from labkit.pbx.media import MediaRelay, PortAllocator, Transcoder
from labkit.pbx.media.dtmf_inband import STALE_MS, InbandDtmf
from labkit.rtp.packet import RtpPacket, TelephoneEvent

from .test_relay import PORTS, Phone, arun, hang_up, rtp, until  # noqa: F401  (arun: fixture)

def phone_a_presses(digit: str, start_ts: int, updates: int, codec: str = "pcmu", ssrc: int = 0xA):
    """What phone A sends in ``codec``: 10 quiet frames, then an event of ``updates`` x 20 ms with
    a loud noise frame interleaved after each update (a sender that keeps its audio running),
    the end packet three times, then 10 quiet frames. Returns (packets, duration in ticks)."""
    c = get_codec(codec)
    encoder, n = c.encoder(), c.samples_per_frame(20)
    rng = np.random.default_rng(7)
    quiet = lambda: encoder.encode(np.zeros(n, np.int16))                      # noqa: E731
    noise = lambda: encoder.encode(rng.normal(0, 8000, n).astype(np.int16))   # noqa: E731
    pt, step = c.payload_type, c.timestamp_increment(20)
    packets, seq = [], 0
    for i in range(10):
        packets.append(rtp(seq, pt=pt, ssrc=ssrc, ts=start_ts - step * (10 - i), payload=quiet()))
        seq += 1
    for k in range(1, updates + 1):
        event = TelephoneEvent.for_digit(digit, duration=step * k)
        packets.append(rtp(seq, pt=101, ssrc=ssrc, ts=start_ts, payload=bytes(event), marker=k == 1))
        packets.append(rtp(seq + 1, pt=pt, ssrc=ssrc, ts=start_ts + step * (k - 1), payload=noise()))
        seq += 2
    end = bytes(TelephoneEvent.for_digit(digit, end=True, duration=step * updates))
    for _ in range(3):
        packets.append(rtp(seq, pt=101, ssrc=ssrc, ts=start_ts, payload=end))
        seq += 1
    for i in range(10):
        packets.append(rtp(seq, pt=pt, ssrc=ssrc, ts=start_ts + step * (updates + i), payload=quiet()))
        seq += 1
    return packets, step * updates


@pytest.mark.parametrize("a_codec, b_codec, mode, back", [
    ("pcmu", "pcmu", "pass+dtmf-inband", "pass"),
    ("pcmu", "pcma", "transcode pcmu->pcma+dtmf-inband", "transcode pcma->pcmu"),
    ("pcmu", "g722", "transcode pcmu->g722+dtmf-inband", "transcode g722->pcmu"),
    ("g722", "g722", "transcode g722->g722+dtmf-inband", "pass"),     # one encoder toward B
    ("g722", "pcmu", "transcode g722->pcmu+dtmf-inband", "transcode pcmu->g722"),
])
def test_rfc4733_digit_reaches_a_phone_without_telephone_event_as_tones(arun, a_codec, b_codec, mode, back):
    async def main():
        relay = await MediaRelay(PortAllocator("127.0.0.1", *PORTS)).open()
        a, b = await Phone.open(), await Phone.open()
        relay.a.configure(remote=a.address, codec=a_codec, dtmf_payload_type=101)
        relay.b.configure(remote=b.address, codec=b_codec, dtmf_payload_type=None)
        assert relay.modes == {"a->b": mode, "b->a": back}        # B sends no events: nothing to do
        packets, duration = phone_a_presses("5", 48000, updates=10, codec=a_codec)
        for pkt in packets:
            a.send(pkt, relay.a.local)
        await until(lambda: relay.a.rx_packets == len(packets))
        got = [RtpPacket.parse((await b.recv())[0]) for _ in range(relay.b.tx_packets)]
        assert b.queue.empty()
        await hang_up(relay, a, b)
        return got, duration
    got, duration = arun(main)
    codec = get_codec(b_codec)
    assert {p.payload_type for p in got} == {codec.payload_type}          # no telephone-event reached B
    assert len(got) == 10 + 10 + 10                    # quiet, one tone frame per update, quiet
    seqs = [p.sequence_number for p in got]
    assert all((s2 - s1) & 0xFFFF == 1 for s1, s2 in zip(seqs, seqs[1:]))     # one unbroken stream
    stamps = [p.timestamp for p in got]
    assert all((t2 - t1) & 0xFFFFFFFF == 160 for t1, t2 in zip(stamps, stamps[1:]))
    decoder = codec.decoder()
    pcm = np.concatenate([decoder.decode(p.payload) for p in got])
    presses = detect(pcm, codec.sample_rate)
    assert [e.digit for e in presses] == ["5"]
    assert presses[0].start == pytest.approx(10 * 0.020, abs=0.015)          # after the 10 quiet frames
    assert presses[0].duration == pytest.approx(duration / 8000, abs=0.025)
    # quiet again at once: the relay's decoder followed the noise the tone replaced (absorb),
    # else G.722's ADPCM state lags and the silence decodes at RMS 25-70
    after = pcm[-codec.samples_per_frame(20) * 9:].astype(float)
    assert np.sqrt(np.mean(after ** 2)) < 10


def test_with_telephone_event_on_both_legs_events_pass_unchanged(arun):
    async def main():
        relay = await MediaRelay(PortAllocator("127.0.0.1", *PORTS)).open()
        a, b = await Phone.open(), await Phone.open()
        relay.a.configure(remote=a.address, codec="pcmu", dtmf_payload_type=101)
        relay.b.configure(remote=b.address, codec="pcmu", dtmf_payload_type=101)
        assert relay.modes == {"a->b": "pass", "b->a": "pass"} and relay.a.plain
        packets, _ = phone_a_presses("5", 48000, updates=5)
        for pkt in packets:
            a.send(pkt, relay.a.local)
        got = [(await b.recv())[0] for _ in packets]
        assert got == packets                                  # byte for byte, events and noise too
        await hang_up(relay, a, b)
    arun(main)


def generator(**kw) -> InbandDtmf:
    return InbandDtmf("pcmu", 0, 101, **kw)


def event(seq, ts, duration, end=False, digit="1", ssrc=0xA):
    return rtp(seq, pt=101, ssrc=ssrc, ts=ts,
               payload=bytes(TelephoneEvent.for_digit(digit, end=end, duration=duration)))


def audio(seq, ts, ssrc=0xA):
    return rtp(seq, ssrc=ssrc, ts=ts, payload=b"\xff" * 160)


def test_end_retransmissions_and_late_updates_add_no_tone():
    gen = generator()
    first = RtpPacket.parse(gen.convert(event(1, 8000, 160)))
    assert (first.payload_type, first.timestamp, len(first.payload)) == (0, 8000, 160)
    second = RtpPacket.parse(gen.convert(event(2, 8000, 400, end=True)))   # a 50 ms update
    assert (second.sequence_number, second.timestamp, len(second.payload)) == (2, 8160, 240)
    assert gen.convert(event(3, 8000, 400, end=True)) is None               # retransmitted end
    assert gen.convert(event(4, 8000, 400, end=True)) is None
    assert "no new duration" in gen.drop_reason
    after = RtpPacket.parse(gen.convert(audio(5, 8400)))                   # audio resumes
    assert (after.sequence_number, after.timestamp) == (3, 8400)           # seq closed up over 2 drops
    gen.convert(event(6, 9600, 160, digit="2"))                             # the next key
    assert gen.convert(event(7, 8000, 480, end=True)) is None               # the old key, late
    assert gen.drop_reason == "an update of an earlier event" and gen.tones == 3


def test_an_event_whose_end_was_lost_stops_suppressing_audio():
    gen = generator()
    gen.convert(event(1, 8000, 160))
    assert gen.convert(audio(2, 8000)) is None and gen.suppressed == 1
    stale = 160 + 8 * STALE_MS                                  # ticks past the start
    assert gen.convert(audio(3, 8000 + stale - 160)) is None   # still within the grace time
    out = RtpPacket.parse(gen.convert(audio(4, 8000 + stale)))
    assert (out.sequence_number, out.payload) == (2, b"\xff" * 160)
    assert RtpPacket.parse(gen.convert(audio(5, 8000 + stale + 160))).sequence_number == 3
    other = audio(6, 8000, ssrc=0xB)                           # another SSRC is not this event's
    assert gen.convert(other)[12:] == other[12:]


def test_lost_updates_leave_at_most_max_step_of_tone_and_non_dtmf_events_are_dropped():
    gen = generator()
    gen.convert(event(1, 0, 160))
    jump = RtpPacket.parse(gen.convert(event(2, 0, 160 + 8000)))   # a second of updates lost
    assert len(jump.payload) == 1600 and jump.timestamp == 160 + 8000 - 1600
    flash = rtp(3, pt=101, ts=20000, payload=bytes(TelephoneEvent(16, duration=160)))
    assert gen.convert(flash) is None and "not a DTMF key" in gen.drop_reason
    for stateful in (("opus", 111), ("g722", 9)):
        with pytest.raises(ValueError, match="cannot be encoded apart"):
            InbandDtmf(*stateful, 101)
    with pytest.raises(ValueError, match="fixed frame sizes"):
        InbandDtmf("pcmu", 0, 101, transcoder=Transcoder("pcmu", 0, "opus", 111))


def test_the_tone_level_follows_the_event_volume():
    loud = generator().convert(rtp(1, pt=101, payload=bytes(TelephoneEvent(5, volume=6, duration=800))))
    quiet = generator().convert(rtp(1, pt=101, payload=bytes(TelephoneEvent(5, volume=26, duration=800))))
    decode = get_codec("pcmu").decoder().decode
    rms = [np.sqrt(np.mean(decode(p[12:]).astype(float) ** 2)) for p in (loud, quiet)]
    assert 20 * np.log10(rms[0] / rms[1]) == pytest.approx(20, abs=0.5)


def test_planned_only_toward_a_leg_without_telephone_event_that_takes_any_frame_size():
    relay = MediaRelay(PortAllocator("127.0.0.1", *PORTS))      # planning only: never opened
    relay.a.configure(codec="l16", payload_type=97, dtmf_payload_type=101)
    relay.b.configure(codec="l16", payload_type=98, dtmf_payload_type=None)
    assert relay.modes == {"a->b": "remap+dtmf-inband", "b->a": "remap"}
    assert not relay.a.plain and relay.inband_dtmf("b->a") is None
    tone = RtpPacket.parse(bytes(relay.a.rewrite(rtp(1, pt=101, ts=0, payload=bytes(
        TelephoneEvent.for_digit("9", duration=160))))))
    assert (tone.payload_type, len(tone.payload)) == (98, 320)          # remapped after: B's number
    gen = relay.inband_dtmf("a->b")
    relay.b.set_direction("sendonly")
    relay.b.configure(direction="sendrecv")                             # a re-plan keeps the event
    assert relay.inband_dtmf("a->b") is gen and gen.tones == 1
    relay.b.configure(dtmf_payload_type=100)
    assert relay.modes["a->b"] == "remap" and relay.inband_dtmf("a->b") is None
    relay.b.configure(codec="pcmu", dtmf_payload_type=None)
    assert relay.modes["a->b"] == "transcode l16->pcmu+dtmf-inband"
    relay.a.configure(codec="opus", payload_type=111, dtmf_payload_type=101)
    relay.b.configure(codec="opus", payload_type=111, dtmf_payload_type=None)
    assert relay.modes["a->b"] == "remap"          # an Opus-only phone takes fixed frames: no tones
    assert relay.a.rewrite(rtp(2, pt=101, payload=bytes(TelephoneEvent(1, duration=960)))) is None
    relay.b.configure(codec="pcmu", dtmf_payload_type=None)
    assert relay.modes["a->b"] == "transcode opus->pcmu+dtmf-inband"
