"""Host names and addresses, without Qt or network libraries: importable by every package (ui, api, runtime)."""

from __future__ import annotations

import ipaddress

#: Names for this machine that are not IP literals, plus the usual literals (answered without parsing).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost); brackets and case ignored."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
