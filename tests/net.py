"""What the test machine's network offers (shared by the network tests)."""
from __future__ import annotations

import socket


def has_ipv6_loopback() -> bool:
    """Can a UDP socket bind ::1 here? (Containers often run without IPv6.)"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False
