"""labkit.lab"""
