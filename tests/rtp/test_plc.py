"""Packet-loss concealment (labkit.dsp.plc): pitch repetition, fade-out, smooth joins."""
import numpy as np
import pytest

from labkit.dsp.plc import Concealer, conceal_stream

RATE = 8000


def voiced(n, period=80, seed=0):
    """A periodic, speech-like signal: a few harmonics of 100 Hz (period 80 samples)."""
    t = np.arange(n)
    x = sum(np.sin(2 * np.pi * k * t / period + k) / k for k in (1, 2, 3, 5))
    return (6000 * x).astype(np.int16)


def test_pitch_estimate_finds_the_period():
    plc = Concealer(RATE, 160)
    for frame in voiced(800).reshape(5, 160):
        plc.good(frame)
    assert plc.estimate_pitch() == 80


def test_first_concealed_frame_continues_the_waveform():
    x = voiced(960)
    plc = Concealer(RATE, 160)
    for frame in x[:800].reshape(5, 160):
        plc.good(frame)
    guess = plc.conceal().astype(float)
    truth = x[800:960].astype(float)
    error = guess - truth  # no fading yet in the first 20 ms
    snr = 10 * np.log10(np.sum(truth**2) / (np.sum(error**2) + 1e-9))
    assert snr > 20  # a periodic signal is continued almost exactly (zeros would score 0 dB)


def test_fades_to_silence_after_80_ms():
    plc = Concealer(RATE, 160)
    for frame in voiced(800).reshape(5, 160):
        plc.good(frame)
    frames = [plc.conceal() for _ in range(6)]
    energy = [float(np.mean(f.astype(float) ** 2)) for f in frames]
    assert energy[0] > 0.5 * np.mean(voiced(160).astype(float) ** 2)
    assert energy[1] > energy[2] > energy[3] > 0
    assert not np.any(frames[4]) and not np.any(frames[5])  # 80 ms on: silence


def test_join_after_a_gap_has_no_step():
    x = voiced(1600)
    frames = list(x.reshape(10, 160))
    lost = [None if i in (5, 6) else f for i, f in enumerate(frames)]
    y = conceal_stream(lost, RATE).astype(float)
    natural = np.max(np.abs(np.diff(x.astype(float))))
    assert np.max(np.abs(np.diff(y))) <= 1.2 * natural
    # the good frames after the overlap region are passed through untouched
    assert np.array_equal(y[7 * 160 + 80 :], x[7 * 160 + 80 :])


def test_without_losses_it_is_transparent():
    x = voiced(1600)
    assert np.array_equal(conceal_stream(list(x.reshape(10, 160)), RATE), x)


def test_scales_to_wideband():
    plc = Concealer(16000, 320)
    assert (plc.pitch_min, plc.pitch_max) == (80, 240)
    assert plc.conceal().shape == (320,)


def test_bad_configuration():
    with pytest.raises(ValueError, match="must be positive"):
        Concealer(0, 160)


def test_appendix_i_settings_widen_the_loop_and_stay_continuous():
    plc = Concealer(RATE, 160)
    plc.max_periods, plc.attenuate_after, plc.fade_length = 3, 80, 400  # G.711 Appendix I
    x = voiced(800)
    for frame in x.reshape(5, 160):
        plc.good(frame)
    out = np.concatenate([plc.conceal() for _ in range(4)]).astype(float)
    assert plc._periods == 3 and len(plc._cycle) == 3 * 80
    assert np.max(np.abs(np.diff(out))) <= 1.2 * np.max(np.abs(np.diff(x.astype(float))))
    assert np.any(out[400:480]) and not np.any(out[480:])  # silent from 60 ms on
