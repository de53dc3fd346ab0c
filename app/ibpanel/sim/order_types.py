"""The practice exchange's order types beyond MKT, LMT, STP and STP LMT: their prices and their moments.

- TRAIL / TRAIL LIMIT: the stop trails the touch (the bid for a sell, the ask for a buy) by an amount
  (auxPrice) or a percent (trailingPercent); it only ever moves in the order's favour, and it triggers when
  the touch reaches it. TRAIL then trades as a market order, TRAIL LIMIT as a limit order at the stop less
  (sell) or plus (buy) its limit offset (lmtPriceOffset, or the distance between the initial stop and lmtPrice).
- REL (relative, pegged to primary): a buy rests at the bid plus the offset (auxPrice, or percentOffset of
  the bid), a sell at the ask less it, capped by lmtPrice when one is given; it follows the touch.
- Auction orders fill at one price, the last trade at the auction's moment: MOC / LOC (US) at the regular
  close, OPG (MKT or LMT "at the open", US) at the regular open, and on SEHK the at-auction (MTL or MKT with
  tif AUC) and at-auction limit (LMT with tif AUC) orders at the next pre-opening auction (09:20) or closing
  auction (CAS, 16:08). The moments come from the exchange calendar (calendars.py) in both session modes:
  in "always open" practice the real market's open and close are the practice auctions too.
- GTD: good till the goodTillDate moment, then cancelled; a moment already past is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from ibpanel.sim import calendars
from ibpanel.sim.market import SimInstrument

UTC = timezone.utc
TRAIL_TYPES = ("TRAIL", "TRAIL LIMIT")
CLOSE_TYPES = ("MOC", "LOC")
AUCTION_TIFS = ("OPG", "AUC")
_ALIASES = {"STPLMT": "STP LMT", "TRAILLMT": "TRAIL LIMIT", "TRAIL LMT": "TRAIL LIMIT", "TRAILLIMIT": "TRAIL LIMIT"}
_SEARCH_DAYS = 15  # holidays never close an exchange for longer


def normalise_type(order_type: str) -> str:
    """IB's spellings of one order type as one name ("STPLMT" -> "STP LMT", "TRAILLMT" -> "TRAIL LIMIT")."""
    text = " ".join(str(order_type or "").strip().upper().split())
    return _ALIASES.get(text, text)


def parse_good_till(text: str, zone_name: str) -> datetime | None:
    """goodTillDate as TWS reads it: "YYYYMMDD HH:MM:SS [zone]", "YYYYMMDD-HH:MM:SS" (UTC) or "YYYYMMDD"
    (end of that day); without a zone, the instrument's exchange time. None when it cannot be read."""
    text = str(text or "").strip()
    if not text:
        return None
    try:
        if "-" in text and " " not in text:
            return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        parts = text.split()
        if len(parts) == 1:
            day = datetime.strptime(parts[0], "%Y%m%d")
            return day.replace(hour=23, minute=59, second=59, tzinfo=ZoneInfo(zone_name))
        moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
        zone = parts[2] if len(parts) > 2 else zone_name
        return moment.replace(tzinfo=UTC if zone.upper() in ("UTC", "GMT") else ZoneInfo(zone))
    except (ValueError, KeyError, OSError):
        return None


def auction_time(inst: SimInstrument, order_type: str, tif: str, after: datetime) -> datetime | None:
    """When an auction order placed at ``after`` meets its auction (None for other orders)."""
    if order_type in CLOSE_TYPES:
        return _next(inst, after, lambda sd: sd.close)
    if tif == "OPG":
        return _next(inst, after, lambda sd: sd.open)
    if tif == "AUC":
        opening = _next(inst, after, lambda sd: sd.open - calendars.HK_OPENING_AUCTION)
        closing = _next(inst, after, lambda sd: sd.close + calendars.HK_CLOSING_AUCTION)
        return min(t for t in (opening, closing) if t is not None) if (opening or closing) else None
    return None


def is_opening_auction(inst: SimInstrument, moment: datetime) -> bool:
    """Whether ``moment`` is a pre-opening auction (not a closing one) of the instrument's exchange."""
    sd = calendars.session_on(inst.market, moment.astimezone(ZoneInfo(inst.time_zone)).date())
    return sd is not None and moment < sd.open


def _next(inst: SimInstrument, after: datetime, moment_of) -> datetime | None:
    day = after.astimezone(ZoneInfo(inst.time_zone)).date()
    for offset in range(_SEARCH_DAYS):
        sd = calendars.session_on(inst.market, day + timedelta(days=offset))
        if sd is not None and moment_of(sd) > after:
            return moment_of(sd)
    return None


def trail_amount(aux_price: Decimal | None, percent: Decimal | None, touch: Decimal) -> Decimal:
    """The trailing distance now: the amount, or the percent of the touch."""
    if percent is not None:
        return touch * percent / 100
    return aux_price or Decimal(0)


def trail_stop(action: str, touch: Decimal, amount: Decimal) -> Decimal:
    """Where the stop sits for this touch (before rounding onto the tick)."""
    return touch - amount if action == "SELL" else touch + amount


def better_stop(action: str, old: Decimal, new: Decimal) -> bool:
    """A trailing stop only moves in the order's favour: up for a sell, down for a buy."""
    return new > old if action == "SELL" else new < old


def stop_touched(action: str, touch: Decimal, stop: Decimal) -> bool:
    return touch <= stop if action == "SELL" else touch >= stop


__all__ = ["AUCTION_TIFS", "CLOSE_TYPES", "TRAIL_TYPES", "auction_time", "better_stop", "is_opening_auction",
           "normalise_type", "parse_good_till", "stop_touched", "trail_amount", "trail_stop"]
