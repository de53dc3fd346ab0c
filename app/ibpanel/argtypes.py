"""argparse value types shared by ``ibpanel`` and ``ibpanel-sim``: bad values stop at the parser with a plain message."""

from __future__ import annotations

import argparse
import re

_ACCOUNT_ID = re.compile(r"^[A-Za-z]{1,4}\d{1,12}$")


def _port(text: str, *, allow_zero: bool) -> int:
    low = 0 if allow_zero else 1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: use a whole number from {low} to 65535") from None
    if not low <= value <= 65535:
        what = "0 (any free port) to 65535" if allow_zero else "1 to 65535"
        raise argparse.ArgumentTypeError(f"port {value} is out of range: use {what}")
    return value


def listen_port(text: str) -> int:
    """A port to listen on: 0 means any free port (printed when ready)."""
    return _port(text, allow_zero=True)


def connect_port(text: str) -> int:
    """A port to connect to (TWS 7497 / 7496, IB Gateway 4002 / 4001)."""
    return _port(text, allow_zero=False)


def account_ids(text: str) -> tuple[str, ...]:
    """Comma-separated IB account ids such as ``DU111111,DU222222`` (letters then digits)."""
    ids = tuple(part.strip() for part in text.split(","))
    bad = [part for part in ids if not _ACCOUNT_ID.match(part)]
    if not ids or bad:
        shown = ", ".join(repr(b) for b in bad) or "nothing"
        raise argparse.ArgumentTypeError(
            f"{shown} is not an account id: give ids like DU111111 (paper) or U1234567 (live), separated by commas"
        )
    return ids
