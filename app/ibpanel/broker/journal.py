"""The order journal: every order the user submitted, written down before anything is sent.

Over 500 lines because the whole life of an entry (intent, acknowledgement, fills, reconcile,
export) is one SQLite schema whose writes must stay together.

SQLite (stdlib), WAL, one file per profile (``default_journal_path(profile)``). The life of an entry:

1. ``record_intent`` writes the request and commits with ``synchronous=FULL`` before the order is
   sent; the entry is ``Unconfirmed`` and has a journal id that travels to TWS in ``orderRef``
   (``order_ref(journal_id)`` = ``"ibp:" + journal_id``).
2. ``mark_sent`` (placeOrder was called: orderId, clientId) or ``mark_not_sent`` (refused / failed).
3. ``update`` for every status change, permId, fill progress; ``add_fill`` (idempotent by execId),
   ``add_commission``, ``add_error``. Each change appends an event row (``events``).
4. ``reconcile`` with what TWS reports (open orders, completed orders, executions) on start and on
   every reconnect: matching entries are updated; an ``Unconfirmed`` entry TWS does not know after a
   full sync becomes ``NotSent`` ("never reached TWS"). So a kill -9 between intent and
   acknowledgement leaves an ``Unconfirmed`` entry that the next reconcile settles.

All methods are synchronous and fast (local file); call them from one thread (the loop thread).
A lock makes accidental use from another thread safe, not fast.
"""

from __future__ import annotations

import csv
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from ibpanel import paths
from ibpanel.broker.exceptions import BrokerError
from ibpanel.broker.models import Instrument, JournalEntry, OrderRequest, OrderStatus
from ibpanel.numbers import decimal_text

ORDER_REF_PREFIX = "ibp:"  # orderRef = ORDER_REF_PREFIX + journal_id
JOURNAL_FILE = "journal.sqlite3"
SCHEMA_VERSION = 1
# IB keeps orderRef as free text; we stay far below any limit and inside [A-Za-z0-9-:/].
MAX_ORDER_REF = 40
_ID_RE = re.compile(r"^[0-9]{6}-[0-9a-f]{8}$")
_REF_RE = re.compile(r"^ibp:(?P<id>[0-9]{6}-[0-9a-f]{8})(?:/(?P<leg>[a-z]{1,8}))?$")

UNCONFIRMED = OrderStatus.UNCONFIRMED.value
NOT_SENT = OrderStatus.NOT_SENT.value
PENDING_SUBMIT = OrderStatus.PENDING_SUBMIT.value
#: Journal-only status: a working order the login's TWS no longer lists (neither open nor completed, no
#: executions) - e.g. a DAY order that expired while the panel was closed. Revived if TWS reports it later.
GONE = "Unknown"
_DONE = {s.value for s in OrderStatus if s.is_done} | {GONE}
_REVIVABLE = frozenset({NOT_SENT, GONE})  # settled by a guess from silence, so TWS's word overrides them
NEVER_REACHED_TWS = "never reached TWS: not among its open orders, completed orders or executions"
GONE_FROM_TWS = ("no longer known to TWS: not among its open orders, completed orders or executions when "
                 "checked at {when} (expired, cancelled or filled while the panel was away) - check TWS's trade "
                 "log or the account statement")


class JournalError(BrokerError):
    """The journal file cannot be opened (locked, damaged, or from a newer app)."""


def default_journal_path(profile: str = paths.DEFAULT_PROFILE) -> Path:
    """``paths.data_dir(profile)/journal.sqlite3`` (creates the directory)."""
    return paths.data_dir(profile) / JOURNAL_FILE


def practice_journal_path(real_journal: Path) -> Path:
    """Where practice-exchange orders go: beside the real journal, so the record of real orders stays clean."""
    return real_journal.with_name(real_journal.stem + "-practice" + real_journal.suffix)


def new_journal_id(now: datetime | None = None) -> str:
    """``YYMMDD-xxxxxxxx``: sortable by day, 32 random bits, 15 characters."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%y%m%d}-{secrets.token_hex(4)}"


def order_ref(journal_id: str, leg: str | None = None) -> str:
    """The orderRef to send: ``"ibp:<id>"``; bracket children add a leg: ``"ibp:<id>/tp"``, ``"/sl"``."""
    ref = ORDER_REF_PREFIX + journal_id + (f"/{leg}" if leg else "")
    if len(ref) > MAX_ORDER_REF:
        raise ValueError(f"orderRef {ref!r} is too long")
    return ref


def parse_order_ref(ref: str | None) -> tuple[str, str | None] | None:
    """(journal_id, leg or None) for one of our orderRefs, else None (orders from TWS or other programs)."""
    match = _REF_RE.match((ref or "").strip())
    return (match.group("id"), match.group("leg")) if match else None


def is_journal_id(text: str) -> bool:
    """True for a journal id as ``new_journal_id`` makes them ("251203-1a2b3c4d"), ASCII only."""
    return text.isascii() and _ID_RE.fullmatch(text) is not None


def journal_id_from_order_ref(order_ref: str) -> str | None:
    """The journal id in an orderRef we sent, or None when the order is not ours."""
    parsed = parse_order_ref(order_ref)
    return parsed[0] if parsed else None


@dataclass(frozen=True)
class SeenOrder:
    """What TWS says about one order (built by the service from open orders, completed orders and
    executions; ``journal_id`` from its orderRef). ``None`` fields are unknown and change nothing."""

    journal_id: str | None
    order_id: int | None
    perm_id: int | None
    status: str | None
    filled: Decimal | None = None
    avg_fill_price: float | None = None
    client_id: int | None = None
    leg: str | None = None  # "tp" / "sl" for bracket children (from the orderRef)
    message: str | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    journal_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    source TEXT NOT NULL,
    account TEXT,
    symbol TEXT NOT NULL,          -- display form: "AAPL", "BRK.B", "0700.HK"
    ib_symbol TEXT NOT NULL,       -- IB spelling: "BRK B", "700"
    market TEXT NOT NULL,
    exchange TEXT NOT NULL,
    currency TEXT NOT NULL,
    con_id INTEGER,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    order_type TEXT NOT NULL,
    limit_price TEXT,
    stop_price TEXT,
    tif TEXT NOT NULL,
    outside_rth INTEGER NOT NULL,
    take_profit TEXT,
    stop_loss TEXT,
    status TEXT NOT NULL,
    order_id INTEGER,
    client_id INTEGER,
    perm_id INTEGER,
    filled TEXT NOT NULL DEFAULT '0',
    avg_fill_price REAL,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE INDEX IF NOT EXISTS orders_perm ON orders(perm_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    journal_id TEXT NOT NULL,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_journal ON events(journal_id, id);
CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT PRIMARY KEY,
    journal_id TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price REAL NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_journal ON fills(journal_id);
CREATE TABLE IF NOT EXISTS commissions (
    exec_id TEXT PRIMARY KEY,      -- may arrive before or after its fill
    commission REAL NOT NULL,
    currency TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    journal_id TEXT NOT NULL,
    time TEXT NOT NULL,
    code INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS legs (
    journal_id TEXT NOT NULL,
    leg TEXT NOT NULL,
    order_id INTEGER,
    perm_id INTEGER,
    status TEXT,
    filled TEXT,
    PRIMARY KEY (journal_id, leg)
);
"""

_ENTRY_COLUMNS = (
    "journal_id, created_at, source, account, symbol, side, quantity, order_type, limit_price, stop_price, "
    "tif, status, order_id, perm_id, filled, avg_fill_price, message, updated_at"
)

CSV_COLUMNS = (
    "journal_id", "created_at", "updated_at", "source", "account", "symbol", "ib_symbol", "market", "exchange",
    "currency", "con_id", "side", "quantity", "order_type", "limit_price", "stop_price", "tif", "outside_rth",
    "take_profit", "stop_loss", "status", "order_id", "client_id", "perm_id", "filled", "avg_fill_price",
    "fills", "commission", "commission_currency", "message",
)


class OrderJournal:
    """The SQLite order journal of one profile. See the module docstring for the life of an entry."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        self.path, self._conn = self._connect(Path(path))

    def _connect(self, path: Path) -> tuple[Path, sqlite3.Connection]:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we BEGIN/COMMIT ourselves, so the intent commit is explicit.
        conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            self._conn = conn
            self._open()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(
                f"The order journal {path} cannot be opened ({exc}).",
                "Close other copies of IB Panel using this profile; if the file is damaged, move it aside "
                "(nothing at IBKR depends on it) and restart, or use another profile.",
            ) from exc
        return path, conn

    def reopen(self, path: Path) -> None:
        """Continue in another journal file (the broker keeps practice orders apart from real ones).

        Everyone holding this object follows; the old file is closed only once the new one is open.
        """
        path = Path(path)
        with self._lock:
            if path == self.path:
                return
            old_conn = self._conn
            try:
                self.path, self._conn = self._connect(path)
            except JournalError:
                self._conn = old_conn
                raise
            old_conn.close()

    def _open(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"written by a newer IB Panel, schema {version}; update the app")
        with self._tx():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # --- plumbing ---------------------------------------------------------------------------------
    @contextmanager
    def _tx(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable`` makes the commit wait for the disk (synchronous=FULL)."""
        with self._lock:
            if durable:
                self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                if durable:
                    self._conn.execute("PRAGMA synchronous=NORMAL")

    def _event(self, conn: sqlite3.Connection, journal_id: str, kind: str, detail: str, when: str) -> None:
        conn.execute("INSERT INTO events (journal_id, time, kind, detail) VALUES (?, ?, ?, ?)",
                     (journal_id, when, kind, detail))

    def _require(self, conn: sqlite3.Connection, journal_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM orders WHERE journal_id = ?", (journal_id,)).fetchone()
        if row is None:
            raise KeyError(f"no journal entry {journal_id!r}")
        return row

    # --- writing ----------------------------------------------------------------------------------
    def record_intent(self, request: OrderRequest, instrument: Instrument, account: str | None) -> str:
        """Write the order the user asked for and commit it durably. Returns the journal id.

        Call this BEFORE anything is sent; send with ``order_ref(journal_id)`` as the orderRef.
        """
        when = _iso(_now())
        values = (
            when, when, request.source, account or request.account, instrument.display, instrument.symbol,
            instrument.market.value, instrument.exchange, instrument.currency, instrument.con_id,
            getattr(request.side, "value", str(request.side)), decimal_text(request.quantity),
            getattr(request.order_type, "value", str(request.order_type)), decimal_text(request.limit_price),
            decimal_text(request.stop_price), getattr(request.tif, "value", str(request.tif)), int(bool(request.outside_rth)),
            decimal_text(request.take_profit), decimal_text(request.stop_loss), UNCONFIRMED,
        )
        for _attempt in range(5):
            journal_id = new_journal_id()
            try:
                with self._tx(durable=True) as conn:
                    conn.execute(
                        "INSERT INTO orders (journal_id, created_at, updated_at, source, account, symbol, ib_symbol,"
                        " market, exchange, currency, con_id, side, quantity, order_type, limit_price, stop_price,"
                        " tif, outside_rth, take_profit, stop_loss, status)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (journal_id, *values),
                    )
                    self._event(conn, journal_id, "intent", self._describe_request(request, instrument), when)
                return journal_id
            except sqlite3.IntegrityError:
                continue  # 32-bit id collision on the same day: draw again
        raise RuntimeError("could not allocate a journal id")

    @staticmethod
    def _describe_request(request: OrderRequest, instrument: Instrument) -> str:
        side = getattr(request.side, "value", request.side)
        kind = getattr(request.order_type, "value", request.order_type)
        tif = getattr(request.tif, "value", request.tif)
        parts = [f"{side} {decimal_text(request.quantity)} {instrument.display} {kind}"]
        if request.limit_price is not None:
            parts.append(f"limit {decimal_text(request.limit_price)}")
        if request.stop_price is not None:
            parts.append(f"stop {decimal_text(request.stop_price)}")
        parts.append(str(tif))
        if request.outside_rth:
            parts.append("outside RTH")
        if request.take_profit is not None or request.stop_loss is not None:
            parts.append(f"bracket tp {decimal_text(request.take_profit)} sl {decimal_text(request.stop_loss)}")
        parts.append(f"via {request.source}")
        return " ".join(parts)

    def mark_not_sent(self, journal_id: str, reason: str) -> None:
        """Nothing reached TWS (validation refused, not connected, send failed)."""
        when = _iso(_now())
        with self._tx() as conn:
            self._require(conn, journal_id)
            conn.execute("UPDATE orders SET status = ?, message = ?, updated_at = ? WHERE journal_id = ?",
                         (NOT_SENT, reason, when, journal_id))
            self._event(conn, journal_id, "not_sent", reason, when)

    def mark_sent(self, journal_id: str, order_id: int, client_id: int) -> None:
        """placeOrder was called. The entry stays Unconfirmed until TWS acknowledges (``update``)."""
        when = _iso(_now())
        with self._tx() as conn:
            self._require(conn, journal_id)
            conn.execute("UPDATE orders SET order_id = ?, client_id = ?, updated_at = ? WHERE journal_id = ?",
                         (order_id, client_id, when, journal_id))
            self._event(conn, journal_id, "sent", f"orderId {order_id} clientId {client_id}", when)

    def update(
        self,
        journal_id: str,
        *,
        status: str | None = None,
        perm_id: int | None = None,
        order_id: int | None = None,
        filled: Decimal | None = None,
        avg_fill_price: float | None = None,
        message: str | None = None,
    ) -> None:
        """Record what changed (None = unchanged) and append one event row describing it.

        A finished order (Filled, Cancelled, ...) does not go back to a working status; only
        Unconfirmed / NotSent entries can be revived by what TWS reports.
        """
        with self._tx() as conn:
            self._apply(conn, journal_id, status=status, perm_id=perm_id, order_id=order_id, filled=filled,
                        avg_fill_price=avg_fill_price, message=message, kind="status")

    def _apply(self, conn: sqlite3.Connection, journal_id: str, *, kind: str, status: str | None = None,
               perm_id: int | None = None, order_id: int | None = None, client_id: int | None = None,
               filled: Decimal | None = None, avg_fill_price: float | None = None,
               message: str | None = None) -> bool:
        row = self._require(conn, journal_id)
        status = getattr(status, "value", status)
        changes: dict[str, object] = {}
        if status is not None and status != row["status"]:
            finished = row["status"] in _DONE and row["status"] not in _REVIVABLE
            if not (finished and status not in _DONE):
                changes["status"] = status
        if perm_id is not None and perm_id != row["perm_id"]:
            changes["perm_id"] = perm_id
        if order_id is not None and order_id != row["order_id"]:
            changes["order_id"] = order_id
        if client_id is not None and client_id != row["client_id"]:
            changes["client_id"] = client_id
        if filled is not None and decimal_text(filled) != row["filled"]:
            changes["filled"] = decimal_text(filled)
        # 0 is no price: a completed-order echo has none, and a known fill price is never replaced by "unknown"
        if avg_fill_price is not None and avg_fill_price > 0 and avg_fill_price != row["avg_fill_price"]:
            changes["avg_fill_price"] = avg_fill_price
        if message is not None and message != row["message"]:
            changes["message"] = message
        if not changes:
            return False
        when = _iso(_now())
        assignments = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(f"UPDATE orders SET {assignments}, updated_at = ? WHERE journal_id = ?",
                     (*changes.values(), when, journal_id))
        detail = " ".join(f"{k}={v}" for k, v in changes.items())
        self._event(conn, journal_id, kind, detail, when)
        return True

    def add_fill(self, journal_id: str, exec_id: str, quantity: Decimal, price: float, time: datetime) -> None:
        """Record an execution once (a repeated execId is ignored). Raises filled to the fills' total."""
        with self._tx() as conn:
            self._require(conn, journal_id)
            cursor = conn.execute(
                "INSERT OR IGNORE INTO fills (exec_id, journal_id, quantity, price, time) VALUES (?, ?, ?, ?, ?)",
                (exec_id, journal_id, decimal_text(quantity), float(price), _iso(time)),
            )
            if cursor.rowcount == 0:
                return
            when = _iso(_now())
            self._event(conn, journal_id, "fill", f"{decimal_text(quantity)} @ {price} execId {exec_id}", when)
            rows = conn.execute("SELECT quantity, price FROM fills WHERE journal_id = ?", (journal_id,)).fetchall()
            total = sum((Decimal(r["quantity"]) for r in rows), Decimal(0))
            current = Decimal(self._require(conn, journal_id)["filled"])
            if total > current:
                vwap = sum(float(Decimal(r["quantity"])) * r["price"] for r in rows) / float(total)
                conn.execute("UPDATE orders SET filled = ?, avg_fill_price = ?, updated_at = ? WHERE journal_id = ?",
                             (decimal_text(total), vwap, when, journal_id))

    def add_commission(self, exec_id: str, commission: float, currency: str) -> None:
        """Record the commission of an execution (before or after its fill arrives; last report wins)."""
        with self._tx() as conn:
            old = conn.execute("SELECT commission, currency FROM commissions WHERE exec_id = ?", (exec_id,)).fetchone()
            if old is not None and (old["commission"], old["currency"]) == (float(commission), currency):
                return
            conn.execute("INSERT OR REPLACE INTO commissions (exec_id, commission, currency) VALUES (?, ?, ?)",
                         (exec_id, float(commission), currency))
            fill = conn.execute("SELECT journal_id FROM fills WHERE exec_id = ?", (exec_id,)).fetchone()
            if fill is not None:
                self._event(conn, fill["journal_id"], "commission", f"{commission} {currency} execId {exec_id}",
                            _iso(_now()))

    def add_error(self, journal_id: str, code: int, text: str) -> None:
        """Record an IB error / warning about this order; its text becomes the entry's message."""
        when = _iso(_now())
        with self._tx() as conn:
            self._require(conn, journal_id)
            conn.execute("INSERT INTO errors (journal_id, time, code, text) VALUES (?, ?, ?, ?)",
                         (journal_id, when, int(code), text))
            conn.execute("UPDATE orders SET message = ?, updated_at = ? WHERE journal_id = ?",
                         (f"{code}: {text}", when, journal_id))
            self._event(conn, journal_id, "error", f"{code}: {text}", when)

    def update_leg(self, journal_id: str, leg: str, *, order_id: int | None = None, perm_id: int | None = None,
                   status: str | None = None, filled: Decimal | None = None) -> None:
        """Track a bracket child (take-profit "tp" / stop-loss "sl") of an entry; events on change."""
        with self._tx() as conn:
            self._apply_leg(conn, journal_id, leg, order_id, perm_id, getattr(status, "value", status), filled)

    def _apply_leg(self, conn: sqlite3.Connection, journal_id: str, leg: str, order_id: int | None,
                   perm_id: int | None, status: str | None, filled: Decimal | None) -> bool:
        self._require(conn, journal_id)
        old = conn.execute("SELECT * FROM legs WHERE journal_id = ? AND leg = ?", (journal_id, leg)).fetchone()
        new = {
            "order_id": order_id if order_id is not None else (old["order_id"] if old else None),
            "perm_id": perm_id if perm_id is not None else (old["perm_id"] if old else None),
            "status": status if status is not None else (old["status"] if old else None),
            "filled": decimal_text(filled) if filled is not None else (old["filled"] if old else None),
        }
        if old is not None and all(old[k] == v for k, v in new.items()):
            return False
        conn.execute("INSERT OR REPLACE INTO legs (journal_id, leg, order_id, perm_id, status, filled)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (journal_id, leg, *new.values()))
        detail = " ".join(f"{k}={v}" for k, v in new.items() if v is not None)
        self._event(conn, journal_id, f"leg:{leg}", detail, _iso(_now()))
        return True

    # --- reading ----------------------------------------------------------------------------------
    @staticmethod
    def _entry(row: sqlite3.Row) -> JournalEntry:
        return JournalEntry(
            journal_id=row["journal_id"], created_at=_dt(row["created_at"]), source=row["source"],
            account=row["account"], symbol=row["symbol"], side=row["side"], quantity=row["quantity"],
            order_type=row["order_type"], limit_price=row["limit_price"], stop_price=row["stop_price"],
            tif=row["tif"], status=row["status"], order_id=row["order_id"], perm_id=row["perm_id"],
            filled=row["filled"], avg_fill_price=row["avg_fill_price"], message=row["message"],
            updated_at=_dt(row["updated_at"]),
        )

    def _select(self, where: str = "", params: Sequence[object] = (), limit: int | None = None) -> list[JournalEntry]:
        sql = f"SELECT {_ENTRY_COLUMNS} FROM orders {where} ORDER BY created_at DESC, journal_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            return [self._entry(row) for row in self._conn.execute(sql, tuple(params)).fetchall()]

    def entry(self, journal_id: str) -> JournalEntry | None:
        found = self._select("WHERE journal_id = ?", (journal_id,))
        return found[0] if found else None

    def entries(self, limit: int = 1000) -> list[JournalEntry]:
        """Newest first."""
        return self._select(limit=limit)

    def unsettled(self) -> list[JournalEntry]:
        """Entries still Unconfirmed or working (not Filled / Cancelled / Inactive / Rejected / NotSent)."""
        done = sorted(_DONE)
        return self._select(f"WHERE status NOT IN ({', '.join('?' * len(done))})", done)

    def events(self, journal_id: str) -> list[tuple[datetime, str, str]]:
        """(time, kind, detail), oldest first: intent, sent, status, fill, commission, error, leg:tp, ..."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT time, kind, detail FROM events WHERE journal_id = ? ORDER BY id", (journal_id,)
            ).fetchall()
        return [(_dt(r["time"]), r["kind"], r["detail"]) for r in rows]  # type: ignore[misc]

    def fills(self, journal_id: str) -> list[tuple[str, Decimal, float, datetime, float | None, str | None]]:
        """(exec_id, quantity, price, time, commission, commission currency), oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT f.exec_id, f.quantity, f.price, f.time, c.commission, c.currency FROM fills f"
                " LEFT JOIN commissions c ON c.exec_id = f.exec_id WHERE f.journal_id = ? ORDER BY f.time, f.exec_id",
                (journal_id,),
            ).fetchall()
        return [(r[0], Decimal(r[1]), r[2], _dt(r[3]), r[4], r[5]) for r in rows]  # type: ignore[misc]

    def errors(self, journal_id: str) -> list[tuple[datetime, int, str]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT time, code, text FROM errors WHERE journal_id = ? ORDER BY id", (journal_id,)).fetchall()
        return [(_dt(r[0]), r[1], r[2]) for r in rows]  # type: ignore[misc]

    def highest_order_id(self, accounts: Sequence[str]) -> int:
        """The highest orderId any entry (or bracket leg) of these accounts (or without one) was sent with.

        After a reconnect the next orderId is seeded above it: a TWS whose id sequence restarted would
        otherwise hand out ids the journal has already seen, and a new order would pass for an old one.
        """
        chosen = [a for a in accounts if a]
        where = f"(o.account IS NULL OR o.account = ''{''.join(' OR o.account = ?' for _ in chosen)})"
        with self._lock:
            own = self._conn.execute(f"SELECT MAX(o.order_id) FROM orders o WHERE {where}", chosen).fetchone()[0]
            legs = self._conn.execute(
                f"SELECT MAX(l.order_id) FROM legs l JOIN orders o ON o.journal_id = l.journal_id WHERE {where}",
                chosen).fetchone()[0]
        return max(int(own or 0), int(legs or 0))

    def fill_mismatch(self, journal_id: str, con_id: int | None, side: str, leg: str | None) -> str:
        """Why an execution carrying this entry's orderRef is not one of its fills ("" when it is).

        The contract must be the entry's and the side the entry's (the opposite one for a bracket leg).
        """
        with self._lock:
            row = self._conn.execute("SELECT con_id, side FROM orders WHERE journal_id = ?", (journal_id,)).fetchone()
        if row is None:
            return f"no journal entry {journal_id}"
        if row["con_id"] and con_id and int(row["con_id"]) != int(con_id):
            return f"contract {con_id} is not the order's {row['con_id']}"
        bought = side.upper() in ("BOT", "BUY")
        wanted_buy = (row["side"].upper() == "BUY") != bool(leg)  # a bracket leg exits: the other side
        if bought != wanted_buy:
            return f"side {side} does not match the order's {'BUY' if wanted_buy else 'SELL'}"
        return ""

    def find_by_perm_id(self, perm_id: int) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT journal_id FROM orders WHERE perm_id = ?", (perm_id,)).fetchone()
        return row[0] if row else None

    # --- reconcile --------------------------------------------------------------------------------
    def reconcile(self, seen: Sequence[SeenOrder], *, full_sync: bool = True,
                  accounts: Sequence[str] | None = None) -> list[JournalEntry]:
        """Bring the journal in line with what TWS reports; returns the entries that changed.

        Matching is by journal id (from orderRef), else by permId. With ``full_sync`` (TWS's open
        orders, completed orders and executions were all read), an Unconfirmed entry TWS does not
        know becomes NotSent (so does a PendingSubmit one without a permId: TWS never acknowledged it). Working entries TWS does not list are left as they are (TWS keeps
        completed orders and executions only for a while, so silence proves nothing about them) -
        unless ``accounts`` names the login's accounts: then a working entry of one of those accounts
        that TWS lists nowhere becomes ``GONE`` ("Unknown", with the time checked), never "Submitted"
        forever. Entries of other accounts (another TWS login, the practice exchange) are left alone.
        """
        changed: set[str] = set()
        matched: set[str] = set()
        with self._tx() as conn:
            for item in seen:
                journal_id = item.journal_id
                if journal_id is None and item.perm_id is not None:
                    row = conn.execute("SELECT journal_id FROM orders WHERE perm_id = ?", (item.perm_id,)).fetchone()
                    journal_id = row[0] if row else None
                if journal_id is None:
                    continue
                known = conn.execute("SELECT 1 FROM orders WHERE journal_id = ?", (journal_id,)).fetchone()
                if known is None:
                    continue
                matched.add(journal_id)
                if item.leg:
                    if self._apply_leg(conn, journal_id, item.leg, item.order_id, item.perm_id, item.status,
                                       item.filled):
                        changed.add(journal_id)
                    continue
                status = item.status
                if status == UNCONFIRMED:
                    status = None
                if self._apply(conn, journal_id, kind="reconcile", status=status, perm_id=item.perm_id,
                               order_id=item.order_id, client_id=item.client_id, filled=item.filled,
                               avg_fill_price=item.avg_fill_price, message=item.message):
                    changed.add(journal_id)
            if full_sync:
                # PendingSubmit without a permId is ib_async's own status before TWS acknowledged: same as Unconfirmed.
                rows = conn.execute(
                    "SELECT journal_id FROM orders WHERE status = ? OR (status = ? AND COALESCE(perm_id, 0) = 0)",
                    (UNCONFIRMED, PENDING_SUBMIT),
                ).fetchall()
                for (journal_id,) in rows:
                    if journal_id not in matched:
                        self._apply(conn, journal_id, kind="reconcile", status=NOT_SENT, message=NEVER_REACHED_TWS)
                        changed.add(journal_id)
                        matched.add(journal_id)
            managed = [a for a in (accounts or ()) if a]
            if full_sync and managed:
                settled = sorted(_DONE | {UNCONFIRMED})
                rows = conn.execute(
                    f"SELECT journal_id FROM orders WHERE status NOT IN ({', '.join('?' * len(settled))}) "
                    f"AND account IN ({', '.join('?' * len(managed))})", (*settled, *managed),
                ).fetchall()
                message = GONE_FROM_TWS.format(when=_now().strftime("%Y-%m-%d %H:%M UTC"))
                for (journal_id,) in rows:
                    if journal_id not in matched:
                        self._apply(conn, journal_id, kind="reconcile", status=GONE, message=message)
                        changed.add(journal_id)
        return [e for e in (self.entry(j) for j in sorted(changed)) if e is not None]

    # --- export -----------------------------------------------------------------------------------
    def export_csv(self, path: Path) -> int:
        """Write every entry (oldest first) with its fills' count and commission total; returns rows written."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT o.*, (SELECT COUNT(*) FROM fills f WHERE f.journal_id = o.journal_id) AS fills,"
                " (SELECT SUM(c.commission) FROM fills f JOIN commissions c ON c.exec_id = f.exec_id"
                "   WHERE f.journal_id = o.journal_id) AS commission,"
                " (SELECT MIN(c.currency) FROM fills f JOIN commissions c ON c.exec_id = f.exec_id"
                "   WHERE f.journal_id = o.journal_id) AS commission_currency"
                " FROM orders o ORDER BY o.created_at, o.journal_id"
            ).fetchall()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for row in rows:
                writer.writerow([_csv_safe(row[column]) for column in CSV_COLUMNS])
        return len(rows)

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # another process may hold the file; the WAL is replayed on next open anyway
            self._conn.close()

    def __enter__(self) -> OrderJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_safe(value: object) -> object:
    """Keep spreadsheet apps from running text as a formula (IB and user text end up in messages)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
