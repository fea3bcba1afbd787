"""labkit.dsp"""
