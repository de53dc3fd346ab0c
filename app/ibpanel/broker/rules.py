"""Market rules: tick sizes by price band, board lots, and trading sessions. Pure Python, Decimal maths.

Over 500 lines because ticks, lots and sessions of both markets (US, HK) are one rule book that
validation, the ticket and the practice exchange's data read together.

Ticks: IB's market rules (``reqMarketRule``) give rows of (lowEdge, increment); a price uses the
row with the highest lowEdge at or below it. Valid prices in a band are ``lowEdge + k * increment``
so every band edge is itself a valid price; :class:`TickTable` rounds and steps across edges.

Lots: HK stocks trade in board lots that differ per stock. :func:`board_lot` prefers the contract
details' sizeIncrement / minSize, then the maintained table ``resources/markets/hk_board_lots.json``,
and always says which source it used. US stocks trade in whole shares.

Sessions: :class:`TradingSessions` reads ContractDetails.tradingHours / liquidHours with its
timeZoneId ("US/Eastern", "Asia/Hong_Kong", ...) into UTC-aware intervals.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibpanel.broker.models import Market
from ibpanel.numbers import to_decimal  # re-exported: broker code imports it from here
from ibpanel.paths import resource_path

ROUND_MODES = ("nearest", "down", "up")


# --- ticks ------------------------------------------------------------------------------------------


class TickTable:
    """Price bands from IB market rules: rows of (low_edge, increment), sorted by low_edge.

    Prices below the first low edge use the first row's increment. All methods take and return
    ``Decimal``; results are quantized to the increment's decimals ("49.98", "50.00").
    """

    def __init__(self, rows: Sequence[tuple[Decimal, Decimal]], source: str = "market rule") -> None:
        cleaned = sorted((to_decimal(low), to_decimal(inc)) for low, inc in rows)
        if not cleaned:
            raise ValueError("a tick table needs at least one (low_edge, increment) row")
        for low, inc in cleaned:
            if inc <= 0 or low < 0:
                raise ValueError(f"bad tick row ({low}, {inc}): increments must be > 0 and edges >= 0")
        edges = [low for low, _ in cleaned]
        if len(set(edges)) != len(edges):
            raise ValueError("tick table has two rows with the same low edge")
        self.rows: tuple[tuple[Decimal, Decimal], ...] = tuple(cleaned)
        self.source = source
        self._edges = edges

    @classmethod
    def from_market_rule(cls, increments: Iterable[object], source: str = "market rule") -> TickTable:
        """From ib_async PriceIncrement tuples (lowEdge, increment) or any (low, inc) pairs of floats."""
        rows = []
        for item in increments:
            low = getattr(item, "lowEdge", None)
            inc = getattr(item, "increment", None)
            if low is None or inc is None:
                low, inc = item  # type: ignore[misc]
            rows.append((to_decimal(low), to_decimal(inc)))
        return cls(rows, source)

    @classmethod
    def single(cls, increment: Decimal | float | str, source: str = "contract minTick") -> TickTable:
        """One band for every price (ContractDetails.minTick when no market rule is known)."""
        return cls([(Decimal(0), to_decimal(increment))], source)

    def __repr__(self) -> str:
        return f"TickTable({[(str(a), str(b)) for a, b in self.rows]}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TickTable) and self.rows == other.rows

    def __hash__(self) -> int:
        return hash(self.rows)

    # band helpers: index of the row with the highest low_edge <= price (0 below the first edge)
    def _band(self, price: Decimal) -> int:
        return max(bisect.bisect_right(self._edges, price) - 1, 0)

    def _next_edge(self, band: int) -> Decimal | None:
        return self._edges[band + 1] if band + 1 < len(self._edges) else None

    @staticmethod
    def _q(value: Decimal, inc: Decimal) -> Decimal:
        """Quantize to the increment's decimals (0.05 -> 2 places, 1 -> 0)."""
        exp = min(inc.normalize().as_tuple().exponent, 0)
        return value.quantize(Decimal(1).scaleb(exp))

    def increment(self, price: Decimal) -> Decimal:
        """The tick at ``price``: the row with the highest low_edge at or below it."""
        return self.rows[self._band(to_decimal(price))][1]

    def is_on_tick(self, price: Decimal) -> bool:
        price = to_decimal(price)
        low, inc = self.rows[self._band(price)]
        return (price - low) % inc == 0

    def round(self, price: Decimal, mode: str = "nearest") -> Decimal:
        """Round ``price`` to a valid tick: "nearest" (ties go up), "down" or "up".

        Rounding up never skips a band edge (the edge is a valid price). Prices must be >= 0.
        """
        if mode not in ROUND_MODES:
            raise ValueError(f"unknown rounding mode {mode!r}: use one of {', '.join(ROUND_MODES)}")
        price = to_decimal(price)
        if price < 0:
            raise ValueError("a price cannot be negative")
        band = self._band(price)
        low, inc = self.rows[band]
        steps = (price - low) / inc
        down = low + inc * steps.to_integral_value(ROUND_FLOOR)
        up = low + inc * steps.to_integral_value(ROUND_CEILING)
        edge = self._next_edge(band)
        up_inc = inc
        if edge is not None and up >= edge:
            up, up_inc = edge, self.rows[band + 1][1]
        if mode == "down":
            return self._q(down, inc)
        if mode == "up":
            return self._q(up, up_inc)
        if price - down < up - price:
            return self._q(down, inc)
        return self._q(up, up_inc)

    def _next_up(self, price: Decimal) -> Decimal:
        band = self._band(price)
        low, inc = self.rows[band]
        candidate = price + inc
        edge = self._next_edge(band)
        if edge is not None and candidate >= edge:
            return self._q(edge, self.rows[band + 1][1])
        return self._q(candidate, inc)

    def _next_down(self, price: Decimal) -> Decimal:
        band = self._band(price)
        low, inc = self.rows[band]
        if price > low or band == 0:
            candidate = price - inc
        else:  # exactly on a band edge: the largest valid price of the band below
            prev_low, prev_inc = self.rows[band - 1]
            k = ((price - prev_low) / prev_inc).to_integral_value(ROUND_CEILING) - 1
            candidate, inc = prev_low + prev_inc * k, prev_inc
        if candidate <= 0:
            raise ValueError(f"{price} is the lowest valid price: it cannot go lower")
        return self._q(candidate, inc)

    def step(self, price: Decimal, ticks: int) -> Decimal:
        """Move ``ticks`` valid prices up (> 0) or down (< 0), using each band's own tick.

        An off-tick price is first rounded in the direction of travel (counts as the first tick).
        Raises ValueError if the result would be zero or negative.
        """
        price = to_decimal(price)
        if ticks == 0:
            return price
        if not self.is_on_tick(price):
            price = self.round(price, "up" if ticks > 0 else "down")
            ticks -= 1 if ticks > 0 else -1
            if price <= 0:
                raise ValueError("stepping down would give a price of zero or less")
        for _ in range(abs(ticks)):
            price = self._next_up(price) if ticks > 0 else self._next_down(price)
        return price

    def decimals(self, price: Decimal) -> int:
        """Decimals to display at ``price`` (0.01 -> 2, 0.005 -> 3, 1 -> 0)."""
        return max(-self.increment(to_decimal(price)).normalize().as_tuple().exponent, 0)


_D = Decimal
# Reg NMS rule 612: sub-penny below $1.00.
US_TICK_TABLE = TickTable([(_D("0"), _D("0.0001")), (_D("1"), _D("0.01"))], source="US fallback")
# SEHK spread table for stocks after the 2025-08-04 reduction (docs/markets.md).
HK_TICK_TABLE = TickTable(
    [
        (_D("0"), _D("0.001")), (_D("0.25"), _D("0.005")), (_D("0.5"), _D("0.01")),
        (_D("10"), _D("0.01")), (_D("20"), _D("0.02")), (_D("50"), _D("0.05")),
        (_D("100"), _D("0.1")), (_D("200"), _D("0.2")), (_D("500"), _D("0.5")),
        (_D("1000"), _D("1")), (_D("2000"), _D("2")), (_D("5000"), _D("5")),
    ],
    source="HK fallback table",
)
# The older, wider SEHK spread table (Part A) that ETFs and structured products keep.
HK_TICK_TABLE_ETF = TickTable(
    [
        (_D("0"), _D("0.001")), (_D("0.25"), _D("0.005")), (_D("0.5"), _D("0.01")),
        (_D("10"), _D("0.02")), (_D("20"), _D("0.05")), (_D("100"), _D("0.1")),
        (_D("200"), _D("0.2")), (_D("500"), _D("0.5")), (_D("1000"), _D("1")),
        (_D("2000"), _D("2")), (_D("5000"), _D("5")),
    ],
    source="HK fallback table (ETF)",
)


def fallback_tick_table(market: Market, etf: bool = False) -> TickTable:
    """The built-in table when IB's market rule is not (yet) known."""
    if market is Market.US:
        return US_TICK_TABLE
    return HK_TICK_TABLE_ETF if etf else HK_TICK_TABLE


# --- board lots -------------------------------------------------------------------------------------

SOURCE_CONTRACT = "contract details"
SOURCE_TABLE = "fallback table"
SOURCE_US = "US whole shares"
SOURCE_UNKNOWN = "unknown"


@dataclass(frozen=True)
class BoardLot:
    """Shares per lot and where that number came from. ``size == 0`` means unknown."""

    size: int
    source: str  # "contract details" | "fallback table" | "US whole shares" | "unknown"
    symbol: str = ""  # IB spelling, for messages
    market: Market | None = None

    @property
    def known(self) -> bool:
        return self.size > 0

    def describe(self) -> str:
        """"HK stock 700" / "AAPL" for messages."""
        if self.market is Market.HK:
            return f"HK stock {self.symbol}" if self.symbol else "this HK stock"
        return self.symbol or "this stock"


@dataclass(frozen=True)
class HkLotTable:
    """The maintained HK board-lot table: lots by code, with its date and sources."""

    as_of: str
    sources: tuple[str, ...]
    lots: dict[int, int]
    names: dict[int, str]
    etfs: frozenset[int]


def _lot_table_path() -> Path:
    return resource_path("markets", "hk_board_lots.json")


@lru_cache(maxsize=1)
def hk_lot_table() -> HkLotTable:
    """Load (once) resources/markets/hk_board_lots.json."""
    data = json.loads(_lot_table_path().read_text(encoding="utf-8"))
    lots: dict[int, int] = {}
    names: dict[int, str] = {}
    etfs: set[int] = set()
    for row in data["lots"]:
        code = int(row["code"])
        lots[code] = int(row["lot"])
        names[code] = str(row.get("name", ""))
        if row.get("type") == "etf":
            etfs.add(code)
    return HkLotTable(str(data["as_of"]), tuple(data.get("sources", ())), lots, names, frozenset(etfs))


def _usable_size(value: Decimal | float | None) -> int | None:
    """A contract-details size if IB really filled it in: finite, > 1, whole, not an unset marker."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number <= 1 or number >= 2147483647 or number != int(number):
        return None
    return int(number)


def _hk_code(symbol: str) -> int | None:
    text = symbol.strip().upper().removesuffix(".HK")
    return int(text) if text.isdigit() and text else None


def is_hk_etf(symbol: str) -> bool:
    """True when the maintained table lists the HK code as an ETF (it keeps the older tick table)."""
    code = _hk_code(symbol)
    return code is not None and code in hk_lot_table().etfs


def board_lot(
    market: Market,
    symbol: str,
    min_size: Decimal | float | None = None,
    size_increment: Decimal | float | None = None,
) -> BoardLot:
    """Board lot for a stock, saying where the number came from.

    US: whole shares (1). HK: ContractDetails.sizeIncrement, then minSize, when IB set them (> 1);
    else the maintained table; else ``BoardLot(0, "unknown")`` (validation then refuses with advice).
    """
    if market is Market.US:
        return BoardLot(1, SOURCE_US, symbol, market)
    code = _hk_code(symbol)
    ib_symbol = str(code) if code is not None else symbol
    for value in (size_increment, min_size):
        size = _usable_size(value)
        if size is not None:
            return BoardLot(size, SOURCE_CONTRACT, ib_symbol, market)
    if code is not None:
        size = hk_lot_table().lots.get(code)
        if size:
            return BoardLot(size, SOURCE_TABLE, ib_symbol, market)
    return BoardLot(0, SOURCE_UNKNOWN, ib_symbol, market)


def _examples(size: int) -> str:
    return ", ".join(f"{size * k:,}" for k in (1, 2, 3))


def check_quantity(quantity: Decimal, lot: BoardLot) -> str | None:
    """None if ``quantity`` is a positive whole number of lots; otherwise the plain message to show."""
    try:
        qty = to_decimal(quantity)
    except (TypeError, ValueError):
        return f"Quantity {quantity!r} is not a number: enter a positive whole number of shares."
    if qty <= 0:
        return "Quantity must be more than zero: enter a positive whole number of shares."
    if qty != qty.to_integral_value():
        return f"Quantity {qty} is not a whole number of shares: enter whole shares."
    if not lot.known:
        return (
            f"The board lot of {lot.describe()} is unknown (IB did not send it and it is not in our table): "
            "check the lot size in TWS and enter a multiple of it, or try again once the contract details load."
        )
    if lot.size > 1 and qty % lot.size != 0:
        down = (qty // lot.size) * lot.size
        nearest = f"{down:,}" if down > 0 else f"{lot.size:,}"
        return (
            f"{lot.describe()} trades in board lots of {lot.size:,}: use {_examples(lot.size)}, ... "
            f"({qty:,} is an odd lot; nearest whole-lot quantity {nearest})."
        )
    return None


def round_to_lots(quantity: Decimal, lot: BoardLot, mode: str = "down") -> Decimal:
    """Round a share quantity to a whole number of lots ("down", "up" or "nearest", ties up).

    Raises ValueError when the lot is unknown.
    """
    if mode not in ROUND_MODES:
        raise ValueError(f"unknown rounding mode {mode!r}: use one of {', '.join(ROUND_MODES)}")
    if not lot.known:
        raise ValueError(f"the board lot of {lot.describe()} is unknown")
    qty = to_decimal(quantity)
    lots = qty / lot.size
    if mode == "down":
        n = lots.to_integral_value(ROUND_FLOOR)
    elif mode == "up":
        n = lots.to_integral_value(ROUND_CEILING)
    else:
        n = (lots + Decimal("0.5")).to_integral_value(ROUND_FLOOR)
    return n * lot.size


def quantity_to_lots(quantity: Decimal, lot: BoardLot) -> Decimal:
    """How many lots ``quantity`` shares are (may be fractional for an odd lot)."""
    if not lot.known:
        raise ValueError(f"the board lot of {lot.describe()} is unknown")
    return to_decimal(quantity) / lot.size


def lots_to_quantity(lots: int | Decimal, lot: BoardLot) -> Decimal:
    """Shares in ``lots`` whole lots."""
    if not lot.known:
        raise ValueError(f"the board lot of {lot.describe()} is unknown")
    return to_decimal(lots) * lot.size


# --- trading sessions -------------------------------------------------------------------------------

# Abbreviations older TWS versions put in timeZoneId, mapped to the zone they mean (with DST).
_TZ_ALIASES = {
    "EST": "America/New_York", "EDT": "America/New_York", "EST5EDT": "America/New_York",
    "CST": "America/Chicago", "CST6CDT": "America/Chicago", "HKT": "Asia/Hong_Kong",
    "GMT": "Europe/London", "JST": "Asia/Tokyo", "MET": "Europe/Berlin", "CET": "Europe/Berlin",
}

REGULAR, OUTSIDE_RTH, CLOSED = "regular", "outside_rth", "closed"


def zone(name: str) -> ZoneInfo:
    """A ZoneInfo for IB's timeZoneId ("US/Eastern", "Asia/Hong_Kong", "Hongkong", "EST (Eastern ...)")."""
    key = (name or "").strip().split(" ")[0]
    key = _TZ_ALIASES.get(key.upper(), key)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"Unknown time zone {name!r} in the contract details"
            " (on Windows, zoneinfo needs the tzdata package)."
        ) from exc


Interval = tuple[datetime, datetime]


def _parse_hhmm(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    hhmm = hhmm.strip()
    if len(hhmm) != 4 or not hhmm.isdigit():
        raise ValueError(f"bad time {hhmm!r}")
    hour, minute = int(hhmm[:2]), int(hhmm[2:])
    extra = timedelta(0)
    if hour == 24:  # "2400" means midnight at the end of the day
        hour, extra = 0, timedelta(days=1)
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz) + extra
    return local.astimezone(timezone.utc)


def _parse_day(text: str) -> date:
    text = text.strip()
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"bad date {text!r}")
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def parse_hours(hours: str, tz: ZoneInfo) -> list[Interval]:
    """Parse IB's hours string into sorted UTC intervals.

    Forms: ``20250102:0930-20250102:1600;20250103:CLOSED`` (current) and the older
    ``20250102:0930-1200,1300-1600;20250103:CLOSED``. Empty text gives no intervals.
    """
    intervals: list[Interval] = []
    for chunk in (hours or "").split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        day_text, _, rest = chunk.partition(":")
        day = _parse_day(day_text)
        if not rest or rest.strip().upper() == "CLOSED":
            continue
        for part in rest.split(","):
            start_text, sep, end_text = part.partition("-")
            if not sep:
                raise ValueError(f"bad session {part!r} in {chunk!r}")
            start = _parse_hhmm(day, start_text, tz)
            if ":" in end_text:
                end_day_text, _, end_hhmm = end_text.partition(":")
                end = _parse_hhmm(_parse_day(end_day_text), end_hhmm, tz)
            else:
                end = _parse_hhmm(day, end_text, tz)
                if end <= start:  # old form crossing midnight
                    end += timedelta(days=1)
            if end > start:
                intervals.append((start, end))
    intervals.sort()
    return intervals


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def _inside(intervals: Sequence[Interval], moment: datetime) -> bool:
    return any(start <= moment < end for start, end in intervals)


@dataclass(frozen=True)
class TradingSessions:
    """Trading (incl. outside-RTH) and liquid (regular) sessions of one contract, in UTC.

    ``now`` arguments may be naive (taken as UTC) or aware. Outside the dates the strings cover,
    ``state`` says "closed" and ``next_open`` returns None.
    """

    trading: tuple[Interval, ...]
    liquid: tuple[Interval, ...]
    time_zone: str

    @classmethod
    def parse(cls, trading_hours: str, liquid_hours: str, time_zone: str) -> TradingSessions:
        tz = zone(time_zone)
        trading = parse_hours(trading_hours, tz)
        liquid = parse_hours(liquid_hours, tz) if (liquid_hours or "").strip() else list(trading)
        if not trading:
            trading = list(liquid)
        return cls(tuple(trading), tuple(liquid), time_zone)

    def state(self, now: datetime) -> str:
        """ "regular" | "outside_rth" | "closed" at ``now``."""
        moment = _utc(now)
        if _inside(self.liquid, moment):
            return REGULAR
        if _inside(self.trading, moment):
            return OUTSIDE_RTH
        return CLOSED

    def is_open(self, now: datetime, outside_rth: bool) -> bool:
        """Would an order for this contract trade now (with or without outsideRth)?"""
        current = self.state(now)
        return current == REGULAR or (outside_rth and current == OUTSIDE_RTH)

    def next_open(self, now: datetime, outside_rth: bool = False) -> datetime | None:
        """Start of the next regular session after ``now`` (any trading session if ``outside_rth``)."""
        moment = _utc(now)
        for start, _ in self.trading if outside_rth else self.liquid:
            if start > moment:
                return start
        return None

    def session_at(self, now: datetime) -> Interval | None:
        """The regular session containing ``now``, if any (its end is when the market breaks or closes)."""
        moment = _utc(now)
        for start, end in self.liquid:
            if start <= moment < end:
                return start, end
        return None
