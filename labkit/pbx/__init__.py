"""labkit.pbx"""
