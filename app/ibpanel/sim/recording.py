"""The market recording file: quotes and bars of chosen instruments, with their contract details.

One SQLite file per trading day (stdlib, crash-safe: every batch is a committed transaction, so a
recording cut short by a crash still loads up to its last commit). The schema is documented in
docs/recording-format.md; ``SCHEMA`` below is the source of truth.

Quote rows are compact: a column left NULL means "unchanged since this instrument's previous row",
so a quote where only the bid moved stores one price. Prices are decimal text (exact); times are
integer microseconds since 1970-01-01 UTC.

``RecordingWriter`` writes (the panel's recorder in broker/recorder.py and the CSV import use it);
``load_recording`` reads a whole file into a ``Recording`` or raises ``RecordingError`` naming the
byte offset or the row that is wrong and what to do: nothing half-loaded is ever returned.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

UTC = timezone.utc
FORMAT_NAME = "ibpanel-recording"
FORMAT_VERSION = 1
FILE_SUFFIX = ".ibrec"  # e.g. 2025-03-14.ibrec (an SQLite database)
_SQLITE_HEADER = b"SQLite format 3\x00"
_COMMIT_EVERY = 500  # quote rows per transaction while recording

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,           -- format, version, created, source, note
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instruments (
    con_id INTEGER PRIMARY KEY,     -- IB's contract id (the practice exchange's for practice recordings)
    symbol TEXT NOT NULL,           -- IB spelling: "AAPL", "BRK B", "700"
    exchange TEXT NOT NULL,         -- "SMART" or "SEHK"
    primary_exchange TEXT NOT NULL, -- "NASDAQ", "NYSE", "SEHK", ...
    currency TEXT NOT NULL,         -- "USD" or "HKD"
    time_zone TEXT NOT NULL,        -- IB's spelling: "US/Eastern", "Asia/Hong_Kong"
    board_lot INTEGER NOT NULL,     -- shares per lot (US: 1)
    market_rule_id INTEGER NOT NULL,
    tick_rows TEXT NOT NULL,        -- JSON [[low_edge, increment], ...] of that market rule, ascending
    long_name TEXT NOT NULL DEFAULT '',
    trading_hours TEXT NOT NULL DEFAULT '',  -- TWS format: "20250314:0400-20250314:2000;20250315:CLOSED"
    liquid_hours TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS quotes (
    seq INTEGER PRIMARY KEY,        -- arrival order
    time_us INTEGER NOT NULL,       -- microseconds since 1970-01-01 UTC
    con_id INTEGER NOT NULL,
    bid TEXT, ask TEXT, last TEXT,  -- NULL: unchanged since this instrument's previous row
    bid_size INTEGER, ask_size INTEGER, last_size INTEGER,
    volume INTEGER,                 -- the day's cumulative volume
    open TEXT, high TEXT, low TEXT, close TEXT  -- close = the previous day's close
);
CREATE TABLE IF NOT EXISTS bars (
    con_id INTEGER NOT NULL,
    bar_seconds INTEGER NOT NULL,   -- 60 for 1-minute bars, 86400 for daily bars
    start_us INTEGER NOT NULL,      -- bar start, microseconds since 1970-01-01 UTC
    open TEXT NOT NULL, high TEXT NOT NULL, low TEXT NOT NULL, close TEXT NOT NULL,
    volume INTEGER NOT NULL,
    PRIMARY KEY (con_id, bar_seconds, start_us)
) WITHOUT ROWID;
"""

QUOTE_PRICE_FIELDS = ("bid", "ask", "last", "open", "high", "low", "close")
QUOTE_SIZE_FIELDS = ("bid_size", "ask_size", "last_size", "volume")
_QUOTE_COLUMNS = ("bid", "ask", "last", "bid_size", "ask_size", "last_size", "volume", "open", "high", "low", "close")


class RecordingError(ValueError):
    """A recording or an import that cannot be used; the message says where and what to do."""


@dataclass(frozen=True)
class RecordedInstrument:
    """One instrument of a recording, with what the practice exchange needs to list and trade it."""

    con_id: int
    symbol: str
    exchange: str
    primary_exchange: str
    currency: str
    time_zone: str
    board_lot: int
    market_rule_id: int
    tick_rows: tuple[tuple[Decimal, Decimal], ...]
    long_name: str = ""
    trading_hours: str = ""
    liquid_hours: str = ""

    @property
    def market(self) -> str:
        return "HK" if self.exchange == "SEHK" else "US"


@dataclass(frozen=True)
class RecordedQuote:
    """One quote update, every field filled in (the loader carries unchanged fields forward)."""

    time: datetime
    con_id: int
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int | None = None
    ask_size: int | None = None
    last_size: int | None = None
    volume: int | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None


@dataclass(frozen=True)
class RecordedBar:
    con_id: int
    bar_seconds: int
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass
class Recording:
    """A whole recording in memory: quotes sorted by (time, arrival), bars by (con_id, size, start)."""

    instruments: list[RecordedInstrument]
    quotes: list[RecordedQuote]
    bars: list[RecordedBar] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def instrument(self, con_id: int) -> RecordedInstrument:
        for inst in self.instruments:
            if inst.con_id == con_id:
                return inst
        raise KeyError(f"con_id {con_id} is not in the recording")

    @property
    def start(self) -> datetime:
        return self.quotes[0].time

    @property
    def end(self) -> datetime:
        return self.quotes[-1].time


def to_us(moment: datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch (exact, no float rounding)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


def _text(value: Decimal | float | None) -> str | None:
    if value is None:
        return None
    return format(Decimal(str(value)).normalize(), "f")


class RecordingWriter:
    """Appends instruments, quotes and bars to a recording file (created with the schema if new).

    Not thread-safe: use it from one thread. Rows are committed in batches and on ``flush`` /
    ``close``; ``size_bytes`` and ``quote_count`` are the figures the UI shows.
    """

    def __init__(self, path: Path, source: str = "panel"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path))
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        existing = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if existing and existing.get("format") != FORMAT_NAME:
            self._conn.close()
            raise RecordingError(f"{self.path} is an SQLite file but not an IB Panel recording; choose another name")
        if not existing:
            self._conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [
                ("format", FORMAT_NAME), ("version", str(FORMAT_VERSION)),
                ("created", datetime.now(UTC).isoformat(timespec="seconds")), ("source", source)])
        self._conn.commit()
        self.quote_count = self._conn.execute("SELECT COUNT(*) FROM quotes").fetchone()[0]
        self.bar_count = self._conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0]
        self._pending = 0
        self._previous: dict[int, tuple] = {}  # con_id -> last full row written, for NULL = unchanged

    def add_instrument(self, inst: RecordedInstrument) -> None:
        rows = json.dumps([[_text(low), _text(inc)] for low, inc in inst.tick_rows])
        self._conn.execute(
            "INSERT OR REPLACE INTO instruments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (inst.con_id, inst.symbol, inst.exchange, inst.primary_exchange, inst.currency, inst.time_zone,
             inst.board_lot, inst.market_rule_id, rows, inst.long_name, inst.trading_hours, inst.liquid_hours))
        self._conn.commit()

    def add_quote(self, quote: RecordedQuote) -> bool:
        """Append one quote; returns False (and writes nothing) when nothing changed since the previous one."""
        full = (_text(quote.bid), _text(quote.ask), _text(quote.last), quote.bid_size, quote.ask_size,
                quote.last_size, quote.volume, _text(quote.open), _text(quote.high), _text(quote.low),
                _text(quote.close))
        before = self._previous.get(quote.con_id)
        if before == full:
            return False
        stored = full if before is None else tuple(None if new == old else new for new, old in zip(full, before, strict=False))
        self._previous[quote.con_id] = full
        self._conn.execute(
            f"INSERT INTO quotes(time_us, con_id, {', '.join(_QUOTE_COLUMNS)}) VALUES (?, ?{', ?' * 11})",
            (to_us(quote.time), quote.con_id, *stored))
        self.quote_count += 1
        self._pending += 1
        if self._pending >= _COMMIT_EVERY:
            self.flush()
        return True

    def add_bars(self, bars: list[RecordedBar]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(b.con_id, b.bar_seconds, to_us(b.start), _text(b.open), _text(b.high), _text(b.low), _text(b.close),
              int(b.volume)) for b in bars])
        self._conn.commit()
        self.bar_count = self._conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0]

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
        self._conn.commit()

    def flush(self) -> None:
        self._conn.commit()
        self._pending = 0

    @property
    def size_bytes(self) -> int:
        """The file's size on disk including its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += Path(str(self.path) + suffix).stat().st_size
            except OSError:
                pass
        return total

    def close(self) -> None:
        """Commit and fold the write-ahead log into the file, so the recording is one self-contained file."""
        if self._conn is None:
            return
        self._conn.commit()
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.execute("PRAGMA journal_mode=DELETE")
        self._conn.close()
        self._conn = None  # type: ignore[assignment]


def write_recording(path: Path, recording: Recording, source: str) -> Path:
    """Write a whole in-memory recording (e.g. a CSV import) to a new file."""
    path = Path(path)
    if path.exists():
        path.unlink()
    writer = RecordingWriter(path, source=source)
    try:
        for inst in recording.instruments:
            writer.add_instrument(inst)
        for quote in recording.quotes:
            writer.add_quote(quote)
        if recording.bars:
            writer.add_bars(recording.bars)
        for key, value in recording.meta.items():
            if key not in ("format", "version", "created", "source"):
                writer.set_meta(key, value)
    finally:
        writer.close()
    return path


# ----- reading --------------------------------------------------------------------------------------------
def _check_file(path: Path) -> None:
    """Header checks before SQLite sees the file: not a recording, or cut short (truncated copy)."""
    if not path.exists():
        raise RecordingError(f"{path}: no such file; give the path of a .ibrec recording or a .csv of bars")
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
        raise RecordingError(
            f"{path}: byte 0: not an IB Panel recording (an SQLite file starts with 'SQLite format 3'; "
            f"this one is {size} bytes and does not); record one with the Practice tab or import a CSV of bars")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    change_counter, valid_for = header[24:28], header[92:96]
    if pages and change_counter == valid_for and page_size * pages > size:
        raise RecordingError(
            f"{path}: truncated at byte {size}: its header says the file is {page_size * pages} bytes; "
            "the copy was cut short - copy the whole file again (or record the day again)")


def _decimal(value: object, where: str, column: str) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RecordingError(f"{where}: {column} {value!r} is not a number; fix or delete that row") from None
    if not number.is_finite() or number < 0:
        raise RecordingError(f"{where}: {column} {value!r} is not a price; fix or delete that row")
    return number


def load_recording(path: Path) -> Recording:
    """Read and check a whole recording. Raises RecordingError (offset or row, and what to do)."""
    path = Path(path)
    _check_file(path)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise RecordingError(f"{path}: cannot be opened ({exc}); check the file's permissions") from None
    try:
        return _read(conn, path)
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: damaged ({exc}); copy the whole file again or record the day again") from None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, path: Path) -> Recording:
    check = conn.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise RecordingError(f"{path}: damaged ({check}); copy the whole file again or record the day again")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"meta", "instruments", "quotes", "bars"} <= tables:
        raise RecordingError(f"{path}: an SQLite file but not an IB Panel recording (tables {sorted(tables)})")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: meta 'format' is {meta.get('format')!r}, not {FORMAT_NAME!r}")
    if int(meta.get("version", "0")) > FORMAT_VERSION:
        raise RecordingError(f"{path}: recording format {meta['version']} is newer than this panel reads "
                             f"({FORMAT_VERSION}); update IB Panel")
    instruments: dict[int, RecordedInstrument] = {}
    for row in conn.execute("SELECT * FROM instruments ORDER BY con_id"):
        where = f"{path}: instruments row con_id={row[0]}"
        try:
            rows = tuple((_decimal(low, where, "tick_rows"), _decimal(inc, where, "tick_rows"))
                         for low, inc in json.loads(row[8]))
        except (ValueError, TypeError):
            raise RecordingError(f"{where}: tick_rows {row[8]!r} is not [[low, increment], ...]") from None
        if not rows or any(inc is None or inc <= 0 for _, inc in rows):
            raise RecordingError(f"{where}: tick_rows needs at least one positive increment")
        if int(row[6]) < 1:
            raise RecordingError(f"{where}: board_lot {row[6]} must be a whole number of shares >= 1")
        instruments[row[0]] = RecordedInstrument(
            con_id=row[0], symbol=row[1], exchange=row[2], primary_exchange=row[3], currency=row[4],
            time_zone=row[5], board_lot=int(row[6]), market_rule_id=int(row[7]), tick_rows=rows,  # type: ignore[arg-type]
            long_name=row[9], trading_hours=row[10], liquid_hours=row[11])
    quotes: list[RecordedQuote] = []
    state: dict[int, RecordedQuote] = {}
    for row in conn.execute(f"SELECT seq, time_us, con_id, {', '.join(_QUOTE_COLUMNS)} FROM quotes ORDER BY seq"):
        seq, time_us, con_id = row[0], row[1], row[2]
        where = f"{path}: quotes row seq={seq}"
        if con_id not in instruments:
            raise RecordingError(f"{where}: con_id {con_id} has no row in instruments; the recording is incomplete")
        changes: dict[str, object] = {}
        for name, value in zip(_QUOTE_COLUMNS, row[3:], strict=False):
            if value is None:
                continue
            if name in QUOTE_SIZE_FIELDS:
                if not isinstance(value, int) or value < 0:
                    raise RecordingError(f"{where}: {name} {value!r} must be a whole number >= 0")
                changes[name] = value
            else:
                changes[name] = _decimal(value, where, name)
        before = state.get(con_id)
        quote = (replace(before, time=from_us(time_us), **changes) if before is not None
                 else RecordedQuote(time=from_us(time_us), con_id=con_id, **changes))  # type: ignore[arg-type]
        state[con_id] = quote
        quotes.append(quote)
    if not quotes:
        raise RecordingError(f"{path}: has no quotes; record while the instruments stream (or import bars)")
    quotes.sort(key=lambda q: q.time)  # stable: equal times keep arrival order
    bars = []
    for row in conn.execute("SELECT * FROM bars ORDER BY con_id, bar_seconds, start_us"):
        where = f"{path}: bars row con_id={row[0]} start_us={row[2]}"
        if row[0] not in instruments:
            raise RecordingError(f"{where}: con_id {row[0]} has no row in instruments")
        o, h, low, c = (_decimal(v, where, n) for v, n in zip(row[3:7], ("open", "high", "low", "close"), strict=False))
        bars.append(RecordedBar(row[0], int(row[1]), from_us(row[2]), o, h, low, c, int(row[7])))  # type: ignore[arg-type]
    return Recording(instruments=list(instruments.values()), quotes=quotes, bars=bars, meta=meta)


__all__ = [
    "FILE_SUFFIX", "FORMAT_NAME", "FORMAT_VERSION", "RecordedBar", "RecordedInstrument", "RecordedQuote",
    "Recording", "RecordingError", "RecordingWriter", "from_us", "load_recording", "to_us", "write_recording",
]
