import numpy as np
import pytest

from labkit.dsp import quality
from labkit.dsp.goertzel import goertzel_powers
from labkit.dsp.resample import Resampler, resample
from labkit.dsp.tones import sine


@pytest.mark.parametrize("src, dst", [(8000, 16000), (16000, 8000), (8000, 48000),
                                      (48000, 8000), (44100, 48000), (48000, 44100),
                                      (16000, 44100)])
def test_resample_keeps_a_tone_and_removes_what_cannot_exist(src, dst):
    x = sine(1000, 0.5, src, -6)
    y = resample(x, src, dst)
    assert y.dtype == np.int16 and len(y) == round(len(x) * dst / src)
    ref = sine(1000, 0.5, dst, -6)
    mid = slice(len(y) // 4, 3 * len(y) // 4)
    assert quality.snr_db(ref[mid], y[mid]) > 40


def test_downsampling_filters_out_aliases():
    x = sine(6000, 0.5, 16000, -6)          # above 4 kHz: must vanish at 8 kHz, not fold to 2 kHz
    y = resample(x, 16000, 8000)
    assert np.max(np.abs(y[400:-400])) < 100


def test_streaming_resampler_matches_whole_signal_after_its_delay():
    x = sine(440, 1.0, 8000, -6)
    rs = Resampler(8000, 48000)
    y = np.concatenate([rs.process(x[i:i + 160]) for i in range(0, len(x), 160)])
    assert len(y) == 48000                   # 160 -> 960 per frame, exactly
    ref = resample(x, 8000, 48000).astype(float)
    d = int(round(rs.delay * 6))             # delay in output samples
    assert quality.snr_db(ref[2000:40000], y[2000 + d:40000 + d]) > 30


def test_streaming_resampler_fractional_frames():
    rs = Resampler(44100, 48000)
    out = [len(rs.process(np.zeros(441, np.int16))) for _ in range(100)]
    assert sum(out) == 48000 and set(out) <= {480, 481, 479}


def test_resample_errors():
    with pytest.raises(ValueError, match="positive integer"):
        resample(np.zeros(10, np.int16), 0, 8000)
    with pytest.raises(ValueError, match="1-D"):
        resample(np.zeros((2, 10), np.int16), 8000, 16000)


def test_snr_known_values():
    x = np.array([1000.0, -1000.0] * 100)
    assert quality.snr_db(x, x) == float("inf")
    assert quality.snr_db(x, x * 0.9) == pytest.approx(20.0)
    assert quality.snr_db(x, x + 10 * np.sign(x)) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="differ in shape"):
        quality.snr_db(x, x[:-1])


def test_segmental_snr_weights_quiet_frames_equally():
    loud = np.full(160, 10000.0)
    quiet = np.full(160, 300.0)      # -40.8 dBFS: quiet, not silent
    ref = np.concatenate([loud, quiet])
    deg = ref + 10.0                          # same absolute error everywhere
    overall = quality.snr_db(ref, deg)
    seg = quality.segmental_snr_db(ref, deg, 8000)
    assert overall == pytest.approx(10 * np.log10((1e8 + 9e4) / 200))   # the loud frame rules
    assert seg == pytest.approx((35.0 + 10 * np.log10(9e4 / 100)) / 2)   # 60 dB clamped to 35
    with pytest.raises(ValueError, match="silent in every frame"):
        quality.segmental_snr_db(np.zeros(320), np.zeros(320))


def test_estimate_delay():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 2000)
    assert quality.estimate_delay(x, np.concatenate([np.zeros(37), x]), 100) == 37


def test_pesq_score_ranks_degradations():
    pytest.importorskip("pesq", reason="pesq package absent")
    from pathlib import Path
    import soundfile as sf
    ref, rate = sf.read(Path(__file__).resolve().parents[2] / "data/audio/speech_en_8k.wav",
                        dtype="int16")
    noisy = (ref + np.random.default_rng(0).normal(0, 300, len(ref))).astype(np.int16)
    clean = quality.pesq_score(ref, ref, 8000)
    assert clean > 4.0
    assert quality.pesq_score(ref, noisy, 8000) < clean - 1
    with pytest.raises(ValueError, match="8000 or 16000 Hz, got 44100"):
        quality.pesq_score(ref, ref, 44100)
    with pytest.raises(ValueError, match="'wb' \\(16 kHz\\)"):
        quality.pesq_score(ref, ref, 8000, mode="wb")


def test_pesq_score_says_what_to_install_when_pesq_is_missing(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "pesq", None)        # import pesq -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'pesq>=0.0.4'"):
        quality.pesq_score(np.zeros(8000), np.zeros(8000), 8000)
