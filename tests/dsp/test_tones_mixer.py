import numpy as np
import pytest

from labkit.dsp import mixer, tones
from labkit.dsp.goertzel import goertzel_powers


def test_sine_level_is_dbfs_of_peak():
    x = tones.sine(1000, 1.0, 8000, level_dbfs=-6)
    assert x.dtype == np.int16 and len(x) == 8000
    assert np.max(np.abs(x)) == pytest.approx(32767 * 10 ** (-6 / 20), abs=1)
    with pytest.raises(ValueError, match="Nyquist"):
        tones.sine(4000, 1.0, 8000)
    with pytest.raises(ValueError, match="<= 0 dBFS"):
        tones.sine(1000, 1.0, level_dbfs=3)


def test_noise_rms_and_seed():
    n = tones.white_noise(2.0, level_dbfs=-20, seed=5)
    rms = np.sqrt(np.mean(n.astype(float) ** 2))
    assert rms == pytest.approx(32767 * 0.1 / np.sqrt(2), rel=0.02)
    assert np.array_equal(n, tones.white_noise(2.0, level_dbfs=-20, seed=5))
    assert not np.array_equal(n, tones.white_noise(2.0, level_dbfs=-20, seed=6))


@pytest.mark.parametrize("country, name, freqs, on, off", [
    ("us", "ringback", (440, 480), 2.0, 4.0), ("us", "busy", (480, 620), 0.5, 0.5),
    ("eu", "ringback", (425,), 1.0, 4.0), ("eu", "busy", (425,), 0.5, 0.5),
])
def test_cadence_and_frequencies(country, name, freqs, on, off):
    x = tones.tone(name, (on + off) * 2, country)
    frames = x[: len(x) // 80 * 80].reshape(-1, 80)        # 10 ms frames
    active = np.any(frames != 0, axis=1)
    period = int((on + off) * 100)
    assert active[:period].sum() == int(on * 100)          # on for exactly `on` seconds
    assert np.array_equal(active[:period], active[period:2 * period])
    block = x[: int(on * 8000)][:4000] * np.hanning(4000)   # 2 Hz resolution, low leakage
    probe = sorted(set(freqs) | {350, 400, 425, 440, 480, 620})
    p = dict(zip(probe, goertzel_powers(block, probe, 8000)))
    for f in probe:
        assert (p[f] > 1e-3 * max(p.values())) == (f in freqs), f


def test_tone_generator_is_phase_continuous_across_frames():
    gen = tones.ToneGenerator("dial", "us")
    frames = np.concatenate([gen.read(160) for _ in range(50)])
    assert np.array_equal(frames, tones.tone("dial", 1.0, "us"))
    with pytest.raises(ValueError, match="unknown tone 'ring'; known: dial, ringback"):
        tones.tone("ring", 1)
    with pytest.raises(ValueError, match="unknown tone country 'fr'"):
        tones.tone("dial", 1, "fr")


def test_named_tone_shortcuts():
    for kind in ("dial", "ringback", "busy", "congestion", "callwaiting"):
        make = getattr(tones, f"{kind}_tone")
        assert np.array_equal(make(1.0, rate=16000), tones.tone(kind, 1.0, "us", 16000))
        assert np.array_equal(make(0.5, country="eu"), tones.tone(kind, 0.5, "eu"))


def test_mix_minus_each_hears_the_others():
    rng = np.random.default_rng(0)
    f = rng.integers(-3000, 3000, (5, 160)).astype(np.int16)
    out = mixer.mix_minus(f)
    total = f.astype(np.int64).sum(axis=0)
    for i in range(5):
        assert np.array_equal(out[i], total - f[i])


def test_mix_minus_saturates_instead_of_wrapping():
    f = np.full((4, 3), 20000, np.int16)
    f[3] = -32768
    out = mixer.mix_minus(f)
    assert out[0].tolist() == [7232] * 3                 # 20000*2 - 32768, no clipping needed
    assert out[3].tolist() == [32767] * 3                # 60000 saturates
    assert mixer.mix(f).tolist() == [27232] * 3
    assert mixer.mix(np.full((3, 2), 30000, np.int16)).tolist() == [32767, 32767]


def test_muted_parties_hear_but_are_not_heard():
    f = np.array([[1, 1], [10, 10], [100, 100]], np.int16)
    out = mixer.mix_minus(f, talking=[True, False, True])
    assert out.tolist() == [[100, 100], [101, 101], [1, 1]]
    with pytest.raises(ValueError, match="one flag per party"):
        mixer.mix_minus(f, talking=[True])


def test_mixer_input_errors():
    with pytest.raises(TypeError, match="int16"):
        mixer.mix_minus(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(parties, samples\)"):
        mixer.mix_minus(np.zeros(4, np.int16))
