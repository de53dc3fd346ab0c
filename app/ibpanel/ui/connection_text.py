"""What the Connection tab says, without Qt: presets (TWS / Gateway, paper / live, practice), the state
and paper / live badge texts, a failure's one-line headline, and TWS's connection time in local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibpanel.broker.models import ConnectionState, ConnectionStatus


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    port: int
    live: bool
    hint: str


PRACTICE = "practice"
PRESETS: tuple[Preset, ...] = (
    Preset("tws_paper", "TWS Paper", 7497, False, "Trader Workstation logged in to a paper account."),
    Preset("tws_live", "TWS Live", 7496, True, "Trader Workstation logged in to a LIVE account: real money."),
    Preset("gateway_paper", "Gateway Paper", 4002, False, "IB Gateway logged in to a paper account."),
    Preset("gateway_live", "Gateway Live", 4001, True, "IB Gateway logged in to a LIVE account: real money."),
    Preset(PRACTICE, "Practice exchange", 0, False, "The built-in practice exchange: no IB account needed."),
)
PRESETS_BY_KEY = {p.key: p for p in PRESETS}
DEFAULT_PRESET = "tws_paper"
#: Ports TWS / Gateway use for live accounts by default.
LIVE_PORTS = frozenset(p.port for p in PRESETS if p.live)

SETUP_HELP = (
    "<ol style='margin-left:-20px'>"
    "<li>Start <b>TWS</b> or <b>IB Gateway</b> and log in (paper first).</li>"
    "<li>In TWS: <i>Configure &gt; API &gt; Settings</i>: tick <i>Enable ActiveX and Socket Clients</i>; "
    "note the <i>Socket port</i>.</li>"
    "<li>Ports: TWS paper 7497, live 7496; Gateway paper 4002, live 4001.</li>"
    "<li>Each program on one TWS needs its own <b>client ID</b>.</li>"
    "<li>Tick <b>Read-only</b> to look without any risk of sending an order.</li>"
    "</ol>No IB account? Use the <b>practice exchange</b>: same screens, simulated market."
)

STATE_TEXT = {
    ConnectionState.DISCONNECTED: "Disconnected",
    ConnectionState.CONNECTING: "Connecting…",
    ConnectionState.CONNECTED: "Connected",
    ConnectionState.DEGRADED: "Connected, but TWS has lost IB's servers",
    ConnectionState.RECONNECTING: "Reconnecting…",
}


#: Python's socket detail inside a failure message, e.g. " ([Errno 111] Connect call failed ('127.0.0.1', 1))".
_ERRNO_DETAIL = re.compile(r"\s*\(\[Errno[^\]]*\][^()]*(?:\([^()]*\)[^()]*)*\)")


def failure_headline(message: str) -> str:
    """One line for a trader: the broker's reason without Python's errno detail (that stays in the log file)."""
    text = _ERRNO_DETAIL.sub("", " ".join(message.split())).strip()
    return text or message.strip()


def classification_text(status: ConnectionStatus) -> tuple[str, str]:
    """(badge text, badge kind) for the account type: PAPER, LIVE or unknown."""
    if status.is_paper is None:
        # Connected but unclassifiable: the broker treats it as live, and so does the badge.
        return ("LIVE?", "live") if status.connected else ("—", "unknown")
    return ("PAPER", "paper") if status.is_paper else ("LIVE", "live")


#: Zone names TWS may put after its connection time ("20261124 12:42:25 UTC"); unambiguous ones only
#: (CST is China or US Central, IST India or Israel: those stay as TWS wrote them).
_TWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "GMT": "UTC",
    "Z": "UTC",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "HKT": "Asia/Hong_Kong",
    "Hong Kong Standard Time": "Asia/Hong_Kong",
    "JST": "Asia/Tokyo",
    "CET": "Europe/Paris",
    "CEST": "Europe/Paris",
    "MET": "Europe/Paris",
}
_TWS_TIME = re.compile(r"^\s*(\d{8})[ -](\d{1,2}:\d{2}:\d{2})(?:\s+(.+?))?\s*$")


def _tws_zone(name: str | None) -> tzinfo | None:
    """The zone TWS named (a missing name is UTC: the broker writes UTC), or None if unknown."""
    if name is None:
        return timezone.utc
    key = _TWS_ZONES.get(name, name if "/" in name else "")  # some setups write the IANA name
    if key == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(key) if key else None
    except (ZoneInfoNotFoundError, ValueError):
        return None  # no tz data on this computer (tzdata missing on Windows): show TWS's text


def parse_tws_time(text: str | None) -> datetime | None:
    """TWS's "yyyymmdd hh:mm:ss [zone]" as an aware datetime, or None when it cannot be read for sure.

    An unknown or ambiguous zone gives None, so the caller shows TWS's own text rather than a wrong hour.
    """
    match = _TWS_TIME.match(text or "")
    if match is None:
        return None
    day, clock, zone_name = match.groups()
    try:
        naive = datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
    except ValueError:
        return None
    zone = _tws_zone(zone_name)
    return None if zone is None else naive.replace(tzinfo=zone)


def zone_label(moment: datetime) -> str:
    """Short zone name for ``moment`` ("HKT", "UTC"), or its offset ("UTC+08:00") when the name is long."""
    name = moment.tzname() or ""
    if name and len(name) <= 5 and " " not in name:
        return name
    offset = moment.utcoffset() or timedelta(0)
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def connection_time_text(raw: str | None, local_zone: tzinfo | None = None) -> str:
    """TWS's connection time in the user's local time, e.g. "2026-11-24 20:42:25 HKT (12:42:25 UTC)".

    ``local_zone`` defaults to the computer's zone; text that does not parse is returned unchanged.
    """
    moment = parse_tws_time(raw)
    if moment is None:
        return (raw or "").strip() or "—"
    local = moment.astimezone(local_zone) if local_zone is not None else moment.astimezone()
    text = f"{local:%Y-%m-%d %H:%M:%S} {zone_label(local)}"
    if local.utcoffset() != timedelta(0):
        # The UTC time too: it is what TWS logs and IB support quote.
        text += f"  ({moment.astimezone(timezone.utc):%H:%M:%S} UTC)"
    return text
