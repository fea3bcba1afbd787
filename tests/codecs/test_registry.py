"""The codec registry: lookup by name, payload type and rtpmap; frame arithmetic; L16."""
import numpy as np
import pytest

from labkit.codecs import CODECS, codec_for_payload_type, codec_for_rtpmap, get_codec


def test_unknown_codec_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        get_codec("gsm")
    assert str(err.value).startswith("unknown codec 'gsm'; known: pcmu, pcma, g722, opus")


def test_lookup_by_name_is_case_insensitive_and_accepts_rtpmap():
    assert get_codec("PCMU") is CODECS["pcmu"]
    assert get_codec("PCMA/8000").name == "pcma"
    assert get_codec("opus/48000/2").name == "opus"
    assert get_codec("L16/16000").name == "l16-16k"


@pytest.mark.parametrize("pt, name", [(0, "pcmu"), (8, "pcma"), (9, "g722"), (11, "l16-44k"),
                                      (111, "opus")])
def test_payload_types(pt, name):
    assert codec_for_payload_type(pt).name == name


def test_unknown_payload_type():
    with pytest.raises(ValueError, match="no codec for payload type 3; known: 0=pcmu"):
        codec_for_payload_type(3)
    with pytest.raises(ValueError, match="0..127"):
        codec_for_payload_type(200)
    with pytest.raises(ValueError, match="0..127"):
        codec_for_payload_type("0")
    assert codec_for_payload_type(np.uint8(8)).name == "pcma"     # as parsed from a packet


def test_rtpmap_quirks():
    g722 = get_codec("g722")
    assert (g722.rtpmap, g722.clock_rate, g722.sample_rate) == ("G722/8000", 8000, 16000)
    assert get_codec("opus").rtpmap == "opus/48000/2"       # RFC 7587: always /2
    assert codec_for_rtpmap("pcmu", 8000) is CODECS["pcmu"]
    with pytest.raises(ValueError, match="no codec for rtpmap PCMU/16000"):
        codec_for_rtpmap("PCMU", 16000)


@pytest.mark.parametrize("name, ptime, samples, ticks, size", [
    ("pcmu", 20, 160, 160, 160), ("pcma", 30, 240, 240, 240), ("g722", 20, 320, 160, 160),
    ("opus", 20, 960, 960, None), ("l16", 20, 160, 160, 320), ("l16-16k", 10, 160, 160, 320),
    ("l16-44k", 10, 441, 441, 882),
])
def test_frame_arithmetic(name, ptime, samples, ticks, size):
    c = get_codec(name)
    assert c.samples_per_frame(ptime) == samples
    assert c.timestamp_increment(ptime) == ticks
    assert c.payload_size(ptime) == size


def test_bad_ptime():
    with pytest.raises(ValueError, match="opus frames must be one of 2.5, 5, 10, 20, 40, 60 ms"):
        get_codec("opus").samples_per_frame(25)
    with pytest.raises(ValueError, match="positive"):
        get_codec("pcmu").samples_per_frame(0)
    with pytest.raises(ValueError, match="not a whole number of samples at 44100"):
        get_codec("l16-44k").samples_per_frame(1.5)


def test_g711_codecs_round_trip_frames():
    rng = np.random.default_rng(1)
    pcm = rng.integers(-20000, 20000, 160).astype(np.int16)
    for name in ("pcmu", "pcma"):
        c = get_codec(name)
        payload = c.encoder().encode(pcm)
        assert isinstance(payload, bytes) and len(payload) == 160
        out = c.decoder().decode(payload)
        assert out.dtype == np.int16 and out.shape == (160,)
        assert np.max(np.abs(out.astype(int) - pcm)) <= 1024 // 2 + 8


def test_l16_is_big_endian_on_the_wire():
    c = get_codec("l16")
    payload = c.encoder().encode(np.array([1, -2, 0x1234], np.int16))
    assert payload == b"\x00\x01\xff\xfe\x12\x34"
    assert c.decoder().decode(payload).tolist() == [1, -2, 0x1234]
    with pytest.raises(ValueError, match="odd length"):
        c.decoder().decode(b"\x00\x01\x02")


def test_encoders_refuse_stereo_and_float():
    enc = get_codec("pcmu").encoder()
    with pytest.raises(ValueError, match="mono"):
        enc.encode(np.zeros((2, 160), np.int16))
    with pytest.raises(TypeError, match="int16"):
        enc.encode(np.zeros(160, np.float32))
