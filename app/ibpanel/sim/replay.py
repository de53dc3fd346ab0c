"""Replay a recorded (or imported) market day on the practice exchange instead of its random walk.

* ``ReplayClock``: replay time, moving at 1x-60x wall time while playing; pause, seek. Thread-safe, so a
  window on another thread (ui/replay_bar.py) drives the exchange's clock directly.
* ``ReplayFeed``: the price source ``PracticeMarket`` asks for its next step (``PracticeMarket.price_source``). Each step
  applies every recorded quote whose time has come, at most one per instrument per step, so each recorded
  quote reaches the clients as its own update and in the recorded order; while more are due it asks the
  server for another step at once. A quote is applied only once the clock has reached its time: the
  market, and so every fill, never sees a price from the future of the replay clock. Bars and sessions
  come from the recording too.
* ``ReplaySession``: a loaded recording + clock + feed; ``SimConfig(replay=...)`` installs it.

``open_replay(path)`` loads a .ibrec recording or a .csv of bars; bad input raises RecordingError before
anything is replayed.
"""

from __future__ import annotations

import threading
import time as _time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from ibpanel.sim.market import (
    InstrumentBook,
    MarketRules,
    PracticeMarket,
    SimInstrument,
    parse_bar_size,
    parse_duration,
)
from ibpanel.sim.recording import RecordedInstrument, RecordedQuote, Recording, RecordingError, load_recording

UTC = timezone.utc
MIN_SPEED = 1.0
MAX_SPEED = 60.0


@dataclass(frozen=True)
class ReplayState:
    """What the Replay control shows."""

    time: datetime
    start: datetime
    end: datetime
    speed: float
    playing: bool
    finished: bool


class ReplayClock:
    """Replay time = anchor + (wall seconds since the anchor) x speed while playing; stops at ``end``."""

    def __init__(self, start: datetime, end: datetime, speed: float = 1.0, playing: bool = True,
                 monotonic: Callable[[], float] = _time.monotonic):
        if end < start:
            raise ValueError("a replay ends after it starts")
        self.start = start
        self.end = end
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._speed = self._checked_speed(speed)
        self._anchor_time = start
        self._anchor_wall = monotonic()
        self._playing = playing
        self.seeks = 0  # counts jumps, so the feed knows to reposition

    @staticmethod
    def _checked_speed(speed: float) -> float:
        speed = float(speed)
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"replay speed must be {MIN_SPEED:g}x to {MAX_SPEED:g}x, not {speed:g}x")
        return speed

    def _now_locked(self) -> datetime:
        if not self._playing:
            return self._anchor_time
        moved = self._anchor_time + timedelta(seconds=(self._monotonic() - self._anchor_wall) * self._speed)
        if moved >= self.end:  # the day is over: stop there
            self._anchor_time, self._anchor_wall, self._playing = self.end, self._monotonic(), False
            return self.end
        return moved

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def _reanchor(self) -> None:
        self._anchor_time = self._now_locked()
        self._anchor_wall = self._monotonic()

    def play(self) -> None:
        with self._lock:
            self._reanchor()
            if self._anchor_time < self.end:
                self._playing = True

    def pause(self) -> None:
        with self._lock:
            self._reanchor()
            self._playing = False

    def set_speed(self, speed: float) -> None:
        with self._lock:
            checked = self._checked_speed(speed)
            self._reanchor()
            self._speed = checked

    def seek(self, moment: datetime) -> datetime:
        """Jump to ``moment`` (clamped to the recording); returns where the clock now stands."""
        if moment.tzinfo is None:
            raise ValueError("seek needs an aware datetime")
        with self._lock:
            target = min(max(moment.astimezone(UTC), self.start), self.end)
            self._anchor_time, self._anchor_wall = target, self._monotonic()
            self.seeks += 1
            return target

    def state(self) -> ReplayState:
        with self._lock:
            now = self._now_locked()
            return ReplayState(time=now, start=self.start, end=self.end, speed=self._speed, playing=self._playing,
                               finished=now >= self.end)


def _sim_instrument(inst: RecordedInstrument, first: RecordedQuote | None) -> SimInstrument:
    ref = (first.last or first.bid or first.ask) if first is not None else None
    return SimInstrument(
        con_id=inst.con_id, symbol=inst.symbol, sec_type="STK", exchange=inst.exchange,
        primary_exchange=inst.primary_exchange, currency=inst.currency, local_symbol=inst.symbol,
        trading_class=inst.symbol, long_name=inst.long_name or inst.symbol, industry="", category="", subcategory="",
        board_lot=inst.board_lot, market_rule_id=inst.market_rule_id, ref_price=ref or inst.tick_rows[0][1] * 100,
        time_zone=inst.time_zone, order_types="LMT,MKT,STP,STPLMT", valid_exchanges=inst.exchange,
        market_rule_ids=str(inst.market_rule_id),
        min_tick=inst.tick_rows[0][1], market_name=inst.symbol, min_size=Decimal(inst.board_lot),
        size_increment=Decimal(inst.board_lot))


def _hours_state(hours: str, local: datetime) -> bool | None:
    """Whether ``local`` lies in one of TWS's "YYYYMMDD:HHMM-YYYYMMDD:HHMM" ranges; None when no hours are given."""
    if not hours.strip():
        return None
    stamp = local.strftime("%Y%m%d%H%M")
    for part in hours.split(";"):
        part = part.strip()
        if not part or part.endswith(":CLOSED"):
            continue
        try:
            begin, end = part.split("-")
        except ValueError:
            continue
        if begin.replace(":", "") <= stamp < end.replace(":", ""):
            return True
    return False


class ReplayFeed:
    """The recorded market as the practice exchange's price source (``PracticeMarket.price_source``)."""

    def __init__(self, recording: Recording, clock: ReplayClock):
        self.recording = recording
        self.clock = clock
        self._quotes = recording.quotes
        self._times = [q.time for q in self._quotes]
        self._cursor = 0
        self._seeks = -1  # -> position on the first step
        self._instruments = {i.con_id: i for i in recording.instruments}
        self._first_quote: dict[int, datetime] = {}
        for quote in self._quotes:
            self._first_quote.setdefault(quote.con_id, quote.time)
        self.on_more: Callable[[], None] | None = None  # set by ReplaySession.attach: "step again now"
        self.applied = 0  # quotes applied so far (benchmarks, tests)
        self.steps = 0  # market steps asked of the feed (tests wait on it)

    # ----- quotes ---------------------------------------------------------------------------------------
    def advance(self, market: PracticeMarket) -> list[int]:
        self.steps += 1
        now = self.clock.now()
        if self.clock.seeks != self._seeks:
            self._seeks = self.clock.seeks
            return self._position(market, now)
        quotes, times = self._quotes, self._times
        changed: list[int] = []
        seen: set[int] = set()
        cursor = self._cursor
        end = len(quotes)
        while cursor < end and times[cursor] <= now:
            quote = quotes[cursor]
            if quote.con_id in seen:  # a second update of one instrument: next step, so clients see both
                if self.on_more is not None:
                    self.on_more()
                break
            self._apply(market, quote)
            seen.add(quote.con_id)
            changed.append(quote.con_id)
            cursor += 1
        self.applied += cursor - self._cursor
        self._cursor = cursor
        return changed

    def _position(self, market: PracticeMarket, now: datetime) -> list[int]:
        """After a jump (or at the start): each instrument shows its last quote at or before ``now``."""
        self._cursor = bisect_right(self._times, now)
        self.applied = self._cursor  # the quotes up to the clock count as replayed
        latest: dict[int, RecordedQuote] = {}
        for quote in self._quotes[:self._cursor]:
            latest[quote.con_id] = quote
        for con_id, _inst in self._instruments.items():
            quote = latest.get(con_id)
            if quote is None:  # not traded yet at this time: show its first quote's prices, no volume
                first = next((q for q in self._quotes if q.con_id == con_id), None)
                if first is None:
                    continue
                quote = replace(first, time=now, volume=0, last_size=0)
            self._apply(market, quote)
        return list(self._instruments)

    @staticmethod
    def _apply(market: PracticeMarket, q: RecordedQuote) -> None:
        market.apply_quote(q.con_id, q.time, bid=q.bid, ask=q.ask, last=q.last, bid_size=q.bid_size,
                           ask_size=q.ask_size, last_size=q.last_size, volume=q.volume, open_=q.open,
                           high=q.high, low=q.low, close=q.close)

    # ----- bars -----------------------------------------------------------------------------------------
    def bars(self, market: PracticeMarket, con_id: int, end: datetime | None, duration: str, bar_size: str,
             what: str = "TRADES") -> list[tuple]:
        """Bars of the recorded day up to ``end`` (never past the replay clock), as PracticeMarket.bars returns them.

        Recorded bars of the asked size come first (days before the quotes); the quotes' prints make the rest,
        the newest bar still forming at the replay clock.
        """
        duration_s = parse_duration(duration)
        bar_s = parse_bar_size(bar_size)
        now = self.clock.now()
        end = now if end is None or end > now else end
        begin = end - timedelta(seconds=max(duration_s, bar_s))
        inst = self._instruments[con_id]
        zone = ZoneInfo(inst.time_zone)
        built: dict[datetime, list] = {}

        def bucket(moment: datetime) -> datetime:
            if bar_s >= 86400:
                local = moment.astimezone(zone)
                return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)
            epoch = int(moment.timestamp())
            return datetime.fromtimestamp(epoch - epoch % bar_s, UTC)

        sizes = {b.bar_seconds for b in self.recording.bars if b.con_id == con_id and b.bar_seconds <= bar_s
                 and bar_s % b.bar_seconds == 0}
        recorded_size = max(sizes) if sizes else None  # the coarsest recorded size that adds up to the asked one
        for bar in self.recording.bars:
            if bar.con_id != con_id or bar.bar_seconds != recorded_size:
                continue
            if bar.start + timedelta(seconds=bar.bar_seconds) > end:
                continue
            key = bucket(bar.start)
            row = built.get(key)
            if row is None:
                built[key] = [bar.open, bar.high, bar.low, bar.close, bar.volume, "bars"]
            elif row[5] == "bars":
                row[1], row[2], row[3], row[4] = max(row[1], bar.high), min(row[2], bar.low), bar.close, row[4] + bar.volume
        covered = set(built)
        last_volume: int | None = None
        for quote in self._quotes[:bisect_right(self._times, end)]:
            if quote.con_id != con_id or quote.last is None:
                continue
            key = bucket(quote.time)
            traded = 0
            if quote.volume is not None:
                traded = quote.volume - last_volume if last_volume is not None and quote.volume >= last_volume \
                    else (quote.last_size or 0)
                last_volume = quote.volume
            if key in covered:
                continue
            row = built.get(key)
            price = quote.last
            if row is None:
                built[key] = [price, price, price, price, max(traded, 0), "quotes"]
            else:
                row[1], row[2], row[3] = max(row[1], price), min(row[2], price), price
                row[4] += max(traded, 0)
        trades = what.upper() == "TRADES"
        out = []
        for key in sorted(built):
            if key + timedelta(seconds=bar_s) <= begin:
                continue
            o, h, low, c, volume, _ = built[key]
            wap = ((h + low + c) / 3).quantize(Decimal("0.0001"))
            count = max(1, volume // 100) if volume else 0
            out.append((key, o, h, low, c, volume if trades else -1, wap, count if trades else -1))
        return out

    # ----- sessions -------------------------------------------------------------------------------------
    def session_state(self, con_id: int, now: datetime) -> str:
        """As recorded: "open" in liquid hours, "pre"/"post" in the rest of the trading hours, else "closed".

        An instrument recorded without hours is always open; outside the listed days it is closed, and so it is
        before its first recorded quote (orders wait: its first quote's price is not known yet at that time).
        """
        inst = self._instruments[con_id]
        first = self._first_quote.get(con_id)
        if first is None or now < first:  # it shows its first quote already, but that price lies in the future
            return "closed"
        local = now.astimezone(ZoneInfo(inst.time_zone))
        liquid = _hours_state(inst.liquid_hours, local)
        if liquid is None or liquid:
            return "open"
        trading = _hours_state(inst.trading_hours, local)
        if not trading:
            return "closed"
        return "pre" if local.hour < 12 else "post"

    def trading_hours(self, con_id: int) -> tuple[str, str]:
        inst = self._instruments[con_id]
        return inst.trading_hours, inst.liquid_hours


class ReplaySession:
    """A recording ready to replay: pass it as ``SimConfig(replay=...)``; ``clock`` is the control."""

    def __init__(self, recording: Recording, speed: float = 1.0, playing: bool = True,
                 monotonic: Callable[[], float] = _time.monotonic):
        if not recording.quotes:
            raise RecordingError("the recording has no quotes to replay")
        self.recording = recording
        self.clock = ReplayClock(recording.start, recording.end, speed=speed, playing=playing, monotonic=monotonic)
        self.feed = ReplayFeed(recording, self.clock)
        self.source = recording.meta.get("path", "")

    def start_at(self, text: str) -> datetime:
        """Jump to ``text``: ISO with an offset, or "YYYY-MM-DD HH:MM[:SS]" / "HH:MM" in the opening market's zone."""
        zone = ZoneInfo(self.time_zones()[0])
        raw = text.strip()
        try:
            if len(raw) <= 8 and ":" in raw:  # a time of the recording's first day
                hour, minute, *rest = (int(p) for p in raw.split(":"))
                day = self.clock.start.astimezone(zone).date()
                moment = datetime(day.year, day.month, day.day, hour, minute, rest[0] if rest else 0, tzinfo=zone)
            else:
                moment = datetime.fromisoformat(raw)
                moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        except ValueError:
            raise ValueError(f"replay start {text!r} is not a time: write HH:MM or 'YYYY-MM-DD HH:MM' "
                             f"({zone.key} time) or an ISO time with an offset") from None
        return self.clock.seek(moment)

    def time_zones(self) -> tuple[str, tuple[str, ...]]:
        """(the zone of the market that opens the recording, every zone of the recording)."""
        first = self.recording.instrument(self.recording.quotes[0].con_id).time_zone
        return first, tuple(dict.fromkeys(i.time_zone for i in self.recording.instruments))

    def book_and_rules(self, rules: MarketRules) -> tuple[InstrumentBook, MarketRules]:
        """The practice exchange's listing for this replay: only the recorded instruments, their tick rules."""
        first: dict[int, RecordedQuote] = {}
        for quote in self.recording.quotes:
            first.setdefault(quote.con_id, quote)
        merged = {rid: rules.rows(rid) for rid in rules.ids()}
        listed = []
        for inst in self.recording.instruments:
            rows = sorted(inst.tick_rows)
            rule_id = inst.market_rule_id
            if rule_id <= 0 or merged.get(rule_id, rows) != rows:  # unknown, or the id means other bands here
                rule_id = next(n for n in range(900_001, 1_000_000) if n not in merged)
                inst = replace(inst, market_rule_id=rule_id)
            merged[rule_id] = rows
            listed.append(_sim_instrument(inst, first.get(inst.con_id)))
        return InstrumentBook(listed), MarketRules(merged, dict(rules.names))

    def attach(self, market: PracticeMarket, step_again: Callable[[], None]) -> None:
        """Make ``market`` take its prices from the recording; ``step_again`` schedules one more market step."""
        self.feed.on_more = step_again
        market.price_source = self.feed
        self.feed.advance(market)


def open_replay(path: Path, speed: float = 1.0, playing: bool = True, symbol: str | None = None,
                start: str | None = None) -> ReplaySession:
    """Load a recording (.ibrec) or a CSV of bars (.csv) whole and check it; RecordingError if it is unusable.

    ``start``: where the clock begins (see ``ReplaySession.start_at``); default the recording's first quote.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        from ibpanel.sim.csv_bars import load_csv_bars

        recording = load_csv_bars(path, symbol=symbol)
    else:
        recording = load_recording(path)
    recording.meta["path"] = str(path)
    session = ReplaySession(recording, speed=speed, playing=playing)
    if start:
        session.start_at(start)
    return session


__all__ = ["MAX_SPEED", "MIN_SPEED", "ReplayClock", "ReplayFeed", "ReplaySession", "ReplayState", "open_replay"]
