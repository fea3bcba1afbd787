"""labkit.codecs: G.711 μ-law/A-law (own, numpy), G.722, Opus, L16 and a registry.

    from labkit.codecs import get_codec
    c = get_codec("pcmu"); payload = c.encoder().encode(pcm); pcm = c.decoder().decode(payload)

Introduced in notebook 08.
"""
from .codec import Codec, Decoder, Encoder
from .g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from .registry import CODECS, codec_for_payload_type, codec_for_rtpmap, get_codec

__all__ = [
    "Codec", "Encoder", "Decoder", "CODECS", "get_codec", "codec_for_payload_type",
    "codec_for_rtpmap", "ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode",
]
