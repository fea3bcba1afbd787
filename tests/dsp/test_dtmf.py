"""DTMF detector against the ITU-T Q.24-style acceptance and rejection figures."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from labkit.codecs import get_codec
from labkit.dsp import dtmf, tones

AUDIO = Path(__file__).resolve().parents[2] / "data" / "audio"


def digits(events):
    return "".join(e.digit for e in events)


def each_digit(make, gap_s=0.06):
    """Every key, one after another with a gap, made by make(digit)."""
    gap = np.zeros(int(gap_s * 8000), np.int16)
    return np.concatenate([np.concatenate([make(d), gap]) for d in dtmf.DIGITS])


def test_all_16_digits_in_order_with_times():
    x = dtmf.generate(dtmf.DIGITS, on_ms=80, off_ms=70)
    events = dtmf.detect(x)
    assert digits(events) == dtmf.DIGITS
    for i, e in enumerate(events):
        assert e.start == pytest.approx(i * 0.150, abs=0.010)
        assert e.duration == pytest.approx(0.080, abs=0.020)


def test_digits_survive_g711():
    x = dtmf.generate("147*2580369#ABCD", level_dbfs=-20)
    for name in ("pcmu", "pcma"):
        c = get_codec(name)
        y = c.decoder().decode(c.encoder().encode(x))
        assert digits(dtmf.detect(y)) == "147*2580369#ABCD"


@pytest.mark.parametrize("deviation", [-0.015, 0.015])
def test_accepts_frequency_deviation_of_1_5_percent(deviation):
    x = each_digit(lambda d: dtmf.digit_tone(d, 0.06, deviation=deviation))
    assert digits(dtmf.detect(x)) == dtmf.DIGITS


@pytest.mark.parametrize("deviation", [-0.035, 0.035, -0.05, 0.05])
def test_rejects_frequency_deviation_of_3_5_percent(deviation):
    x = each_digit(lambda d: dtmf.digit_tone(d, 0.06, deviation=deviation))
    assert digits(dtmf.detect(x)) == ""


@pytest.mark.parametrize("twist_db", [-7.0, -4.0, 0.0, 3.0])
def test_accepts_twist_within_spec(twist_db):
    x = each_digit(lambda d: dtmf.digit_tone(d, 0.06, twist_db=twist_db))
    assert digits(dtmf.detect(x)) == dtmf.DIGITS


@pytest.mark.parametrize("twist_db", [-10.0, 6.0])
def test_rejects_excess_twist(twist_db):
    x = each_digit(lambda d: dtmf.digit_tone(d, 0.06, twist_db=twist_db))
    assert digits(dtmf.detect(x)) == ""


def test_duration_40ms_accepted_20ms_rejected():
    assert digits(dtmf.detect(dtmf.generate(dtmf.DIGITS, on_ms=40, off_ms=40))) == dtmf.DIGITS
    assert digits(dtmf.detect(dtmf.generate(dtmf.DIGITS, on_ms=23, off_ms=60))) == ""


def test_levels_and_noise():
    assert digits(dtmf.detect(dtmf.generate(dtmf.DIGITS, level_dbfs=-30))) == dtmf.DIGITS
    assert digits(dtmf.detect(dtmf.generate(dtmf.DIGITS, level_dbfs=-45))) == ""
    x = dtmf.generate(dtmf.DIGITS, level_dbfs=-10)
    noise = tones.white_noise(len(x) / 8000, level_dbfs=-22, seed=3)     # 12 dB SNR
    assert digits(dtmf.detect((x.astype(np.int32) + noise).astype(np.int16))) == dtmf.DIGITS


def test_rejects_single_tones_noise_and_dial_tones():
    for f in dtmf.ROWS + dtmf.COLS:
        assert dtmf.detect(tones.sine(f, 0.5, level_dbfs=-6)) == []
    assert dtmf.detect(tones.white_noise(3, level_dbfs=-6)) == []
    for name in ("dial", "ringback", "busy"):
        for country in ("us", "eu", "uk"):
            assert dtmf.detect(tones.tone(name, 3, country)) == [], (name, country)


def test_rejects_a_row_tone_with_its_second_harmonic():
    # 941 Hz + 1882 Hz (its 2nd harmonic) + 1209 Hz: a voice-like pair, not the '*' key
    t = np.arange(4000) / 8000
    x = 6000 * (np.sin(2 * np.pi * 941 * t) + np.sin(2 * np.pi * 1209 * t)
                + 0.6 * np.sin(2 * np.pi * 1882 * t))
    assert dtmf.detect(x.astype(np.int16)) == []
    clean = 6000 * (np.sin(2 * np.pi * 941 * t) + np.sin(2 * np.pi * 1209 * t))
    assert digits(dtmf.detect(clean.astype(np.int16))) == "*"


def test_no_talk_off_on_speech_prompts():
    for wav in sorted(AUDIO.glob("*.wav")):
        pcm, rate = sf.read(wav, dtype="int16")
        if rate == 8000:
            assert dtmf.detect(pcm) == [], wav.name


def test_streaming_in_any_frame_size_matches_whole_signal():
    x = dtmf.generate("31#7", on_ms=70, off_ms=50)
    whole = [(e.digit, e.start, e.end) for e in dtmf.detect(x)]
    for size in (7, 37, 160, 1000):
        det = dtmf.DtmfDetector()
        seen = []
        for i in range(0, len(x), size):
            seen += [e.digit for e in det.feed(x[i:i + size])]
        det.flush()
        assert "".join(seen) == "31#7"
        assert [(e.digit, e.start, e.end) for e in det.history] == whole


def test_event_is_reported_promptly_and_times_offset_by_start_time():
    det = dtmf.DtmfDetector(start_time=100.0)
    silence = np.zeros(800, np.int16)
    assert det.feed(silence) == []
    tone = dtmf.digit_tone("5", 0.2)
    reported_after = None
    for i in range(0, len(tone), 160):
        ev = det.feed(tone[i:i + 160])
        if ev:
            reported_after = (i + 160) / 8000
            assert ev[0].digit == "5" and ev[0].end is None
            assert ev[0].start == pytest.approx(100.1, abs=0.01)
            break
    assert reported_after is not None and reported_after <= 0.06   # within 3 frames


def test_same_digit_twice_needs_a_gap():
    x = np.concatenate([dtmf.digit_tone("9", 0.08), np.zeros(400, np.int16),
                        dtmf.digit_tone("9", 0.08), np.zeros(40, np.int16),   # 5 ms dropout
                        dtmf.digit_tone("9", 0.08)])
    assert digits(dtmf.detect(x)) == "99"


def test_16khz():
    x = dtmf.generate("0D", rate=16000)
    assert digits(dtmf.detect(x, rate=16000)) == "0D"


def test_bad_input():
    with pytest.raises(ValueError, match="not a DTMF digit: 'x'"):
        dtmf.digit_tone("x", 0.1)
    with pytest.raises(ValueError, match="8000 or 16000"):
        dtmf.DtmfDetector(44100)
    with pytest.raises(TypeError, match="int16"):
        dtmf.DtmfDetector().feed(np.zeros(10))


def test_long_streams_keep_a_bounded_buffer():
    det = dtmf.DtmfDetector()
    frame = np.zeros(160, np.int16)
    for _ in range(3000):                      # one minute of 20 ms frames
        det.feed(frame)
    assert len(det._buf) <= det._bank.longest + 2 * det.hop + 160
    assert det.feed(dtmf.digit_tone("8", 0.1))[0].start == pytest.approx(60.0, abs=0.01)
