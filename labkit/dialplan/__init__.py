"""labkit.dialplan"""
