"""Instruments, price increments, seeded price paths and trading sessions of the practice exchange.

Pure Python, no sockets: the server (sim/server.py) asks this module for quotes, bars and sessions.
Prices are kept internally as integers in each instrument's finest price unit (e.g. 0.0001 USD) so that
``Market.advance`` over a thousand instruments stays cheap; every public value is a ``Decimal`` on the tick.

Determinism: each instrument has its own random stream seeded from (seed, con_id), so its path does not
depend on which other instruments were advanced. Historical bars are a pure function of
(seed, con_id, bar size, bar start time) anchored at the live last price.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from copy import copy
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from ibpanel.paths import resource_path

UTC = timezone.utc
SYNTHETIC_CON_ID_BASE = 990_000_000  # SYM0001 -> 990000001; reserved, never used by the data file
_SECONDS_PER_TRADING_YEAR = 252 * 6.5 * 3600  # annual volatility -> per-second volatility
_NOMINAL_STEP_SECONDS = 0.25  # one advance() step stands for a quarter second of trading
_MEAN_REVERSION = 2e-4  # pull toward the reference price per step, so long sessions stay plausible
_MAX_BARS = 100_000  # one request walks at most this many bars (TWS answers 162 for huge requests)


@dataclass(frozen=True)
class SimInstrument:
    """One stock the practice exchange lists; field names follow CONTRACT_DATA."""

    con_id: int
    symbol: str
    sec_type: str  # "STK"
    exchange: str  # "SMART" (US) or "SEHK" (HK)
    primary_exchange: str  # "NASDAQ", "NYSE", "ARCA", "SEHK"
    currency: str  # "USD" / "HKD"
    local_symbol: str
    trading_class: str
    long_name: str
    industry: str
    category: str
    subcategory: str
    board_lot: int  # US: 1
    market_rule_id: int  # 26 US; 1723 HK stocks; 1724 HK ETFs (see market_rules.json)
    ref_price: Decimal
    time_zone: str  # "US/Eastern" or "Asia/Hong_Kong" (IB's spellings)
    order_types: str  # comma list as CONTRACT_DATA.orderTypes
    valid_exchanges: str  # comma list; market_rule_ids is aligned with it
    stock_type: str = "COMMON"
    market_rule_ids: str = ""  # comma list aligned with valid_exchanges (filled in by the loader)
    min_tick: Decimal = Decimal("0.01")
    market_name: str = ""
    min_size: Decimal = Decimal(1)
    size_increment: Decimal = Decimal(1)
    volatility: float = 0.30  # annualised; drives the simulated path
    avg_daily_volume: int = 1_000_000

    @property
    def market(self) -> str:
        """"US" or "HK"."""
        return "HK" if self.exchange == "SEHK" else "US"


def _instrument_from_dict(entry: dict, defaults: dict) -> SimInstrument:
    merged = {**defaults, **entry}
    symbol = str(merged["symbol"])
    valid = merged.get("valid_exchanges") or merged["exchange"]
    rule_id = int(merged["market_rule_id"])
    lot = int(merged.get("board_lot", 1))
    return SimInstrument(
        con_id=int(merged["con_id"]),
        symbol=symbol,
        sec_type=merged.get("sec_type", "STK"),
        exchange=merged["exchange"],
        primary_exchange=merged["primary_exchange"],
        currency=merged["currency"],
        local_symbol=merged.get("local_symbol", symbol),
        trading_class=merged.get("trading_class", merged.get("market_name") or symbol),
        long_name=merged.get("long_name", symbol),
        industry=merged.get("industry", ""),
        category=merged.get("category", ""),
        subcategory=merged.get("subcategory", ""),
        board_lot=lot,
        market_rule_id=rule_id,
        ref_price=Decimal(str(merged["ref_price"])),
        time_zone=merged["time_zone"],
        order_types=merged.get("order_types", "LMT,MKT,STP,STPLMT"),
        valid_exchanges=valid,
        stock_type=merged.get("stock_type", "COMMON"),
        market_rule_ids=merged.get("market_rule_ids") or ",".join([str(rule_id)] * len(valid.split(","))),
        min_tick=Decimal(str(merged.get("min_tick", "0.01"))),
        market_name=merged.get("market_name", symbol),
        min_size=Decimal(str(merged.get("min_size", lot))),
        size_increment=Decimal(str(merged.get("size_increment", lot))),
        volatility=float(merged.get("volatility", 0.30)),
        avg_daily_volume=int(merged.get("avg_daily_volume", 1_000_000)),
    )


class InstrumentBook:
    """The listed instruments, loaded from resources/sim/instruments.json (data, not code)."""

    def __init__(self, instruments: Iterable[SimInstrument]):
        self._all = list(instruments)
        self._by_con_id = {inst.con_id: inst for inst in self._all}
        if len(self._by_con_id) != len(self._all):
            raise ValueError("instruments.json lists a con_id twice; each instrument needs its own con_id")
        self._by_symbol: dict[str, list[SimInstrument]] = {}
        for inst in self._all:
            self._by_symbol.setdefault(inst.symbol.upper(), []).append(inst)

    @classmethod
    def load(cls, path: Path | None = None, synthetic: int = 0) -> InstrumentBook:
        """Load the data file (default resources/sim/instruments.json) plus ``synthetic`` SYM0001.. US stocks."""
        path = path or resource_path("sim", "instruments.json")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        markets = data.get("markets", {})
        instruments = [_instrument_from_dict(e, markets.get(e.get("market", "US"), {})) for e in data["instruments"]]
        us_defaults = markets.get("US", {})
        for n in range(1, synthetic + 1):
            instruments.append(_instrument_from_dict(_synthetic_entry(n), us_defaults))
        return cls(instruments)

    def all(self) -> list[SimInstrument]:
        return list(self._all)

    def by_con_id(self, con_id: int) -> SimInstrument | None:
        return self._by_con_id.get(con_id)

    def find(self, symbol: str, sec_type: str = "STK", exchange: str = "", currency: str = "",
             primary_exchange: str = "", con_id: int = 0) -> list[SimInstrument]:
        """IB's contract matching: empty fields are wildcards, SMART matches any US stock, symbol ignores case.

        A con_id alone (empty symbol) finds that instrument; a con_id with a symbol must agree with it.
        An exchange other than SMART/SEHK matches instruments that list it among their valid exchanges.
        """
        if symbol:
            candidates = self._by_symbol.get(symbol.strip().upper(), [])
        elif con_id:
            inst = self._by_con_id.get(con_id)
            candidates = [inst] if inst else []
        else:
            return []
        found = []
        for inst in candidates:
            if con_id and inst.con_id != con_id:
                continue
            if sec_type and sec_type.upper() != inst.sec_type:
                continue
            if currency and currency.upper() != inst.currency:
                continue
            if primary_exchange and primary_exchange.upper() != inst.primary_exchange:
                continue
            if exchange:
                wanted = exchange.upper()
                if wanted != inst.exchange and wanted not in inst.valid_exchanges.split(","):
                    continue
            found.append(inst)
        return found


def _synthetic_entry(n: int) -> dict:
    """A generated US stock for benchmarks: deterministic in n, prices spread over $5..$500."""
    ref = Decimal(5 + (n * 37) % 496) + Decimal((n * 13) % 100) / 100
    return {
        "market": "US", "symbol": f"SYM{n:04d}", "con_id": SYNTHETIC_CON_ID_BASE + n,
        "primary_exchange": "NASDAQ" if n % 2 else "NYSE", "long_name": f"SYNTHETIC STOCK {n:04d}",
        "industry": "Synthetic", "category": "Benchmark", "subcategory": "Benchmark",
        "ref_price": str(ref), "market_name": "NMS" if n % 2 else f"SYM{n:04d}",
        "volatility": 0.30, "avg_daily_volume": 2_000_000,
    }


class MarketRules:
    """IB market rules (price increment tables) from resources/sim/market_rules.json."""

    def __init__(self, rules: dict[int, list[tuple[Decimal, Decimal]]], names: dict[int, str] | None = None):
        self._rules = {rid: sorted(rows) for rid, rows in rules.items()}
        self.names = names or {}

    @classmethod
    def load(cls, path: Path | None = None) -> MarketRules:
        path = path or resource_path("sim", "market_rules.json")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rules = {int(r["id"]): [(Decimal(lo), Decimal(inc)) for lo, inc in r["rows"]] for r in data["rules"]}
        return cls(rules, {int(r["id"]): r.get("name", "") for r in data["rules"]})

    def ids(self) -> list[int]:
        return sorted(self._rules)

    def rows(self, rule_id: int) -> list[tuple[Decimal, Decimal]]:
        """(low_edge, increment) rows, ascending. KeyError for an unknown rule id."""
        return list(self._rules[rule_id])

    def increment(self, rule_id: int, price: Decimal) -> Decimal:
        """The increment of the row with the highest low_edge at or below ``price``."""
        rows = self._rules[rule_id]
        inc = rows[0][1]
        for low, row_inc in rows:
            if price >= low:
                inc = row_inc
            else:
                break
        return inc

    def on_tick(self, rule_id: int, price: Decimal) -> bool:
        """True when ``price`` is positive and a whole multiple of its increment."""
        try:
            if not price.is_finite() or price <= 0:
                return False
            return price % self.increment(rule_id, price) == 0
        except InvalidOperation:  # too many digits to divide exactly: certainly not a price on a tick
            return False

    def round_to_tick(self, rule_id: int, price: Decimal, up: bool = False) -> Decimal:
        """The nearest on-tick price at or below (or, with ``up``, at or above) ``price``."""
        inc = self.increment(rule_id, price)
        mode = ROUND_CEILING if up else ROUND_FLOOR
        return (price / inc).to_integral_value(rounding=mode) * inc


class TickGrid:
    """One market rule in integer units of its finest increment: cheap floor/step for the hot path."""

    def __init__(self, rows: list[tuple[Decimal, Decimal]]):
        self.exponent = max(-inc.as_tuple().exponent for _, inc in rows)
        self.exponent = max(self.exponent, 0)
        scale = Decimal(10) ** self.exponent
        self.scale = int(scale)
        self.edges = [int(low * scale) for low, _ in rows]
        self.incs = [int(inc * scale) for _, inc in rows]
        # quantum per row, so public Decimals print with the tick's decimals (230.15, not 230.1500)
        self.quanta = [inc.normalize() if inc.normalize().as_tuple().exponent < 0 else Decimal(1) for _, inc in rows]
        self._decimals: dict[int, Decimal] = {}  # units -> public Decimal (Decimals are immutable: safe to share)

    def floor(self, units: int) -> int:
        inc = self.incs[bisect_right(self.edges, units) - 1]
        return units - units % inc

    def ceil(self, units: int) -> int:
        floored = self.floor(units)
        return floored if floored == units else self.up(floored)

    def up(self, units: int) -> int:
        return units + self.incs[bisect_right(self.edges, units) - 1]

    def down(self, units: int) -> int:
        """One tick below ``units`` (the increment of the band just below it)."""
        row = max(bisect_left(self.edges, units) - 1, 0)
        return units - self.incs[row]

    def to_units(self, price: Decimal) -> int:
        return int(price * self.scale)

    def to_decimal(self, units: int) -> Decimal:
        cached = self._decimals.get(units)
        if cached is None:
            if len(self._decimals) > 200_000:  # paths wander slowly; a full reset now and then is enough
                self._decimals.clear()
            quantum = self.quanta[max(bisect_right(self.edges, units) - 1, 0)]
            cached = self._decimals[units] = Decimal(units).scaleb(-self.exponent).quantize(quantum)
        return cached


@dataclass
class Top:
    """The live top of book and day stats of one instrument. ``close`` is the previous day's close."""

    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int
    last: Decimal
    last_size: int
    volume: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    time: datetime


class _Path:
    """Mutable per-instrument state in integer price units (hot path: no Decimal here)."""

    __slots__ = ("inst", "grid", "rng", "mid", "ref", "sigma", "bid", "ask", "bid_size", "ask_size", "last",
                 "last_size", "volume", "open", "high", "low", "close", "lot", "size_unit", "trade_unit",
                 "top_cache", "time", "day", "steps")

    def __init__(self, inst: SimInstrument, grid: TickGrid, seed: int):
        self.inst = inst
        self.grid = grid
        self.rng = random.Random(f"{seed}:{inst.con_id}")
        ref = grid.to_units(inst.ref_price)
        ref = max(grid.floor(ref), grid.incs[0])
        self.ref = float(ref)
        self.mid = float(ref)
        self.sigma = inst.volatility / math.sqrt(_SECONDS_PER_TRADING_YEAR) * math.sqrt(_NOMINAL_STEP_SECONDS)
        self.lot = inst.board_lot
        # displayed sizes: US in round lots of 100 shares, HK in board lots
        self.size_unit = 100 if inst.board_lot == 1 else inst.board_lot
        self.trade_unit = 1 if inst.board_lot == 1 else inst.board_lot
        self.bid = ref
        self.ask = grid.up(ref)
        self.bid_size = self.size_unit * 10
        self.ask_size = self.size_unit * 10
        self.last = ref
        self.last_size = 0
        self.volume = 0
        self.open = ref
        self.high = ref
        self.low = ref
        self.close = ref
        self.top_cache: Top | None = None
        self.time: datetime | None = None
        self.day: date | None = None
        self.steps = 0


class Market:
    """Seeded price paths, quotes, bars and sessions for every instrument in the book.

    ``session_mode``: "always" (practice: always open) or "real" (US 09:30-16:00 New York with
    04:00-20:00 outside RTH; HK 09:30-12:00 and 13:00-16:00 Hong Kong, pre-open 09:00-09:30,
    closing auction to 16:10; weekends closed; exchange holidays are not modelled).
    ``clock`` returns an aware UTC datetime (default: the wall clock).
    """

    def __init__(self, book: InstrumentBook, rules: MarketRules, seed: int = 1,
                 session_mode: str = "always", clock: Callable[[], datetime] | None = None):
        if session_mode not in ("always", "real"):
            raise ValueError(f"session_mode must be 'always' or 'real', not {session_mode!r}")
        self.book = book
        self.rules = rules
        self.seed = seed
        self.session_mode = session_mode
        self.clock = clock or (lambda: datetime.now(UTC))
        self.price_source = None  # replay (sim/replay.py ReplayFeed): recorded prices instead of the random walk
        self._grids: dict[int, TickGrid] = {rid: TickGrid(rules.rows(rid)) for rid in rules.ids()}
        self._paths: dict[int, _Path] = {}
        for inst in book.all():
            if inst.market_rule_id not in self._grids:
                raise ValueError(f"{inst.symbol}: market rule {inst.market_rule_id} is not in market_rules.json")
            self._paths[inst.con_id] = _Path(inst, self._grids[inst.market_rule_id], seed)
        now = self.clock()
        for path in self._paths.values():
            path.time = now
            path.day = self._local_day(path.inst, now)

    # ----- quotes -----------------------------------------------------------------------------------------
    def _path(self, con_id: int) -> _Path:
        try:
            return self._paths[con_id]
        except KeyError:
            raise KeyError(f"con_id {con_id} is not listed on the practice exchange") from None

    def grid_units(self, con_id: int) -> tuple[int, int, int]:
        """(bid, ask, last) in the instrument's integer price units, for cheap comparisons by the exchange."""
        p = self._path(con_id)
        return p.bid, p.ask, p.last

    def quote_units(self, con_id: int) -> tuple[tuple[int, ...], TickGrid]:
        """The quote state in integer price units, for the streaming hot path (no Decimal, no copy).

        Returns ``((bid, ask, last, bid_size, ask_size, last_size, high, low, volume, close, open), grid)``;
        prices are units of ``grid`` (``grid.to_decimal(units)`` gives the on-tick Decimal ``top()`` shows).
        """
        p = self._path(con_id)
        return (p.bid, p.ask, p.last, p.bid_size, p.ask_size, p.last_size, p.high, p.low, p.volume, p.close,
                p.open), p.grid

    def top(self, con_id: int) -> Top:
        """The current top of book (a fresh object; cached until the instrument changes)."""
        p = self._path(con_id)
        cached = p.top_cache
        if cached is None:
            g = p.grid
            dec = g.to_decimal
            cached = Top(bid=dec(p.bid), ask=dec(p.ask), bid_size=p.bid_size, ask_size=p.ask_size,
                         last=dec(p.last), last_size=p.last_size, volume=p.volume, open=dec(p.open),
                         high=dec(p.high), low=dec(p.low), close=dec(p.close), time=p.time)
            p.top_cache = cached
        return copy(cached)

    def advance(self, con_ids: Iterable[int] | None = None) -> list[int]:
        """One random-walk step for those instruments (default all); returns the con_ids whose Top changed.

        In "real" session mode an instrument whose market is closed (or at lunch) does not move.
        """
        if self.price_source is not None:  # replay hook
            return self.price_source.advance(self)
        now = self.clock()
        paths = self._paths
        ids = paths.keys() if con_ids is None else con_ids
        trading_by_tz: dict[str, bool] = {}
        day_by_tz: dict[str, date] = {}
        changed = []
        for con_id in ids:
            p = paths.get(con_id)
            if p is None:
                continue
            inst = p.inst
            if self.session_mode == "real":
                tz = inst.time_zone
                moving = trading_by_tz.get(tz)
                if moving is None:
                    moving = self.session_state(con_id, now) in ("open", "pre", "post")
                    trading_by_tz[tz] = moving
                if not moving:
                    continue
            day = day_by_tz.get(inst.time_zone)
            if day is None:
                day = day_by_tz[inst.time_zone] = self._local_day(inst, now)
            if day != p.day:
                self._roll_day(p, day)
            if self._step(p):
                p.time = now
                p.top_cache = None
                changed.append(con_id)
        return changed

    def _step(self, p: _Path) -> bool:
        rnd = p.rng.random
        grid = p.grid
        p.steps += 1
        # Gaussian-ish step from two uniforms (cheaper than gauss(); variance matched to sigma)
        shock = (rnd() + rnd() - 1.0) * 2.449489742783178 * p.sigma
        mid = p.mid * (1.0 + shock) + _MEAN_REVERSION * (p.ref - p.mid)
        floor_units = grid.incs[0] * 2
        if mid < floor_units:
            mid = float(floor_units)
        p.mid = mid
        old = (p.bid, p.ask, p.bid_size, p.ask_size, p.last)
        bid = grid.floor(int(mid))
        ask = grid.up(bid)
        if rnd() < 0.3:  # sometimes two ticks wide
            ask = grid.up(ask)
        p.bid = bid
        p.ask = ask
        if rnd() < 0.5:
            p.bid_size = p.size_unit * (1 + int(rnd() * 30))
            p.ask_size = p.size_unit * (1 + int(rnd() * 30))
        if rnd() < 0.6:  # a print at the bid or the ask
            price = ask if rnd() < 0.5 else bid
            size = p.trade_unit * (1 + int(rnd() * rnd() * 20)) * (100 if p.trade_unit == 1 and rnd() < 0.3 else 1)
            self._print(p, price, size)
        return old != (p.bid, p.ask, p.bid_size, p.ask_size, p.last) or p.last_size != 0

    @staticmethod
    def _print(p: _Path, price_units: int, size: int) -> None:
        p.last = price_units
        p.last_size = size
        p.volume += size
        if p.volume == size:  # first print of the day sets the open
            p.open = price_units
            p.high = price_units
            p.low = price_units
        elif price_units > p.high:
            p.high = price_units
        elif price_units < p.low:
            p.low = price_units

    def move_to(self, con_id: int, price: Decimal) -> None:
        """Jump the market to ``price`` and keep it trading around there (tests, practice scenarios):
        the random walk's centre moves too, and a print at the new bid sets the last trade."""
        p = self._path(con_id)
        units = max(p.grid.floor(p.grid.to_units(Decimal(price))), p.grid.incs[0])
        p.ref = p.mid = float(units)
        p.bid, p.ask = units, p.grid.up(units)
        self._print(p, units, p.trade_unit)
        p.time = self.clock()
        p.top_cache = None

    def apply_quote(self, con_id: int, when: datetime, **fields: Decimal | int | None) -> None:
        """Replay hook: set the top of book and day stats from a recorded quote (None keeps a field).

        ``fields``: bid, ask, last (Decimal); bid_size, ask_size, last_size, volume (int); open_, high, low, close.
        """
        p = self._path(con_id)
        for name, value in fields.items():
            if value is not None:
                setattr(p, name.rstrip("_"), p.grid.to_units(value) if isinstance(value, Decimal) else int(value))
        p.mid = float(p.bid)
        p.time = when
        p.day = self._local_day(p.inst, when)
        p.top_cache = None

    def record_trade(self, con_id: int, price: Decimal, quantity: Decimal) -> None:
        """A practice fill prints on the tape: last, volume, high and low include it."""
        p = self._path(con_id)
        self._print(p, p.grid.to_units(price), int(quantity))
        p.time = self.clock()
        p.top_cache = None

    def _local_day(self, inst: SimInstrument, now: datetime) -> date:
        return now.astimezone(ZoneInfo(inst.time_zone)).date()

    @staticmethod
    def _roll_day(p: _Path, day: date) -> None:
        """A new local trading day: the previous close is the last price; day stats restart."""
        p.day = day
        p.close = p.last
        p.open = p.high = p.low = p.last
        p.volume = 0
        p.last_size = 0

    def levels(self, con_id: int, side: str, depth: int = 5) -> list[tuple[Decimal, int]]:
        """The synthetic book a taker of ``side`` walks: "BUY" -> asks ascending, "SELL" -> bids descending.

        Level 0 is the top of book; deeper levels are one tick apart with sizes that grow with depth
        (deterministic for the current quote).
        """
        p = self._path(con_id)
        grid = p.grid
        buying = side.upper() in ("BUY", "BOT")
        price = p.ask if buying else p.bid
        size = p.ask_size if buying else p.bid_size
        out = []
        for level in range(depth):
            if price <= 0:
                break
            out.append((grid.to_decimal(price), size))
            price = grid.up(price) if buying else grid.down(price)
            mix = _splitmix(p.steps * 131 + level * 7 + con_id)
            size = p.size_unit * (5 + level * 10 + int(mix % 20))
        return out

    # ----- historical bars --------------------------------------------------------------------------------
    def bars(self, con_id: int, end: datetime | None, duration: str, bar_size: str, what: str = "TRADES"
             ) -> list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, int, Decimal, int]]:
        """Bars (time, open, high, low, close, volume, wap, count) ending at ``end`` (None/future = now).

        ``duration`` like "1 D", "3600 S", "2 W", "1 M", "1 Y"; ``bar_size`` like "5 secs", "1 min",
        "15 mins", "1 hour", "1 day". Deterministic for a seed; the newest bar closes at the live last
        price. ``what`` other than TRADES gives volume and count -1, as TWS does for MIDPOINT/BID/ASK.
        Intraday bars cover the whole clock (also nights and weekends in "real" mode); daily bars are
        weekdays, today's being the live day. At most 100,000 bars are walked per request.
        Raises ValueError for a duration or bar size it cannot read (the server answers error 321/162).
        """
        if self.price_source is not None:  # replay hook
            return self.price_source.bars(self, con_id, end, duration, bar_size, what)
        p = self._path(con_id)
        duration_s = parse_duration(duration)
        bar_s = parse_bar_size(bar_size)
        now = self.clock()
        if end is None or end > now:
            end = now
        daily = bar_s >= 86400
        wanted = self._bar_starts(p.inst, end - timedelta(seconds=max(duration_s, bar_s) - 1), end, bar_s)
        if not daily:
            wanted = wanted[-max(1, duration_s // bar_s):]
        if not wanted:
            return []
        # the path is walked backwards from the live last over every bar from the first wanted one to now
        chain = self._bar_starts(p.inst, wanted[0], now, bar_s)
        if daily:
            sigma = p.inst.volatility / math.sqrt(252) * math.sqrt(bar_s / 86400)
            base_volume = p.inst.avg_daily_volume * bar_s / 86400
        else:
            sigma = p.inst.volatility / math.sqrt(_SECONDS_PER_TRADING_YEAR) * math.sqrt(bar_s)
            base_volume = p.inst.avg_daily_volume * bar_s / 23400
        grid = p.grid
        salt = self.seed * 1_000_003 + con_id * 7919 + bar_s
        # today's daily bar is the live day (open/high/low/last/volume); older bars walk back from the prior close
        live_today = None
        if bar_s == 86400 and p.volume > 0 and chain[-1].astimezone(ZoneInfo(p.inst.time_zone)).date() == p.day:
            live_today = chain[-1]
        close = float(p.close if live_today else p.last)
        ohlc: dict[datetime, tuple[float, float]] = {}
        for t in reversed(chain[:-1] if live_today else chain):
            open_ = close / math.exp(_normal(_splitmix(salt ^ int(t.timestamp()))) * sigma)
            ohlc[t] = (open_, close)
            close = open_
        dec = grid.to_decimal
        minimum = grid.incs[0]
        newest = chain[-1]
        is_trades = what.upper() == "TRADES"
        out = []
        for t in wanted:
            if t == live_today:
                count = max(1, p.volume // (100 * p.trade_unit))
                wap = (Decimal(p.high + p.low + p.last) / 3).scaleb(-grid.exponent).quantize(Decimal("0.0001"))
                volume = p.volume if is_trades else -1
                out.append((t, dec(p.open), dec(p.high), dec(p.low), dec(p.last), volume, wap,
                            count if is_trades else -1))
                continue
            o_units, c_units = ohlc[t]
            h = _splitmix(salt ^ (int(t.timestamp()) * 3 + 1))
            wick_hi = ((h & 0xFFFF) / 65536.0) * sigma * 0.8
            wick_lo = (((h >> 16) & 0xFFFF) / 65536.0) * sigma * 0.8
            o = grid.floor(max(int(round(o_units)), minimum))
            c = p.last if t == newest else grid.floor(max(int(round(c_units)), minimum))
            hi = max(grid.ceil(int(max(o, c) * (1 + wick_hi))), o, c)
            lo = min(grid.floor(max(int(min(o, c) * (1 - wick_lo)), minimum)), o, c)
            volume = int(base_volume * (0.5 + ((h >> 32) & 0xFFFF) / 65536.0)) // p.trade_unit * p.trade_unit
            count = max(1, volume // (100 * p.trade_unit)) if volume else 0
            wap = (Decimal(hi + lo + c) / 3).scaleb(-grid.exponent).quantize(Decimal("0.0001"))
            if not is_trades:
                volume, count = -1, -1
            out.append((t, dec(o), dec(hi), dec(lo), dec(c), volume, wap, count))
        return out

    def _bar_starts(self, inst: SimInstrument, first: datetime, last: datetime, bar_s: int) -> list[datetime]:
        """Start times (UTC) of the bars touching [first, last]; daily bars are local weekdays."""
        if bar_s >= 86400:
            tz = ZoneInfo(inst.time_zone)
            d = first.astimezone(tz).date()
            last_day = last.astimezone(tz).date()
            days = []
            while d <= last_day:
                if d.weekday() < 5:
                    days.append(datetime.combine(d, time(0), tz).astimezone(UTC))
                d += timedelta(days=max(1, bar_s // 86400))
            if len(days) > _MAX_BARS:
                raise ValueError("too many daily bars asked for; ask for a shorter duration")
            return days
        first_epoch = int(first.timestamp())
        first_epoch -= first_epoch % bar_s
        last_epoch = int(last.timestamp())
        count = (last_epoch - first_epoch) // bar_s + 1
        if count > _MAX_BARS:
            raise ValueError(f"{count} bars of {bar_s} s is more than {_MAX_BARS}; ask for a shorter duration "
                             "or a larger bar size")
        return [datetime.fromtimestamp(first_epoch + i * bar_s, UTC) for i in range(count)]

    # ----- sessions ---------------------------------------------------------------------------------------
    def session_state(self, con_id: int, now: datetime | None = None) -> str:
        """"open" | "pre" | "post" | "lunch" | "closed"; always "open" in "always" mode."""
        if self.price_source is not None:  # replay hook: sessions as recorded
            return self.price_source.session_state(con_id, now or self.clock())
        if self.session_mode == "always":
            return "open"
        inst = self._path(con_id).inst
        local = (now or self.clock()).astimezone(ZoneInfo(inst.time_zone))
        if local.weekday() >= 5:
            return "closed"
        hm = local.hour * 100 + local.minute
        if inst.market == "HK":
            if 900 <= hm < 930:
                return "pre"
            if 930 <= hm < 1200 or 1300 <= hm < 1600:
                return "open"
            if 1200 <= hm < 1300:
                return "lunch"
            if 1600 <= hm < 1610:
                return "post"
            return "closed"
        if 930 <= hm < 1600:
            return "open"
        if 400 <= hm < 930:
            return "pre"
        if 1600 <= hm < 2000:
            return "post"
        return "closed"

    def accepts_order(self, con_id: int, outside_rth: bool, now: datetime | None = None) -> bool:
        """Whether an order may trade now: regular hours always; US pre/post only with outside_rth.

        HK has no outside-RTH continuous trading, so pre-open, lunch and the closing auction say False.
        An order placed while this is False is held PreSubmitted by the exchange until it is True.
        """
        state = self.session_state(con_id, now)
        if state == "open":
            return True
        inst = self._path(con_id).inst
        return inst.market == "US" and state in ("pre", "post") and outside_rth

    def trading_hours(self, con_id: int, now: datetime | None = None) -> tuple[str, str]:
        """(tradingHours, liquidHours) for the next 7 local days in TWS's format.

        Example: "20250102:0400-20250102:2000;20250104:CLOSED". "always" mode lists every day 0000-2400.
        """
        if self.price_source is not None:  # replay hook
            return self.price_source.trading_hours(con_id)
        inst = self._path(con_id).inst
        tz = ZoneInfo(inst.time_zone)
        today = (now or self.clock()).astimezone(tz).date()
        trading, liquid = [], []
        for offset in range(7):
            d = today + timedelta(days=offset)
            ds = d.strftime("%Y%m%d")
            if self.session_mode == "always":
                nxt = (d + timedelta(days=1)).strftime("%Y%m%d")
                trading.append(f"{ds}:0000-{nxt}:0000")
                liquid.append(f"{ds}:0000-{nxt}:0000")
            elif d.weekday() >= 5:
                trading.append(f"{ds}:CLOSED")
                liquid.append(f"{ds}:CLOSED")
            elif inst.market == "HK":
                trading.append(f"{ds}:0900-{ds}:1200;{ds}:1300-{ds}:1610")
                liquid.append(f"{ds}:0930-{ds}:1200;{ds}:1300-{ds}:1600")
            else:
                trading.append(f"{ds}:0400-{ds}:2000")
                liquid.append(f"{ds}:0930-{ds}:1600")
        return ";".join(trading), ";".join(liquid)

    def end_of_day(self) -> None:
        """Start a new trading day now: previous close = last, day stats reset (used by 'real' mode / tests)."""
        now = self.clock()
        for p in self._paths.values():
            self._roll_day(p, self._local_day(p.inst, now))
            p.top_cache = None

    # ----- persistence ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Last prices, day stats and random states, as JSON-able data for --state."""
        return {
            "seed": self.seed,
            "instruments": {
                str(cid): {
                    "mid": p.mid, "bid": p.bid, "ask": p.ask, "bid_size": p.bid_size, "ask_size": p.ask_size,
                    "last": p.last, "last_size": p.last_size, "volume": p.volume, "open": p.open,
                    "high": p.high, "low": p.low, "close": p.close, "steps": p.steps,
                    "day": p.day.isoformat() if p.day else None, "scale": p.grid.scale,
                    "rng": _rng_state_to_json(p.rng.getstate()),
                }
                for cid, p in self._paths.items()
            },
        }

    def load_dict(self, d: dict) -> None:
        """Restore what to_dict saved; instruments no longer listed are ignored, new ones keep their start."""
        for key, s in d.get("instruments", {}).items():
            p = self._paths.get(int(key))
            if p is None or s.get("scale", p.grid.scale) != p.grid.scale:
                continue
            for name in ("bid", "ask", "bid_size", "ask_size", "last", "last_size", "volume", "open", "high",
                         "low", "close", "steps"):
                setattr(p, name, int(s[name]))
            p.mid = float(s["mid"])
            p.day = date.fromisoformat(s["day"]) if s.get("day") else None
            if s.get("rng"):
                p.rng.setstate(_rng_state_from_json(s["rng"]))
            p.top_cache = None


def _rng_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


_MASK64 = (1 << 64) - 1


def _splitmix(x: int) -> int:
    """A 64-bit integer hash (splitmix64 finaliser): cheap, well mixed, deterministic across runs."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _normal(h: int) -> float:
    """A standard normal draw from a 64-bit hash (Box-Muller on its two halves)."""
    u1 = ((h & 0xFFFFFFFF) + 1) / 4294967297.0
    u2 = (h >> 32) / 4294967296.0
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


_DURATION_UNITS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}
_BAR_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "day": 86400,
              "days": 86400, "week": 7 * 86400, "weeks": 7 * 86400, "month": 30 * 86400, "months": 30 * 86400}


def parse_duration(text: str) -> int:
    """"N S|D|W|M|Y" -> seconds. ValueError with a hint for anything else."""
    parts = text.strip().split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1].upper() not in _DURATION_UNITS or int(parts[0]) <= 0:
        raise ValueError(f"duration {text!r} is not 'N S|D|W|M|Y' (e.g. '1 D', '3600 S')")
    return int(parts[0]) * _DURATION_UNITS[parts[1].upper()]


def parse_bar_size(text: str) -> int:
    """"5 secs", "1 min", "15 mins", "1 hour", "1 day" ... -> seconds. ValueError for anything else."""
    parts = text.strip().split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1].lower() not in _BAR_UNITS or int(parts[0]) <= 0:
        raise ValueError(f"bar size {text!r} is not like '5 secs', '1 min', '15 mins', '1 hour' or '1 day'")
    return int(parts[0]) * _BAR_UNITS[parts[1].lower()]


__all__ = [
    "InstrumentBook", "Market", "MarketRules", "SimInstrument", "Top", "SYNTHETIC_CON_ID_BASE",
    "parse_bar_size", "parse_duration",
]
