"""transcode(): every pair of codecs, PCM on either side, and the command line."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from labkit.codecs import CODECS, get_codec
from labkit.codecs.g711 import alaw_decode, ulaw_encode, ulaw_to_alaw
from labkit.codecs.transcode import decode_stream, encode_stream, main, transcode
from labkit.dsp.quality import estimate_delay, snr_db

SPEECH = Path(__file__).resolve().parents[2] / "data" / "audio" / "speech_en.wav"


def tone(rate, seconds=0.5, freq=440.0, level=0.3):
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(level * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_pcmu_to_pcma_is_the_table_mapping():
    codes = bytes(range(256)) * 4
    assert transcode(codes, "pcmu", "pcma") == ulaw_to_alaw(codes).tobytes()


@pytest.mark.parametrize("src", sorted(CODECS))
@pytest.mark.parametrize("dst", sorted(CODECS))
def test_every_pair_keeps_a_tone(src, dst):
    s, d = get_codec(src), get_codec(dst)
    payload = transcode(tone(s.sample_rate), None, s)
    out = transcode(transcode(payload, s, d), d, None, rate=8000)
    assert out.dtype == np.int16
    ref = tone(8000)
    assert abs(len(out) - len(ref)) <= 8000 * 0.06 + 1        # padding to whole frames only
    # the 440 Hz tone comes through at its level (within 1.5 dB) whatever the path
    mid = slice(1000, 3000)
    lag = estimate_delay(ref[mid.start - 200: mid.stop], out[mid.start - 200: mid.stop + 200], 200)
    got = out[mid.start + lag: mid.stop + lag].astype(float)
    want = ref[mid].astype(float)
    assert 20 * np.log10(np.std(got) / np.std(want)) == pytest.approx(0, abs=1.5)


def test_pcm_in_pcm_out_with_rates():
    pcm8 = tone(8000)
    g722 = transcode(pcm8, None, "g722", rate=8000)      # upsampled to 16 kHz first
    assert len(g722) == len(pcm8)                          # 2x samples, 1 byte per 2 samples
    back = transcode(g722, "g722", "pcm", rate=8000)
    assert len(back) == len(pcm8)
    assert snr_db(pcm8[100:-100], back[100 + 11:-100 + 11]) > 15   # 22 samples @16k = 11 @8k
    with pytest.raises(ValueError, match="needs a codec on at least one side"):
        transcode(pcm8, None, "pcm")
    with pytest.raises(TypeError, match="PCM input must be 1-D int16"):
        transcode(pcm8.astype(float), None, "pcmu")


def test_opus_needs_packet_lists():
    packets = transcode(tone(48000), None, "opus")
    assert isinstance(packets, list) and len(packets) == 25
    with pytest.raises(ValueError, match="not self-delimiting"):
        decode_stream("opus", b"".join(packets))
    assert len(transcode(packets, "opus", "pcmu")) == 25 * 160


def test_cli_raw_and_wav(tmp_path):
    speech, rate = sf.read(SPEECH, dtype="int16")
    ulaw = tmp_path / "in.raw"
    ulaw.write_bytes(transcode(speech, None, "pcmu", rate=rate))
    assert main(["--from", "pcmu", "--to", "pcma", str(ulaw), str(tmp_path / "out.raw")]) == 0
    assert (tmp_path / "out.raw").read_bytes() == ulaw_to_alaw(ulaw.read_bytes()).tobytes()
    # G.711 WAV: format tag 6, read back by libsndfile to the same samples as our decoder
    assert main(["--to", "pcma", str(SPEECH), str(tmp_path / "a.wav")]) == 0
    info = sf.info(tmp_path / "a.wav")
    assert (info.samplerate, info.subtype) == (8000, "ALAW")
    theirs, _ = sf.read(tmp_path / "a.wav", dtype="int16")
    assert np.array_equal(theirs, alaw_decode(transcode(speech, None, "pcma", rate=rate)))
    # Opus to WAV: the decoded 48 kHz audio
    assert main(["--to", "opus", str(SPEECH), str(tmp_path / "o.wav")]) == 0
    assert sf.info(tmp_path / "o.wav").samplerate == 48000
    # slin raw input
    slin = tmp_path / "in.slin"
    slin.write_bytes(tone(8000).astype("<i2").tobytes())
    assert main(["--from", "slin", "--to", "pcmu", str(slin), str(tmp_path / "u.raw")]) == 0
    assert (tmp_path / "u.raw").read_bytes() == ulaw_encode(tone(8000)).tobytes()


def test_cli_errors_are_one_line(tmp_path, capsys):
    raw = tmp_path / "x.raw"
    raw.write_bytes(b"\xff" * 160)
    assert main(["--from", "gsm", "--to", "pcma", str(raw), str(tmp_path / "y.raw")]) == 2
    assert "unknown codec 'gsm'; known: pcmu" in capsys.readouterr().err
    assert main(["--to", "pcma", str(raw), str(tmp_path / "y.raw")]) == 2
    assert "raw input needs --from" in capsys.readouterr().err
    assert main(["--from", "pcmu", "--to", "opus", str(raw), str(tmp_path / "y.raw")]) == 2
    assert "write a .wav" in capsys.readouterr().err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    assert main(["--to", "pcmu", str(bad), str(tmp_path / "y.raw")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path):
    raw = tmp_path / "x.raw"
    raw.write_bytes(bytes(range(256)))
    out = tmp_path / "y.raw"
    proc = subprocess.run([sys.executable, "-m", "labkit.codecs.transcode", "--from", "pcmu",
                           "--to", "pcma", str(raw), str(out)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == ulaw_to_alaw(bytes(range(256))).tobytes()


def test_streaming_transcoder_reframes_and_matches_the_batch_path():
    from labkit.codecs.transcode import Transcoder
    speech, rate = sf.read(SPEECH, dtype="int16")
    pcm8 = speech[::2][:8000]                      # 1 s, crude 8 kHz is fine for this check
    pcmu_packets = encode_stream("pcmu", pcm8, 20)
    t = Transcoder("pcmu", "pcma", ptime_ms=10)    # 20 ms in, 10 ms out
    out = [p for pkt in pcmu_packets for p in t.feed(pkt)]
    assert len(out) == 100 and {len(p) for p in out} == {80}
    assert b"".join(out) == transcode(b"".join(pcmu_packets), "pcmu", "pcma")


def test_streaming_transcoder_across_rates_keeps_the_tone():
    from labkit.codecs.transcode import Transcoder
    opus_packets = transcode(tone(48000, seconds=1.0), None, "opus")
    t = Transcoder("opus", "pcmu")
    out = [p for pkt in opus_packets for p in t.feed(pkt)]
    assert 48 <= len(out) <= 50 and {len(p) for p in out} == {160}
    pcm = decode_stream("pcmu", b"".join(out))
    ref = tone(8000, seconds=1.0)
    lag = estimate_delay(ref[1000:5000], pcm[1000:5400], 400)
    seg = pcm[2000 + lag:6000 + lag].astype(float)
    assert 20 * np.log10(np.std(seg) / np.std(ref[2000:6000].astype(float))) == pytest.approx(0, abs=1.5)
    assert 0 < t.delay_ms < 5
    with pytest.raises(ValueError, match="unknown codec"):
        Transcoder("pcmu", "gsm")
