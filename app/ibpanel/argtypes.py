"""argparse value types shared by ``ibpanel`` and ``ibpanel-sim``: bad values stop at the parser with a plain message."""

from __future__ import annotations

import argparse
import re

# [0-9], not \d: \d (like int() and str.isdigit()) also takes "٣" or "１２".
_ACCOUNT_ID = re.compile(r"^[A-Za-z]{1,4}[0-9]{1,12}$")
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}")


def whole_number(text: str) -> int:
    """A whole number in ASCII digits (client id, seed)."""
    if not _WHOLE_NUMBER.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: use the digits 0-9")
    return int(text)


def api_token(text: str) -> str:
    """An API token as typed: a blank one is a mistake, never "no token"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the token is blank: give a real token, or leave out --api-token")
    return text


def _port(text: str, *, allow_zero: bool) -> int:
    low = 0 if allow_zero else 1
    try:
        value = whole_number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: use a whole number (digits 0-9) from {low} to 65535") from None
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
