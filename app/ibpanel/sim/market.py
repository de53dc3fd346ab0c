"""Instruments, price increments, seeded price paths and trading sessions of the practice exchange.

Over 500 lines because instruments, tick tables, the live quote walk and sessions share the
per-instrument path state; history bars live in sim/history.py.

Pure Python, no sockets: the server (sim/server.py) asks this module for quotes, bars and sessions.
Prices are kept internally as integers in each instrument's finest price unit (e.g. 0.0001 USD) so that
``PracticeMarket.advance`` over a thousand instruments stays cheap; every public value is a ``Decimal`` on the tick.

Determinism: each instrument has its own random stream seeded from (seed, con_id), so its path does not
depend on which other instruments were advanced. Historical bars come from sim/history.py: one path per
instrument, generated before the exchange started and the live tape (minute bars of what printed) after,
so every bar size and the live stream agree.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from copy import copy
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from ibpanel.paths import resource_path
from ibpanel.sim import calendars
from ibpanel.sim.history import PriceHistory

UTC = timezone.utc
SYNTHETIC_CON_ID_BASE = 990_000_000  # SYM0001 -> 990000001; reserved, never used by the data file
_SECONDS_PER_TRADING_YEAR = 252 * 6.5 * 3600  # annual volatility -> per-second volatility
_NOMINAL_STEP_SECONDS = 0.25  # one advance() step stands for a quarter second of trading
_MEAN_REVERSION = 2e-4  # pull toward the reference price per step, so long sessions stay plausible


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
                 "top_cache", "time", "day", "steps", "tape", "tape_minute", "tape_bar", "history")

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
        # the live tape: epoch minute -> [open, high, low, close, volume] of the prints (history.py reads it)
        self.tape: dict[int, list[int]] = {}
        self.tape_minute = -1
        self.tape_bar: list[int] = []
        self.history: PriceHistory | None = None


class PracticeMarket:
    """Seeded price paths, quotes, bars and sessions for every instrument in the book.

    ``session_mode``: "always" (practice: always open) or "real" (US 09:30-16:00 New York with
    04:00-20:00 outside RTH; HK 09:30-12:00 and 13:00-16:00 Hong Kong, pre-open 09:00-09:30,
    closing auction to 16:10; weekends, holidays and half days from the exchange calendar).
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
            path.history = PriceHistory(path.inst, path.grid, seed, now, path.last, path.tape,
                                        always_open=session_mode == "always")

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
        minute = int(now.timestamp()) // 60
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
            if self._step(p, minute):
                p.time = now
                p.top_cache = None
                changed.append(con_id)
        return changed

    def _step(self, p: _Path, minute: int) -> bool:
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
            self._print(p, price, size, minute)
        return old != (p.bid, p.ask, p.bid_size, p.ask_size, p.last) or p.last_size != 0

    @staticmethod
    def _print(p: _Path, price_units: int, size: int, minute: int) -> None:
        bar = p.tape_bar
        if minute > p.tape_minute:  # a new minute on the tape
            bar = p.tape_bar = [price_units, price_units, price_units, price_units, size]
            p.tape[minute] = bar
            p.tape_minute = minute
        else:  # the same minute (or a clock set back: kept in the newest minute)
            if price_units > bar[1]:
                bar[1] = price_units
            elif price_units < bar[2]:
                bar[2] = price_units
            bar[3] = price_units
            bar[4] += size
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
        now = self.clock()
        self._print(p, units, p.trade_unit, int(now.timestamp()) // 60)
        p.time = now
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
        now = self.clock()
        self._print(p, p.grid.to_units(price), int(quantity), int(now.timestamp()) // 60)
        p.time = now
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
    def bars(self, con_id: int, end: datetime | None, duration: str, bar_size: str, what: str = "TRADES",
             use_rth: bool = False) -> list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, int, Decimal, int]]:
        """Bars (time, open, high, low, close, volume, wap, count) ending at ``end`` (None/future = now).

        ``duration`` like "1 D" (sessions), "3600 S", "2 W", "1 M", "1 Y"; ``bar_size`` like "5 secs",
        "1 min", "15 mins", "1 hour", "1 day", "1 week", "1 month". Every size is a view of the instrument's
        one price path (sim/history.py); bars exist only in the exchange's sessions (regular hours with
        ``use_rth``, US extended hours 04:00-20:00 without), never on holidays; half days end early.
        ``what`` other than TRADES gives volume and count -1, as TWS does for MIDPOINT/BID/ASK.
        Raises ValueError for a request it cannot serve (the server answers error 162).
        """
        if self.price_source is not None:  # replay hook
            return self.price_source.bars(self, con_id, end, duration, bar_size, what)
        p = self._path(con_id)
        bar_s = parse_bar_size(bar_size)
        now = self.clock()
        if end is None or end > now:
            end = now
        assert p.history is not None
        return p.history.bars(end, now, duration, bar_s, what, use_rth)

    # ----- sessions ---------------------------------------------------------------------------------------
    def session_state(self, con_id: int, now: datetime | None = None) -> str:
        """"open" | "pre" | "post" | "lunch" | "closed"; always "open" in "always" mode.

        "real" mode follows the exchange calendar (calendars.py): holidays are closed, half days end early
        (US 13:00 with after-hours to 17:00; HK after the morning, then the closing auction).
        """
        if self.price_source is not None:  # replay hook: sessions as recorded
            return self.price_source.session_state(con_id, now or self.clock())
        if self.session_mode == "always":
            return "open"
        inst = self._path(con_id).inst
        moment = now or self.clock()
        sd = calendars.session_on(inst.market, moment.astimezone(ZoneInfo(inst.time_zone)).date())
        if sd is None:
            return "closed"
        if inst.market == "HK":
            if sd.open - timedelta(minutes=30) <= moment < sd.open:
                return "pre"
            if sd.break_start is not None and sd.break_end is not None and sd.break_start <= moment < sd.break_end:
                return "lunch"
            if sd.open <= moment < sd.close:
                return "open"
            if sd.close <= moment < sd.close + timedelta(minutes=10):
                return "post"
            return "closed"
        if sd.open <= moment < sd.close:
            return "open"
        if sd.open - calendars.US_EXTENDED_BEFORE <= moment < sd.open:
            return "pre"
        if sd.close <= moment < sd.close + calendars.US_EXTENDED_AFTER:
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
            elif (sd := calendars.session_on(inst.market, d)) is None:  # weekends and holidays
                trading.append(f"{ds}:CLOSED")
                liquid.append(f"{ds}:CLOSED")
            else:
                def hm(moment: datetime, shift: timedelta = timedelta(0)) -> str:
                    return (moment + shift).astimezone(tz).strftime("%H%M")
                if inst.market == "HK":
                    parts = [(sd.open, sd.break_start), (sd.break_end, sd.close)] if sd.break_start else [
                        (sd.open, sd.close)]
                    liquid.append(";".join(f"{ds}:{hm(a)}-{ds}:{hm(b)}" for a, b in parts))
                    first, last = parts[0], parts[-1]
                    sessions = [(first[0] - timedelta(minutes=30), first[1])] + parts[1:-1]
                    if len(parts) > 1:
                        sessions.append((last[0], last[1] + timedelta(minutes=10)))
                    else:
                        sessions = [(first[0] - timedelta(minutes=30), first[1] + timedelta(minutes=10))]
                    trading.append(";".join(f"{ds}:{hm(a)}-{ds}:{hm(b)}" for a, b in sessions))
                else:
                    trading.append(f"{ds}:{hm(sd.open, -calendars.US_EXTENDED_BEFORE)}-"
                                   f"{ds}:{hm(sd.close, calendars.US_EXTENDED_AFTER)}")
                    liquid.append(f"{ds}:{hm(sd.open)}-{ds}:{hm(sd.close)}")
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
            # the restored last price anchors the history; the previous run's tape is not kept
            p.tape.clear()
            p.tape_minute = -1
            if p.history is not None:
                p.history.reset(self.clock(), p.last, p.close)


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
    "InstrumentBook", "MarketRules", "PracticeMarket", "SimInstrument", "Top", "SYNTHETIC_CON_ID_BASE",
    "parse_bar_size", "parse_duration",
]
