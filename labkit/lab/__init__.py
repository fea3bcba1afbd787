"""What notebooks need: background servers, plots, ladder diagrams, pcaps, audio.

`lab` may use every other labkit package; nothing uses `lab`.
"""
from .runner import BackgroundServer, serve

__all__ = ["BackgroundServer", "serve"]
