"""Media anchored at the PBX: RTP port pairs, latching, the relay between two call legs, transcoding.

    from labkit.pbx.media import PortAllocator, MediaRelay
    ports = PortAllocator.from_config(config)
    relay = await MediaRelay(ports).open()

Introduced in notebook 06 (B2BUA); see docs/architecture.md, section labkit.pbx.media.
"""
from .latch import Latch
from .ports import PortAllocator, PortPair, PortsExhausted
from .relay import DIRECTIONS, LegStats, MediaRelay, RelayLeg
from .rtcp_reports import LegReports
from .transcoder import Transcoder

__all__ = ["PortAllocator", "PortPair", "PortsExhausted", "Latch", "MediaRelay", "RelayLeg",
           "LegStats", "LegReports", "Transcoder", "DIRECTIONS"]
