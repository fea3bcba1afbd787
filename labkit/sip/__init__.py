"""labkit.sip"""
