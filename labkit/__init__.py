"""labkit: a PBX built layer by layer, one notebook at a time.

Layers (bottom to top): sip, rtp, codecs, dsp, dialplan, pbx; lab helps notebooks and uses them all.
"""
__version__ = "0.1.0"
