"""labkit.dsp: signal processing a PBX needs, in numpy.

goertzel (single-frequency power), dtmf (detector and generator), tones (sines, noise,
call-progress tones), resample (8k/16k/44.1k/48k), mixer (N-1 conference mixing),
quality (SNR, segmental SNR, PESQ) and plc (packet loss concealment).
"""
