import numpy as np
import pytest

from labkit.dsp.goertzel import goertzel_dft, goertzel_power, goertzel_powers, tone_amplitude


def test_recurrence_equals_the_dtft_at_any_frequency():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1000, 205)
    for f in (697.0, 1000.0, 1633.3, 0.0, 4000.0):
        n = np.arange(205)
        dtft = abs(np.sum(x * np.exp(-2j * np.pi * f * n / 8000))) ** 2
        assert goertzel_power(x, f, 8000) == pytest.approx(dtft, rel=1e-9)


def test_vectorised_matches_recurrence_over_blocks_and_freqs():
    rng = np.random.default_rng(1)
    blocks = rng.integers(-20000, 20000, (5, 160)).astype(np.int16)
    freqs = [697, 770, 852, 941, 1209, 1336, 1477, 1633]
    got = goertzel_powers(blocks, freqs, 8000)
    assert got.shape == (5, 8)
    want = [[goertzel_power(b, f, 8000) for f in freqs] for b in blocks]
    assert np.allclose(got, want, rtol=1e-9)


def test_centred_sine_amplitude_and_fft_bin_agree():
    n, rate = 200, 8000
    f = 1000.0                                  # bin 25 of a 200-point FFT
    x = 5000 * np.sin(2 * np.pi * f * np.arange(n) / rate)
    p = goertzel_power(x, f, rate)
    assert p == pytest.approx(abs(np.fft.rfft(x)[25]) ** 2, rel=1e-9)
    assert tone_amplitude(p, n) == pytest.approx(5000, rel=1e-9)
    assert goertzel_power(x, 1400.0, rate) < 1e-6 * p     # a bin centre where the sine has a null


def test_phase_is_kept():
    x = np.cos(2 * np.pi * 500 * np.arange(160) / 8000 + 0.7)
    assert np.angle(goertzel_dft(x, [500], 8000)[0]) == pytest.approx(0.7, abs=1e-9)


def test_errors():
    with pytest.raises(ValueError, match="outside 0..4000 Hz"):
        goertzel_power(np.ones(10), 5000, 8000)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        goertzel_power(np.ones((2, 2)), 100, 8000)
    with pytest.raises(ValueError, match="must lie in 0..4000"):
        goertzel_powers(np.ones(10), [100, 4100], 8000)
