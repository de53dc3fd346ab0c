"""Record the quotes (and historical bars) the broker already streams into a replayable file per day.

Qt-free; runs on the loop thread. ``MarketRecorder`` consumes the broker's own models (``Quote`` from
``quotes_updated``, ``Bar`` from ``bars``) and writes them with sim/recording.py's writer, with each
instrument's contract details, board lot, tick rule (market rule rows) and trading hours, so that
``ibpanel --demo --replay FILE`` can list and trade the same instruments. Works the same against a real
TWS or the practice exchange. ``start_recording`` / ``stop_recording`` wire it to a connected broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from ibpanel.broker.models import Bar, Instrument, Quote
from ibpanel.broker.rules import TickTable, TradingSessions
from ibpanel.numbers import decimal_or_none
from ibpanel.sim.recording import FILE_SUFFIX, RecordedBar, RecordedInstrument, RecordedQuote, RecordingWriter

log = logging.getLogger(__name__)
UTC = timezone.utc
_BAR_SECONDS = {"1 min": 60, "5 mins": 300, "1 hour": 3600, "1 day": 86400}


@dataclass(frozen=True)
class RecorderStatus:
    """What the Practice tab shows while recording."""

    path: Path | None
    symbols: tuple[str, ...]
    quotes: int
    bars: int
    size_bytes: int
    progress: float | None  # share of today's regular session already behind us (0..1), None if unknown
    recording: bool


def _dec(value: float | None) -> Decimal | None:
    """A streamed float as Decimal by its repr; None (also NaN, infinities) when nothing is known."""
    return None if value is None else decimal_or_none(float(value))


def _int(value: float | None) -> int | None:
    if value is None or value != value:
        return None
    return max(int(value), 0)


def recorded_instrument(instrument: Instrument, ticks: TickTable) -> RecordedInstrument:
    """The recording's row for a resolved instrument (con_id, lot, tick rule rows, hours)."""
    if not instrument.con_id:
        raise ValueError(f"{instrument.display} is not resolved with IB yet; resolve it before recording")
    rule_id = instrument.market_rule_ids[0] if instrument.market_rule_ids else 0
    return RecordedInstrument(
        con_id=instrument.con_id, symbol=instrument.symbol, exchange=instrument.exchange,
        primary_exchange=instrument.primary_exchange or instrument.exchange, currency=instrument.currency,
        time_zone=instrument.time_zone or ("Asia/Hong_Kong" if instrument.exchange == "SEHK" else "US/Eastern"),
        board_lot=max(instrument.board_lot, 1), market_rule_id=rule_id, tick_rows=tuple(ticks.rows),
        long_name=instrument.long_name or "", trading_hours=instrument.trading_hours or "",
        liquid_hours=instrument.liquid_hours or "")


class MarketRecorder:
    """Appends the chosen instruments' quotes to ``folder/YYYY-MM-DD.ibrec`` (a new file each local day)."""

    def __init__(self, folder: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.folder = Path(folder)
        self._clock = clock
        self._instruments: dict[int, RecordedInstrument] = {}
        self._names: dict[int, str] = {}
        self._writer: RecordingWriter | None = None
        self._day: str | None = None
        self.recording = True
        self.subscribed: list[Instrument] = []  # what start_recording subscribed (stop_recording releases it)

    def path_for(self, moment: datetime) -> Path:
        return self.folder / f"{moment.astimezone().date().isoformat()}{FILE_SUFFIX}"

    def _writer_for(self, moment: datetime) -> RecordingWriter:
        day = moment.astimezone().date().isoformat()
        if self._writer is None or day != self._day:
            if self._writer is not None:
                self._writer.close()
            self._writer = RecordingWriter(self.path_for(moment), source="panel recorder")
            self._day = day
            for inst in self._instruments.values():
                self._writer.add_instrument(inst)
        return self._writer

    def add(self, instrument: Instrument, ticks: TickTable) -> None:
        """Record this instrument from now on (its contract details go into the file at once)."""
        row = recorded_instrument(instrument, ticks)
        self._instruments[row.con_id] = row
        self._names[row.con_id] = instrument.display
        self._writer_for(self._clock()).add_instrument(row)

    def on_quotes(self, quotes: Sequence[Quote]) -> None:
        """``Broker.quotes_updated`` handler: append the chosen instruments' quotes."""
        if not self.recording:
            return
        for quote in quotes:
            con_id = quote.instrument.con_id
            if con_id not in self._instruments or quote.stale:
                continue
            moment = quote.time or self._clock()
            self._writer_for(moment).add_quote(RecordedQuote(
                time=moment.astimezone(UTC), con_id=con_id, bid=_dec(quote.bid), ask=_dec(quote.ask),
                last=_dec(quote.last), bid_size=_int(quote.bid_size), ask_size=_int(quote.ask_size),
                last_size=_int(quote.last_size), volume=_int(quote.volume), open=_dec(quote.open),
                high=_dec(quote.high), low=_dec(quote.low), close=_dec(quote.close)))

    def add_bars(self, instrument: Instrument, bar_seconds: int, bars: Sequence[Bar]) -> None:
        """Historical bars fetched for this instrument (the replayed chart shows them before the quotes)."""
        if instrument.con_id not in self._instruments or not bars:
            return
        rows = [RecordedBar(instrument.con_id, bar_seconds, b.time.astimezone(UTC), _dec(b.open), _dec(b.high),
                            _dec(b.low), _dec(b.close), _int(b.volume) or 0) for b in bars]  # type: ignore[arg-type]
        self._writer_for(self._clock()).add_bars(rows)

    def status(self) -> RecorderStatus:
        writer = self._writer
        return RecorderStatus(
            path=writer.path if writer else None, symbols=tuple(self._names.values()),
            quotes=writer.quote_count if writer else 0, bars=writer.bar_count if writer else 0,
            size_bytes=writer.size_bytes if writer else 0, progress=self._progress(), recording=self.recording)

    def _progress(self) -> float | None:
        now = self._clock()
        for inst in self._instruments.values():
            try:
                sessions = TradingSessions.parse(inst.trading_hours, inst.liquid_hours, inst.time_zone)
            except ValueError:
                continue
            for start, end in sessions.liquid:
                if start.date() == now.astimezone(UTC).date() or start <= now < end:
                    if now <= start:
                        return 0.0
                    return min((now - start) / (end - start), 1.0)
        return None

    def close(self) -> None:
        self.recording = False
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


async def start_recording(broker, symbols: Sequence[str], folder: Path, bar_size: str = "1 min",
                          history: str = "1 D") -> MarketRecorder:
    """Resolve ``symbols``, subscribe them, record their bars of ``history`` and every quote from now on.

    ``broker`` is the connected ``Broker`` (broker/service.py). Raises the broker's errors for a symbol it
    cannot resolve, before anything is recorded.
    """
    recorder = MarketRecorder(folder)
    resolved = [await broker.resolve(text) for text in symbols]
    for instrument in resolved:
        recorder.add(instrument, await broker.tick_table(instrument))
    broker.quotes_updated.connect(recorder.on_quotes)
    for instrument in resolved:
        await broker.subscribe(instrument)
        recorder.subscribed.append(instrument)
        try:
            bars = await broker.bars(instrument, history, bar_size)
        except Exception as exc:  # noqa: BLE001 - bars are a bonus; the quotes are the recording
            log.warning("no historical bars recorded for %s: %s", instrument.display, exc)
            continue
        recorder.add_bars(instrument, _BAR_SECONDS.get(bar_size, 60), bars)
    return recorder


def stop_recording(broker, recorder: MarketRecorder) -> None:
    broker.quotes_updated.disconnect(recorder.on_quotes)
    for instrument in recorder.subscribed:
        broker.unsubscribe(instrument)
    recorder.close()


__all__ = ["MarketRecorder", "RecorderStatus", "recorded_instrument", "start_recording", "stop_recording"]
