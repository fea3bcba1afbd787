"""data/audio: the speech prompts the benchmarks, notebooks and PBX rely on."""
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO = Path(__file__).resolve().parents[2] / "data" / "audio"


def test_prompts_are_small_mono_16_bit_telephone_wavs():
    wavs = sorted(AUDIO.glob("*.wav"))
    names = {w.stem for w in wavs}
    assert {"speech_en", "speech_en_8k", "prompt_welcome", "prompt_goodbye"} <= names
    assert {f"digit_{d}" for d in range(10)} <= names
    assert sum(w.stat().st_size for w in wavs) < 1_500_000   # ~1.3 MB: prompts for notebooks, benchmarks and the sample dialplan
    for w in wavs:
        info = sf.info(w)
        assert (info.channels, info.subtype, info.format) == (1, "PCM_16", "WAV"), w.name
        assert info.samplerate == (16000 if w.stem == "speech_en" else 8000), w.name


def test_speech_sentence_is_5_to_8_seconds_of_actual_speech():
    pcm, rate = sf.read(AUDIO / "speech_en.wav", dtype="int16")
    assert 5.0 <= len(pcm) / rate <= 8.0
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(pcm.astype(float) ** 2)) / 32768)
    assert -30 < rms_dbfs < -10
    assert np.abs(pcm).max() < 32767                     # no clipping


def test_make_script_and_readme_exist_and_agree():
    script = (AUDIO / "make_audio.sh").read_text()
    readme = (AUDIO / "README.md").read_text()
    for wav in AUDIO.glob("*.wav"):
        stem = wav.stem
        assert stem in script or stem.startswith("digit_"), stem
        assert stem in readme or stem.startswith("digit_"), stem
