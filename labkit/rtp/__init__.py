"""labkit.rtp"""
