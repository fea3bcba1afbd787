"""labkit.codecs"""
