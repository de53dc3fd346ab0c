"""The practice exchange's TWS socket server: sessions, request dispatch, market data fan-out, persistence.

Over 500 lines because it is the one place that maps every TWS request to the exchange, the accounts and
the market; side requests (side_requests.py), the --state files (state_store.py) and the wire format
(protocol.py) live apart.

Embedding::

    cfg = SimConfig(port=0, accounts=("DU111111", "DU222222"), seed=1)
    server = SimServer(cfg); await server.start(); server.port ... await server.stop()   # on this loop
    with SimThread(cfg) as sim: sim.port; sim.faults.drop_all()                          # own thread

One asyncio loop serves every client. Replies to a client are queued and written once per loop turn, so a
market-data tick that touches a thousand subscriptions makes one ``write`` per client. Nothing a client
sends can stop the server: a malformed message is logged and answered with an error where TWS would,
and the other clients keep being served.

Choices where TWS's behaviour was not pinned down:
- malformed requests get ERR 320 "Error reading request"; a message id no client knows gets 321 (reqId -1);
  every known request is answered (side_requests.py lists how);
- without a market data subscription (fault), type 1/2 requests get 354, type 3/4 get 10167 + ticks 66-76;
- illegal bar sizes / whatToShow and keepUpToDate with an end date get TWS's 321 (ib_async takes 321 as a
  warning and returns at its own timeout, as with TWS); durations the bars cannot serve get 162;
- expensive requests wait in a per-client queue served round-robin (one client cannot starve another);
- replies leave only after the --state journal holding what they acknowledge is fsync'd;
- Read-Only mode answers place/cancel/global cancel/open orders/completed orders with 321, no end markers;
- "refuse for N s" stops listening (clients see connection refused), existing connections stay up;
- 1100 pauses streaming until 1101/1102; 1101 (data lost) also drops every market-data line;
- market-data lines are unlimited unless ``max_market_data_lines`` is set (TWS default 100);
- positions report an empty exchange, and positions closed today with quantity 0, as TWS does;
- a client that reads slower than quotes arrive stops getting ticks until its socket drains, then gets the
  full current quote of every line (TWS conflates similarly).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from ibpanel.sim import protocol as P
from ibpanel.sim import side_requests
from ibpanel.sim.accounts import Accounts
from ibpanel.sim.exchange import (
    AccountTouched,
    Exchange,
    Executed,
    OrderError,
    OrderUpdated,
    SimExecution,
    SimOrder,
    WhatIfResult,
    _execution_to_json,
    _order_to_json,
)
from ibpanel.sim.faults import CONNECTIVITY_TEXTS, Faults, Stats
from ibpanel.sim.market import InstrumentBook, Market, MarketRules, SimInstrument, parse_bar_size
from ibpanel.sim.state_store import STATE_FORMAT, StateStore

log = logging.getLogger("ibpanel.sim")
_LENGTH = struct.Struct(">I")


def _length_text(size: int) -> str:
    """The 4-byte length prefix as latin-1 text (the session queue holds text)."""
    return _LENGTH.pack(size).decode("latin-1")


_LENGTH_TEXT = [_length_text(n) for n in range(4096)]
UTC = timezone.utc
PACING_LIMIT = 50  # client messages per second TWS accepts
PACING_DISCONNECT = 2 * PACING_LIMIT  # a client this far over the limit is cut off, as TWS eventually does
ACCOUNT_PUSH_SECONDS = 1.0  # live account values / portfolio / PnL cadence while prices move
STATE_SAVE_SECONDS = 0.5
MARKET_SAVE_SECONDS = 5.0  # price moves alone are saved less often: no disk churn while nothing trades
# requests that cost real work (contract search, bar generation): queued per client and served in turn;
# their cancels wait behind them, everything else (orders first) is served at once
QUEUED_REQUESTS = frozenset({9, 20, 81, 87, 88, 96})
QUEUED_CANCELS = frozenset({25, 89, 90})  # cancel historical data, histogram, head timestamp
SERVICE_SLICE_SECONDS = 0.02  # one service turn serves every waiting client, for about this long in all
QUEUE_PAUSE_AT = 2000  # a client with this many requests waiting is not read until its queue drains
QUEUE_RESUME_AT = 200

TEXT_CLIENT_ID_IN_USE = "Unable to connect as the client id is already in use. Retry with a unique client id."
TEXT_READ_ONLY = ("Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode.")
TEXT_NO_SECURITY = "No security definition has been found for the request"
TEXT_NOT_SUBSCRIBED = ("Requested market data is not subscribed. Delayed market data is available."
                       "Error&{exchange}/TOP/ALL")
TEXT_DELAYED = "Requested market data is not subscribed. Displaying delayed market data."
TEXT_DUPLICATE_TICKER = "Duplicate ticker id"
TEXT_MAX_TICKERS = "Max number of tickers has been reached"
TEXT_PACING = "Max rate of messages per second has been exceeded:max=50 rcvd={count}"
TEXT_HIST_PACING = "Historical Market Data Service error message:Historical data request pacing violation"
TEXT_HIST_NO_DATA = "Historical Market Data Service error message:HMDS query returned no data: {reason}"
TEXT_DUPLICATE_ORDER_ID = "Duplicate order id"
TEXT_NO_EXCHANGE = "Error validating request.-'bW' : cause - Please enter exchange"
TEXT_NO_CURRENCY = "Error validating request.-'bW' : cause - Please enter currency"
TEXT_SUMMARY_LIMIT = "Error processing request.-'bm' : cause - Maximum number of account summary requests exceeded"
SHORTABLE_SHARES = 10_000_000  # tick 89 of generic tick 236
MAX_ACCOUNT_SUMMARIES = 2  # concurrent reqAccountSummary subscriptions TWS allows per client
LEGAL_BAR_SIZES = ("1 secs", "5 secs", "10 secs", "15 secs", "30 secs", "1 min", "2 mins", "3 mins", "5 mins",
                   "10 mins", "15 mins", "20 mins", "30 mins", "1 hour", "2 hours", "3 hours", "4 hours", "8 hours",
                   "1 day", "1 week", "1 month")
TEXT_BAD_BAR_SIZE = ("Error validating request.-'bP' : cause - Historical data bar size setting is invalid. "
                     "Legal ones are: " + ", ".join(LEGAL_BAR_SIZES))
LEGAL_WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST", "HISTORICAL_VOLATILITY",
                      "OPTION_IMPLIED_VOLATILITY", "REBATE_RATE", "FEE_RATE", "YIELD_BID", "YIELD_ASK",
                      "YIELD_BID_ASK", "YIELD_LAST", "SCHEDULE", "AGGTRADES")
TEXT_BAD_WHAT_TO_SHOW = "Error validating request.-'bP' : cause - Invalid whatToShow: {what}"
TEXT_END_WITH_UPDATES = "Error validating request.-'bP' : cause - End date not supported with live updates"
# generic ticks a stock line accepts (TWS's list for STK); the practice exchange sends 233, 236 (and always 45)
LEGAL_GENERIC_TICKS = {
    100: "Option Volume", 101: "Option Open Interest", 104: "Historical Volatility", 105: "Average Opt Volume",
    106: "impvolat", 107: "climpvlt", 165: "Misc. Stats", 166: "CScreen", 225: "MD Auction", 221: "Mark Price",
    232: "Mark Price", 233: "RTVolume", 236: "inventory", 258: "Fundamental Ratios", 47: "Fundamental Ratios",
    291: "ivclose", 292: "Wide_news", 293: "TradeCount", 294: "TradeRate", 295: "VolumeRate",
    318: "LastRTHTrade", 375: "RTTrdVolume", 411: "rthistvol", 456: "IBDividends", 59: "IBDividends",
    459: "RTCLOSE", 576: "EtfNavBidAsk(navbidask)", 577: "EtfNavLast(navlast)", 578: "EtfNavClose(navclose)",
    584: "Average Opening Vol.", 585: "Average Closing Vol.", 587: "Pl Price Delayed", 595: "Short-Term Volume",
}
TEXT_BAD_GENERIC_TICKS = ("Error validating request.-'bO' : cause - Incorrect generic tick list of {ticks}.  "
                          "Legal ones for (STK) are: "
                          + ",".join(f"{k}({v})" for k, v in sorted(LEGAL_GENERIC_TICKS.items())))
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2104, "Market data farm connection is OK:hkfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)

# tick types: (bid, ask, last, bid size, ask size, last size, high, low, volume, close, open)
LIVE_TICKS = (1, 2, 4, 0, 3, 5, 6, 7, 8, 9, 14)
DELAYED_TICKS = (66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76)


@dataclass
class SimConfig:
    """How to run the practice exchange. ``port=0`` picks a free port (read it back from ``.port``)."""

    host: str = "127.0.0.1"
    port: int = 0
    accounts: tuple[str, ...] = ("DU111111", "DU222222")
    seed: int = 1
    session_mode: str = "always"  # "always" open, or "real" US/HK sessions incl. the HK lunch break
    quote_interval: float = 0.25  # seconds between quote updates of every instrument
    synthetic_symbols: int = 0  # extra generated US instruments SYM0001.. (benchmarks)
    state_file: str | Path | None = None
    log_requests: bool = False
    starting_cash: dict[str, Decimal] | None = None  # None: the data file's default
    market_data_live: bool = True
    readonly: bool = False
    pacing: bool = False
    delay_replies: float = 0.0
    refuse_for: float = 0.0  # refuse connections for this long after start (a TWS that is restarting)
    max_market_data_lines: int = 0  # 0 = unlimited (TWS's default is 100; benchmarks stream 1000)
    account_push_seconds: float = ACCOUNT_PUSH_SECONDS
    replay: object | None = None  # a sim/replay.py ReplaySession: replay a recorded day instead of the random walk
    commission_plan: str = ""  # "fixed" or "tiered" IBKR Pro pricing; "" = commissions.json's commission_plan


class _Subscription:
    """One market-data line of one client: what was last sent, so a tick sends only what changed."""

    __slots__ = ("req_id", "req_text", "con_id", "inst", "delayed", "last", "prefixes", "tick_texts", "rt_volume")

    def __init__(self, req_id: int, inst: SimInstrument, delayed: bool, rt_volume: bool = False):
        self.req_id = req_id
        self.req_text = str(req_id)
        self.con_id = inst.con_id
        self.inst = inst
        self.delayed = delayed
        self.last: list[str | None] = [None] * 11
        # TICK_SIZE / TICK_PRICE / TICK_STRING payload starts (indexed by kind): message id, version 6, reqId
        self.prefixes = (f"2\x006\x00{req_id}\x00", f"1\x006\x00{req_id}\x00", f"46\x006\x00{req_id}\x00")
        # the 11 quote ticks, then the last trade's timestamp (45, delayed 88)
        self.tick_texts = tuple(str(t) for t in (DELAYED_TICKS if delayed else LIVE_TICKS)) + (
            "88" if delayed else "45",)
        self.rt_volume = rt_volume  # generic tick 233: RTVolume strings (tick 48) with every print


@dataclass
class _LiveBar:
    """The newest bar of a keepUpToDate historical request, kept moving with the live price."""

    inst: SimInstrument
    bar_seconds: int
    daily: bool
    format_date: int
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    seen_volume: int


class ClientSession(asyncio.Protocol):
    """One client socket: greeting, version check, START_API, then framed requests."""

    def __init__(self, server: SimServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.phase = "greeting"
        self._greeting = b""
        self._frames = P.FrameBuffer()
        self._out: list[str] = []
        self._flush_scheduled = False
        self.client_id: int | None = None
        self.peer = "?"
        self.closed = False
        self.paused = False
        self.market_data_type = 1
        self.subs: dict[int, _Subscription] = {}
        self.account_updates: str | None = None  # account of reqAccountUpdates(True, acct)
        self.multi_subs: dict[int, str] = {}  # reqId -> account ("" = all)
        self.positions_subscribed = False
        self.pnl_subs: dict[int, str] = {}
        self.pnl_single_subs: dict[int, tuple[str, int]] = {}
        self.summary_subs: dict[int, tuple[str, ...]] = {}
        self.message_times: deque[float] = deque()
        self.hist_requests: deque[tuple[float, tuple]] = deque()
        self.live_bars: dict[int, _LiveBar] = {}
        self.display_groups: dict[int, str] = {}
        self.real_time_bars: dict[int, side_requests.RealTimeBar] = {}
        self.tick_by_tick: dict[int, side_requests.TickByTickLine] = {}
        self.queue: deque[bytes] = deque()  # requests waiting for their turn (see SimServer.enqueue)
        self.reading_paused = False
        self.version = P.SERVER_VERSION  # negotiated in the handshake; older clients get older layouts

    # ----- asyncio.Protocol -------------------------------------------------------------------------------
    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.server.sessions.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except Exception:  # a bug on one connection must not take the server down
            log.exception("client %s: unexpected error; closing this connection", self.describe())
            self.close()

    def pause_writing(self) -> None:
        # the client reads slower than quotes arrive: stop streaming to it (TWS conflates the same way)
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.server.refresh_quotes(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.queue.clear()
        self.server.forget(self)

    # ----- output -----------------------------------------------------------------------------------------
    def send(self, message: bytes) -> None:
        """Queue one framed message; the queue is written once per loop turn (or after the reply delay)."""
        if self.closed:
            return
        if self.version < P.SERVER_VERSION:
            message = P.for_version(message, self.version)
        # queued as latin-1 text so the streaming hot path can build messages with plain str concatenation
        self._out.append(message.decode("latin-1"))
        self.schedule_flush()

    def pending(self) -> list[str]:
        """Framed messages not yet written, as latin-1 text (append, then call ``schedule_flush``)."""
        return self._out

    def schedule_flush(self) -> None:
        if not self._flush_scheduled and self._out and not self.closed:
            self._flush_scheduled = True
            delay = self.server.faults.reply_delay
            if delay > 0:
                self.server.loop.call_later(delay, self.flush)
            else:
                self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self.server.faults.frozen:
            return  # a frozen TWS writes nothing; the queue goes out when it thaws
        if self._out and not self.closed and self.transport is not None:
            self.server.sync_state()  # what a reply acknowledges is on disk before the reply leaves
            data = "".join(self._out).encode("latin-1")
            self._out.clear()
            self.transport.write(data)

    def close(self, flush: bool = True) -> None:
        """Close after writing what is queued (``flush``) or at once."""
        if self.closed:
            return
        if flush:
            self.flush()
        self.closed = True
        if self.transport is not None:
            if flush:
                self.transport.close()
            else:
                self.transport.abort()
        self.server.forget(self)

    def describe(self) -> str:
        return f"{self.peer} clientId={self.client_id}" if self.client_id is not None else self.peer

    # ----- input ------------------------------------------------------------------------------------------
    def _receive(self, data: bytes) -> None:
        if self.closed:
            return
        if self.phase == "greeting":
            self._greeting += data
            if len(self._greeting) < len(P.GREETING):
                if not P.GREETING.startswith(self._greeting):
                    self._reject_greeting()
                return
            if not self._greeting.startswith(P.GREETING):
                self._reject_greeting()
                return
            data = self._greeting[len(P.GREETING):]
            self._greeting = b""
            self.phase = "version"
        try:
            payloads = self._frames.feed(data)
        except P.ProtocolError as exc:
            log.warning("client %s: %s; closing", self.describe(), exc)
            self.close()
            return
        for payload in payloads:
            if self.closed:
                return
            if self.phase == "version":
                self._on_version(payload)
            elif (msg_id := _message_id(payload)) in QUEUED_REQUESTS or (self.queue and msg_id in QUEUED_CANCELS):
                # expensive requests keep their order among themselves; orders and quotes do not wait for them
                self.server.enqueue(self, payload)
            else:
                self.server.handle_message(self, payload)

    def _reject_greeting(self) -> None:
        log.warning("client %s did not start with the TWS API greeting 'API\\0'; closing", self.peer)
        self.close()

    def _on_version(self, payload: bytes) -> None:
        text = payload.decode("ascii", "replace").rstrip("\0")
        try:
            low, high, _options = P.parse_version_range(text)
        except P.ProtocolError as exc:
            log.warning("client %s: %s; closing", self.peer, exc)
            self.close()
            return
        version = P.negotiate_version(low, high)
        if version is None:
            log.warning("client %s asks for API versions %d..%d; the practice exchange speaks %d..%d; closing "
                        "(use a client that supports one of those)", self.peer, low, high, P.MIN_SERVER_VERSION,
                        P.SERVER_VERSION)
            self.close()
            return
        if version < P.SERVER_VERSION:
            log.info("client %s speaks API versions up to %d: answering at version %d", self.peer, high, version)
        self.version = version
        self.phase = "started"
        now = datetime.now(UTC)
        # ibapi reads only the first message of this buffer, so the hello goes out alone
        self.send(P.server_hello(now.strftime("%Y%m%d %H:%M:%S") + " UTC", version))


class SimServer:
    """The practice exchange on the current asyncio loop. ``faults``, ``stats`` and ``port`` are public."""

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        cfg = self.config
        if not cfg.accounts:
            raise ValueError("the practice exchange needs at least one account id, e.g. DU111111")
        self.book = InstrumentBook.load(synthetic=cfg.synthetic_symbols)
        self.rules = MarketRules.load()
        replay = cfg.replay  # replay hook: the recording's instruments, clock and prices (sim/replay.py)
        if replay is not None:
            self.book, self.rules = replay.book_and_rules(self.rules)
        self.market = Market(self.book, self.rules, seed=cfg.seed, session_mode=cfg.session_mode,
                             clock=replay.clock.now if replay is not None else None)
        self.accounts = Accounts(list(cfg.accounts), self.market, starting_cash=cfg.starting_cash,
                                 commission_plan=cfg.commission_plan or None)
        self.exchange = Exchange(self.market, self.accounts, self._on_venue_event)
        self.stats = Stats()
        self.faults = Faults(self)
        self._held: list[tuple[ClientSession, bytes]] = []  # requests received while frozen
        self.quote_interval = float(cfg.quote_interval)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread_id: int | None = None
        self.sessions: set[ClientSession] = set()
        self.by_client_id: dict[int, ClientSession] = {}
        self._subs_by_con: dict[int, dict[tuple[ClientSession, int], _Subscription]] = {}
        self._quotes = _QuoteFeed(self.market)
        self._quote_states: dict[int, tuple] = {}  # con_id -> state last streamed to its subscribers
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._port = cfg.port
        self._refuse_handle: asyncio.TimerHandle | None = None
        self._connectivity_lost = False
        self._dirty_accounts: set[str] = set()
        self._account_flush_scheduled = False
        self._sent_positions: dict[str, set[int]] = {}
        self._sent_portfolio: dict[tuple[int, str], set[int]] = {}
        self._state_dirty = False  # orders, fills or accounts changed: save within STATE_SAVE_SECONDS
        self._prices_dirty = False  # only prices moved: save every MARKET_SAVE_SECONDS
        self._last_state_save = 0.0
        self._last_account_push = 0.0
        self._records: dict[int, P.ContractRecord] = {}
        self.fa_data: dict[int, str] = {}
        self._vwap: dict[int, tuple[Decimal, int, int]] = {}  # con_id -> (notional, volume, day volume seen)
        self._highest_order_id: dict[int, int] = {}
        self._waiting: deque[ClientSession] = deque()  # clients with queued requests, in service order
        self._service_scheduled = False  # per clientId: a new order id must be above it (103)  # replaceFA's XML by FA data type, served back by requestFA
        self._state_path = Path(cfg.state_file) if cfg.state_file else None
        self._store: StateStore | None = None
        if self._state_path is not None:
            self._store = StateStore(self._state_path)
            self._load_state()
        if replay is not None:  # after the state: the recording's prices win over saved ones
            replay.attach(self.market, lambda: self.loop.call_soon(self.tick) if self.loop else None)

    # ----- lifecycle --------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        """Listen (port 0 -> an ephemeral port) and start the quote clock."""
        self.loop = asyncio.get_running_loop()
        self.loop_thread_id = threading.get_ident()
        await self._listen()
        log.info("practice exchange listening on %s:%d (accounts %s, seed %d, session %s)", self.config.host,
                 self._port, ",".join(self.config.accounts), self.config.seed, self.config.session_mode)
        self._tasks.append(asyncio.create_task(self._quote_clock(), name="sim-quotes"))
        if self._store is not None:
            if not self._state_path.exists():
                self.save_state()  # a readable state file from the first moment; the journal holds what follows
            self._tasks.append(asyncio.create_task(self._state_writer(), name="sim-state"))
        if self.config.refuse_for > 0:
            self.refuse_connections(self.config.refuse_for)

    async def _listen(self) -> None:
        self._server = await self.loop.create_server(
            lambda: ClientSession(self), self.config.host, self._port, reuse_address=True)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every client, stop listening, save the state file one last time."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self._refuse_handle is not None:
            self._refuse_handle.cancel()
            self._refuse_handle = None
        for session in list(self.sessions):
            session.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._store is not None:
            self.save_state()
            self._store.close()

    # ----- faults -----------------------------------------------------------------------------------------
    def drop_all_clients(self) -> None:
        log.info("fault: dropping %d client connection(s)", len(self.sessions))
        for session in list(self.sessions):
            session.close(flush=False)

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (connections are refused), then listen on the same port again."""
        log.info("fault: refusing connections for %.1f s", seconds)
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._refuse_handle is not None:
            self._refuse_handle.cancel()

        def relisten() -> None:
            self._refuse_handle = None
            task = self.loop.create_task(self._listen())
            self._tasks.append(task)

        self._refuse_handle = self.loop.call_later(max(seconds, 0.0), relisten)

    def broadcast_connectivity(self, code: int) -> None:
        self._connectivity_lost = code == 1100
        if code == 1101:  # data lost: TWS drops every market-data line; clients must subscribe again
            for session in self.sessions:
                for sub in list(session.subs.values()):
                    self._drop_subscription(session, sub)
        message = P.error_message(-1, code, CONNECTIVITY_TEXTS[code])
        for session in self.started_sessions():
            session.send(message)

    def broadcast_notice(self, code: int, text: str) -> None:
        """Send one TWS notice (ERR_MSG, reqId -1) to every client, e.g. 2110 "Connectivity between TWS and
        server is broken" or 2104 "Market data farm connection is OK" (loop thread only; tests)."""
        message = P.error_message(-1, int(code), str(text))
        for session in self.started_sessions():
            session.send(message)

    def set_quote_interval(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("quote interval must be > 0 seconds")
        self.quote_interval = float(seconds)

    def started_sessions(self) -> list[ClientSession]:
        return [s for s in self.sessions if s.client_id is not None and not s.closed]

    def forget(self, session: ClientSession) -> None:
        self.sessions.discard(session)
        if session.client_id is not None and self.by_client_id.get(session.client_id) is session:
            del self.by_client_id[session.client_id]
        for sub in list(session.subs.values()):
            self._drop_subscription(session, sub)
        for key in [k for k in self._sent_portfolio if k[0] == id(session)]:
            del self._sent_portfolio[key]

    # ----- fairness ---------------------------------------------------------------------------------------
    def enqueue(self, session: ClientSession, payload: bytes) -> None:
        """Queue an expensive request; queues are served round-robin, one request per client per pass, so a
        flood from one client delays another client's request by a few requests, not by the whole flood."""
        session.queue.append(payload)
        if session not in self._waiting:
            self._waiting.append(session)
        if len(session.queue) >= QUEUE_PAUSE_AT and not session.reading_paused and session.transport:
            session.reading_paused = True
            session.transport.pause_reading()
        if not self._service_scheduled:
            self._service_scheduled = True
            self.loop.call_soon(self._serve_queues)

    def _serve_queues(self) -> None:
        """One service turn: a request from each waiting client in turn, until the slice is used up; then the
        loop runs (other sockets are read, replies are written) before the next turn."""
        self._service_scheduled = False
        deadline = time.monotonic() + SERVICE_SLICE_SECONDS
        waiting = self._waiting
        while waiting:
            session = waiting.popleft()
            if session.closed or not session.queue:
                continue
            self.handle_message(session, session.queue.popleft())
            if session.queue:
                waiting.append(session)
            if session.reading_paused and len(session.queue) <= QUEUE_RESUME_AT and not session.closed:
                session.reading_paused = False
                session.transport.resume_reading()
            if time.monotonic() >= deadline:
                break
        if waiting:
            self._service_scheduled = True
            self.loop.call_soon(self._serve_queues)

    # ----- dispatch ---------------------------------------------------------------------------------------
    def set_frozen(self, frozen: bool) -> None:
        log.info("fault: %s", "frozen (nothing answered, sockets open)" if frozen else "thawed")
        self.faults.frozen = frozen
        if frozen:
            return
        held, self._held = self._held, []
        for session, payload in held:
            if not session.closed:
                self.handle_message(session, payload)
        for session in list(self.sessions):
            session.schedule_flush()

    def _serve_late(self, session: ClientSession, payload: bytes) -> None:
        if not session.closed:
            self.handle_message(session, payload, late=True)

    def handle_message(self, session: ClientSession, payload: bytes, *, late: bool = False) -> None:
        if self.faults.frozen:
            self._held.append((session, payload))  # unread, as by a hung TWS
            return
        if not late and self.faults.market_data_delay > 0 and payload.startswith(b"1\0"):  # REQ_MKT_DATA
            self.loop.call_later(self.faults.market_data_delay, self._serve_late, session, payload)
            return
        fields = P.split_fields(payload)
        try:
            request = P.decode_request(fields)
        except P.ProtocolError as exc:
            self.stats.add("MALFORMED")
            log.warning("client %s sent a malformed message (%s); ignored", session.describe(), exc)
            session.send(P.error_message(-1, 320, f"Error reading request: {exc}"))
            return
        self.stats.add(request.name)
        if self.config.log_requests:
            log.info("client %s -> %s %s", session.describe(), request.name, ",".join(fields[1:])[:300])
        if self.faults.pacing and not self._within_pacing(session):
            return
        if session.client_id is None and request.msg_id != 71:
            log.warning("client %s sent %s before START_API; ignored", session.describe(), request.name)
            return
        handler = self._handlers.get(request.msg_id)
        if handler is None:
            log.warning("client %s: %s is not supported by the practice exchange", session.describe(),
                        request.name)
            # every message id a client knows has a handler; an unknown id has no readable reqId
            session.send(P.error_message(-1, 321, f"Error validating request: {request.name} is not "
                                                  "supported by the practice exchange"))
            return
        try:
            handler(self, session, request.args)
        except P.ProtocolError as exc:
            log.warning("client %s: %s", session.describe(), exc)
            session.send(P.error_message(-1, 320, f"Error reading request: {exc}"))
        except Exception:  # log and keep serving: one bad request must not stop the exchange
            log.exception("client %s: error while handling %s", session.describe(), request.name)
            session.send(P.error_message(-1, 320, f"Error processing request {request.name}"))

    def _within_pacing(self, session: ClientSession) -> bool:
        now = time.monotonic()
        times = session.message_times
        times.append(now)
        while times and now - times[0] > 1.0:
            times.popleft()
        count = len(times)
        if count <= PACING_LIMIT:
            return True
        session.send(P.error_message(-1, 100, TEXT_PACING.format(count=count)))
        if count > PACING_DISCONNECT:
            log.warning("client %s sent %d messages in one second; disconnecting", session.describe(), count)
            session.close()
        return False

    # ----- handshake --------------------------------------------------------------------------------------
    def _on_start_api(self, session: ClientSession, req: P.StartApi) -> None:
        if session.client_id is not None:
            return
        other = self.by_client_id.get(req.client_id)
        if other is not None and not other.closed:
            log.warning("client %s asked for clientId %d, which is in use; error 326 and close", session.peer,
                        req.client_id)
            session.send(P.error_message(-1, 326, TEXT_CLIENT_ID_IN_USE))
            session.close()
            return
        session.client_id = req.client_id
        self.by_client_id[req.client_id] = session
        log.info("client %s connected", session.describe())
        session.send(P.managed_accounts(self.config.accounts))
        session.send(P.next_valid_id(self.exchange.next_order_id_hint()))
        for code, text in FARM_NOTICES:
            session.send(P.error_message(-1, code, text))

    # ----- contracts --------------------------------------------------------------------------------------
    def _record(self, inst: SimInstrument) -> P.ContractRecord:
        rec = self._records.get(inst.con_id)
        if rec is None:
            rec = P.ContractRecord(
                con_id=inst.con_id, symbol=inst.symbol, sec_type=inst.sec_type, exchange=inst.exchange,
                primary_exchange=inst.primary_exchange, currency=inst.currency, local_symbol=inst.local_symbol,
                trading_class=inst.trading_class, market_name=inst.market_name or inst.trading_class,
                min_tick=inst.min_tick, order_types=inst.order_types, valid_exchanges=inst.valid_exchanges,
                long_name=inst.long_name, industry=inst.industry, category=inst.category,
                subcategory=inst.subcategory, time_zone=inst.time_zone, market_rule_ids=inst.market_rule_ids,
                stock_type=inst.stock_type, min_size=inst.min_size, size_increment=inst.size_increment,
                suggested_size_increment=inst.size_increment,
            )
            self._records[inst.con_id] = rec
        return rec

    def find_instruments(self, spec: P.ContractSpec) -> list[SimInstrument]:
        """IB's matching over the book; SMART with HKD (or an HK code) also finds SEHK stocks."""
        sec_type = spec.sec_type.upper()
        if sec_type and sec_type != "STK":
            return []
        symbol = spec.symbol or spec.local_symbol
        if not symbol and not spec.con_id:
            return []
        found = self.book.find(symbol, sec_type="STK", exchange=spec.exchange, currency=spec.currency,
                               primary_exchange=spec.primary_exchange, con_id=spec.con_id)
        if not found and spec.exchange.upper() == "SMART":
            found = [i for i in self.book.find(symbol, sec_type="STK", currency=spec.currency,
                                               primary_exchange=spec.primary_exchange, con_id=spec.con_id)
                     if i.exchange == "SEHK"]
        return found

    def resolve(self, spec: P.ContractSpec) -> SimInstrument | None:
        found = self.find_instruments(spec)
        return found[0] if len(found) == 1 else None

    def _on_contract_details(self, session: ClientSession, req: P.ContractDetailsRequest) -> None:
        found = self.find_instruments(req.contract)
        if not found:
            session.send(P.error_message(req.req_id, 200, TEXT_NO_SECURITY))
            return
        for inst in found:
            rec = self._record(inst)
            trading, liquid = self.market.trading_hours(inst.con_id)
            exchange = req.contract.exchange.upper() or inst.exchange
            if exchange != inst.exchange and exchange not in inst.valid_exchanges.split(","):
                exchange = inst.exchange
            rec = _replace_record(rec, exchange=exchange, trading_hours=trading, liquid_hours=liquid)
            session.send(P.contract_data(req.req_id, rec))
        session.send(P.contract_data_end(req.req_id))

    def _on_market_rule(self, session: ClientSession, args: tuple) -> None:
        (rule_id,) = args
        try:
            rows = self.rules.rows(rule_id)
        except KeyError:
            session.send(P.error_message(-1, 321, f"Error validating request: market rule {rule_id} is unknown"))
            return
        session.send(P.market_rule(rule_id, rows))

    def _on_current_time(self, session: ClientSession, args: tuple) -> None:
        session.send(P.current_time(int(self.market.clock().timestamp())))  # the replay clock when replaying

    # ----- market data ------------------------------------------------------------------------------------
    def _on_market_data_type(self, session: ClientSession, args: tuple) -> None:
        (data_type,) = args
        if data_type not in (1, 2, 3, 4):
            session.send(P.error_message(-1, 321, f"Error validating request: market data type {data_type} "
                                                  "is not 1, 2, 3 or 4"))
            return
        session.market_data_type = data_type

    def _on_market_data(self, session: ClientSession, req: P.MktDataRequest) -> None:
        inst = self.resolve(req.contract)
        if inst is None:
            session.send(P.error_message(req.req_id, 200, TEXT_NO_SECURITY))
            return
        generic = self._generic_ticks(req.generic_ticks)
        if generic is None:
            session.send(P.error_message(req.req_id, 321, TEXT_BAD_GENERIC_TICKS.format(ticks=req.generic_ticks)))
            return
        if not req.snapshot and req.req_id in session.subs:
            session.send(P.error_message(req.req_id, 322, TEXT_DUPLICATE_TICKER))
            return
        limit = self.config.max_market_data_lines
        if limit and not req.snapshot and len(session.subs) >= limit:
            session.send(P.error_message(req.req_id, 101, TEXT_MAX_TICKERS))
            return
        delayed = False
        if not self.faults.market_data_live:
            if session.market_data_type in (1, 2):
                session.send(P.error_message(req.req_id, 354, TEXT_NOT_SUBSCRIBED.format(
                    exchange=inst.primary_exchange)))
                return
            delayed = True
            session.send(P.error_message(req.req_id, 10167, TEXT_DELAYED))
        data_type = session.market_data_type if delayed else 1
        if not delayed and session.market_data_type in (2, 4) and not self._trading(inst):
            data_type = 2  # frozen: the last values of a closed market
        sub = _Subscription(req.req_id, inst, delayed, rt_volume=233 in generic and not delayed)
        session.send(P.market_data_type(req.req_id, data_type))
        session.send(P.tick_req_params(req.req_id, inst.min_tick, "9c0001" if inst.exchange == "SMART" else
                                       inst.exchange, 3))
        if 236 in generic and not delayed:  # shortable: plenty to borrow in the practice exchange
            session.send(P.tick_generic(req.req_id, 46, "3.0"))
            session.send(P.tick_size(req.req_id, 89, SHORTABLE_SHARES))
        self._send_quote(session, sub, self._quotes.texts(inst.con_id), full=True)
        if req.snapshot or req.regulatory_snapshot:
            session.send(P.tick_snapshot_end(req.req_id))
            return
        session.subs[req.req_id] = sub
        self._subs_by_con.setdefault(inst.con_id, {})[(session, req.req_id)] = sub
        self._quote_states.setdefault(inst.con_id, self._quotes.state(inst.con_id)[0])

    @staticmethod
    def _generic_ticks(text: str) -> set[int] | None:
        """The generic tick list "233,236" -> {233, 236}; None when an entry is not a legal stock tick."""
        out = set()
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or int(part) not in LEGAL_GENERIC_TICKS:
                return None
            out.add(int(part))
        return out

    def _rt_volume_text(self, con_id: int) -> str:
        """RTVolume (tick 48): "price;size;time ms;total volume;VWAP;single trade" of the last print; the VWAP
        is of the prints this exchange has seen since it started."""
        top = self.market.top(con_id)
        notional, volume, seen = self._vwap.get(con_id, (Decimal(0), 0, 0))
        if top.volume != seen and top.last_size > 0:
            notional += top.last * top.last_size
            volume += top.last_size
            self._vwap[con_id] = (notional, volume, top.volume)
        vwap = (notional / volume).quantize(Decimal("0.00000001")) if volume else top.last
        return (f"{_price_text(top.last)};{top.last_size};{int(self.market.clock().timestamp() * 1000)};{top.volume};"
                f"{_num(vwap)};true")

    def _trading(self, inst: SimInstrument) -> bool:
        return self.market.session_state(inst.con_id) in ("open", "pre", "post")

    def _on_cancel_market_data(self, session: ClientSession, args: tuple) -> None:
        (req_id,) = args
        sub = session.subs.get(req_id)
        if sub is None:
            session.send(P.error_message(req_id, 300, f"Can't find EId with tickerId:{req_id}"))
            return
        self._drop_subscription(session, sub)

    def refresh_quotes(self, session: ClientSession) -> None:
        """Every line of ``session`` gets the full current quote (after a pause in streaming to it)."""
        for sub in session.subs.values():
            self._send_quote(session, sub, self._quotes.texts(sub.con_id), full=True)

    def _drop_subscription(self, session: ClientSession, sub: _Subscription) -> None:
        session.subs.pop(sub.req_id, None)
        by_con = self._subs_by_con.get(sub.con_id)
        if by_con is not None:
            by_con.pop((session, sub.req_id), None)
            if not by_con:
                del self._subs_by_con[sub.con_id]
                self._quote_states.pop(sub.con_id, None)

    def _send_quote(self, session: ClientSession, sub: _Subscription, values: list[str], full: bool = False) -> None:
        """Send the ticks of ``values`` (11 texts, LIVE_TICKS order) that differ from what this line last got."""
        out = session.pending()
        ticks = DELAYED_TICKS if sub.delayed else LIVE_TICKS
        last = sub.last
        req = sub.req_text
        new_print = values[8] != last[8]  # volume moved: a trade, even at an unchanged price
        # bid/ask/last travel as TICK_PRICE with their size; a size-only change as TICK_SIZE
        for i, size_i, mask in ((0, 3, "1"), (1, 4, "1"), (2, 5, "0")):
            price, size = values[i], values[size_i]
            if full or price != last[i] or (i == 2 and new_print):
                out.append(_tick_price_text(req, ticks[i], price, size, mask))
                last[i] = price
                last[size_i] = size
            elif size != last[size_i]:
                out.append(_tick_size_text(req, ticks[size_i], size))
                last[size_i] = size
        for i in (6, 7, 9, 10):  # high, low, close, open
            if full or values[i] != last[i]:
                out.append(_tick_price_text(req, ticks[i], values[i], "0", "0"))
                last[i] = values[i]
        if full or new_print:
            out.append(_tick_size_text(req, ticks[8], values[8]))
            last[8] = values[8]
            out.append(_tick_string_text(req, sub.tick_texts[11], str(int(self.market.clock().timestamp()))))
            if sub.rt_volume and new_print and not full:
                out.append(_tick_string_text(req, "48", self._rt_volume_text(sub.con_id)))
        session.schedule_flush()

    async def _quote_clock(self) -> None:
        # fixed rate: a step every quote_interval however long the step itself takes; when steps take longer
        # than the interval the clock runs flat out but still yields so requests are served between steps
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += self.quote_interval
            now = loop.time()
            if deadline < now - self.quote_interval:
                deadline = now  # far behind (a stall): do not try to catch up with a burst of steps
            await asyncio.sleep(max(deadline - now, 0.0))
            try:
                self.tick()
            except Exception:  # the clock must keep running whatever one step does
                log.exception("quote clock step failed")

    def tick(self) -> None:
        """One market step: move prices, let the exchange match, stream quotes, push account updates."""
        if self._connectivity_lost:
            return
        changed = self.market.advance()
        if changed:
            self._prices_dirty = True
            self.exchange.on_market(changed)
            self._stream_quotes(changed)
        self.exchange.on_clock()  # GTD expiry and auctions happen at their time, moving market or not
        now = time.monotonic()
        if now - self._last_account_push >= self.config.account_push_seconds:
            self._last_account_push = now
            self._push_live_accounts()
            self._push_live_bars()
        side_requests.push_streams(self, [s for s in self.started_sessions() if s.tick_by_tick or s.real_time_bars])

    def _stream_quotes(self, changed: list[int]) -> None:
        """Send every subscriber what moved since the last step.

        The hot path of the exchange (1000 symbols x several updates/s): message bodies are built once per
        instrument as text, then prefixed per line with its reqId and length; one write per client per step.
        """
        subs_by_con = self._subs_by_con
        states = self._quote_states
        feed = self._quotes
        state_of = feed.state
        price_text = feed.price_text
        length = _LENGTH_TEXT
        touched: set[ClientSession] = set()
        # tick 45: the time of the prints of this step (the replay clock when replaying)
        last_time = (2, 11, f"\x00{int(self.market.clock().timestamp())}\x00")
        for con_id in changed:
            subs = subs_by_con.get(con_id)
            if not subs:
                continue
            new, grid = state_of(con_id)
            old = states.get(con_id)
            states[con_id] = new
            if old is None or old == new:
                continue
            # (is_price, tick index, text after the tick type) for every field that moved
            moved = []
            new_print = old[8] != new[8]
            if old[0] != new[0]:
                moved.append((True, 0, f"\x00{price_text(new[0], grid)}\x00{new[3]}\x001\x00"))
            elif old[3] != new[3]:
                moved.append((False, 3, f"\x00{new[3]}\x00"))
            if old[1] != new[1]:
                moved.append((True, 1, f"\x00{price_text(new[1], grid)}\x00{new[4]}\x001\x00"))
            elif old[4] != new[4]:
                moved.append((False, 4, f"\x00{new[4]}\x00"))
            if new_print or old[2] != new[2]:
                moved.append((True, 2, f"\x00{price_text(new[2], grid)}\x00{new[5]}\x000\x00"))
            elif old[5] != new[5]:
                moved.append((False, 5, f"\x00{new[5]}\x00"))
            if old[6:8] != new[6:8] or old[9:] != new[9:]:
                for i in (6, 7, 9, 10):
                    if old[i] != new[i]:
                        moved.append((True, i, f"\x00{price_text(new[i], grid)}\x000\x000\x00"))
            rt_volume = None
            if new_print:
                moved.append((False, 8, f"\x00{new[8]}\x00"))
                moved.append(last_time)
            for (session, _req), sub in subs.items():
                if session.closed or session.paused:
                    continue
                prefixes = sub.prefixes
                ticks = sub.tick_texts
                append = session._out.append
                for is_price, i, rest in moved:
                    body = prefixes[is_price] + ticks[i] + rest
                    size = len(body)
                    append((length[size] if size < 4096 else _length_text(size)) + body)
                if new_print and sub.rt_volume:
                    if rt_volume is None:
                        rt_volume = f"48\x00{self._rt_volume_text(con_id)}\x00"
                    body = prefixes[2] + rt_volume
                    append(_length_text(len(body)) + body)
                touched.add(session)
        for session in touched:
            session.schedule_flush()

    # ----- historical data --------------------------------------------------------------------------------
    def _on_historical_data(self, session: ClientSession, req: P.HistoricalDataRequest) -> None:
        invalid = _historical_request_problem(req)
        if invalid is not None:
            session.send(P.error_message(req.req_id, 321, invalid))
            return
        inst = self.resolve(req.contract)
        if inst is None:
            session.send(P.error_message(req.req_id, 200, TEXT_NO_SECURITY))
            return
        if self.faults.pacing and self._historical_pacing_violated(session, req, inst):
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_PACING))
            return
        try:
            end = _parse_end_time(req.end, inst.time_zone)
        except ValueError as exc:
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_NO_DATA.format(reason=exc)))
            return
        try:
            bars = self.market.bars(inst.con_id, end, req.duration, req.bar_size, req.what_to_show or "TRADES",
                                    use_rth=req.use_rth)
        except ValueError as exc:
            # TWS answers some of these with 321, which ib_async treats as a warning and then waits forever;
            # 162 ends the request in every client
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_NO_DATA.format(reason=exc)))
            return
        if not bars:
            session.send(P.error_message(req.req_id, 162, TEXT_HIST_NO_DATA.format(reason="no bars in range")))
            return
        zone = ZoneInfo(inst.time_zone)
        daily = _bar_is_daily(req.bar_size)
        rows = []
        for when, o, h, low, c, volume, wap, count in bars:
            if daily:
                label = when.astimezone(zone).strftime("%Y%m%d")
            elif req.format_date == 2:
                label = str(int(when.timestamp()))
            else:
                label = when.astimezone(zone).strftime("%Y%m%d %H:%M:%S") + " " + inst.time_zone
            rows.append((label, o, h, low, c, volume, wap, count))
        real_end = end or self.market.clock()
        start = bars[0][0]
        fmt = "%Y%m%d %H:%M:%S"
        session.send(P.historical_data(req.req_id, start.astimezone(zone).strftime(fmt) + " " + inst.time_zone,
                                       real_end.astimezone(zone).strftime(fmt) + " " + inst.time_zone, rows))
        if req.keep_up_to_date and end is None:
            when, o, h, low, c, volume, _wap, _count = bars[-1]
            top = self.market.top(inst.con_id)
            session.live_bars[req.req_id] = _LiveBar(
                inst=inst, bar_seconds=parse_bar_size(req.bar_size), daily=daily, format_date=req.format_date,
                start=when, open=o, high=h, low=low, close=c, volume=max(volume, 0), seen_volume=top.volume)

    def _historical_pacing_violated(self, session: ClientSession, req: P.HistoricalDataRequest,
                                    inst: SimInstrument) -> bool:
        now = time.monotonic()
        key = (inst.con_id, req.end, req.duration, req.bar_size, req.what_to_show)
        history = session.hist_requests
        while history and now - history[0][0] > 600:
            history.popleft()
        identical = any(k == key and now - t < 15 for t, k in history)
        same_contract = sum(1 for t, k in history if k[0] == inst.con_id and now - t < 2)
        history.append((now, key))
        return identical or same_contract >= 6 or len(history) > 60

    def _on_cancel_historical(self, session: ClientSession, args: tuple) -> None:
        session.live_bars.pop(args[0], None)

    def _push_live_bars(self) -> None:
        """keepUpToDate bar requests: the current bar follows the live last price (HISTORICAL_DATA_UPDATE)."""
        now = self.market.clock()  # the wall clock, or the replay clock when replaying
        for session in self.started_sessions():
            for req_id, bar in session.live_bars.items():
                top = self.market.top(bar.inst.con_id)
                if not bar.daily:
                    epoch = int(now.timestamp())
                    start = datetime.fromtimestamp(epoch - epoch % bar.bar_seconds, UTC)
                    if start > bar.start:  # a new bar opens at the last price
                        bar.start, bar.open, bar.high, bar.low, bar.volume = start, top.last, top.last, top.last, 0
                bar.close = top.last
                bar.high = max(bar.high, top.last)
                bar.low = min(bar.low, top.last)
                bar.volume += max(top.volume - bar.seen_volume, 0)
                bar.seen_volume = top.volume
                zone = ZoneInfo(bar.inst.time_zone)
                if bar.daily:
                    label = bar.start.astimezone(zone).strftime("%Y%m%d")
                elif bar.format_date == 2:
                    label = str(int(bar.start.timestamp()))
                else:
                    label = bar.start.astimezone(zone).strftime("%Y%m%d %H:%M:%S") + " " + bar.inst.time_zone
                session.send(P.historical_data_update(req_id, -1, label, _num(bar.open), _num(bar.close),
                                                      _num(bar.high), _num(bar.low), _num(bar.close), bar.volume))

    # ----- orders -----------------------------------------------------------------------------------------
    def _on_place_order(self, session: ClientSession, req: P.PlaceOrderRequest) -> None:
        if self.faults.readonly:
            session.send(P.error_message(req.order_id, 321, TEXT_READ_ONLY))
            return
        reason = self.faults.take_reject_reason()
        if reason is not None:
            session.send(P.error_message(req.order_id, 201, f"Order rejected - reason:{reason}"))
            return
        existing = self.exchange.order(session.client_id, req.order_id)
        if existing is None:
            problem = self._new_order_problem(session, req)
            if problem is not None:
                session.send(P.error_message(req.order_id, *problem))
                return
        inst = self.resolve(req.contract)
        if inst is None and existing is not None and req.contract.con_id == 0 and not req.contract.symbol:
            inst = self.book.by_con_id(existing.con_id)
        if inst is None:
            session.send(P.error_message(req.order_id, 200, TEXT_NO_SECURITY))
            return
        account = req.account or (existing.account if existing else self.config.accounts[0])
        extra = {k: _json_value(v) for k, v in req.wire.items()}
        extra["exchange"] = req.contract.exchange.upper() or inst.exchange
        # trailing orders: the initial stop and the percent (the exchange keeps the stop current here)
        extra["trailStopPrice"] = _json_value(req.trail_stop_price)
        extra["trailingPercent"] = _json_value(req.trailing_percent)
        order = SimOrder(
            client_id=session.client_id, order_id=req.order_id, account=account, con_id=inst.con_id,
            action=req.action, total_qty=req.total_qty if req.total_qty is not None else Decimal(0),
            order_type=req.order_type, lmt_price=req.lmt_price, aux_price=req.aux_price, tif=req.tif,
            outside_rth=req.outside_rth, order_ref=req.order_ref, parent_id=req.parent_id,
            transmit=req.transmit, oca_group=req.oca_group, what_if=req.what_if, extra=extra,
        )
        self.exchange.place(order)

    def _new_order_problem(self, session: ClientSession, req: P.PlaceOrderRequest) -> tuple[int, str] | None:
        """TWS's checks of a new order id and contract: (code, text), or None when the order may go on."""
        highest = self._highest_order_id.get(session.client_id)
        if highest is None:
            highest = max((o.order_id for o in self.exchange.orders_of(session.client_id)), default=0)
        if req.order_id <= highest:
            return 103, TEXT_DUPLICATE_ORDER_ID
        if not req.contract.exchange.strip():
            return 321, TEXT_NO_EXCHANGE
        if not req.contract.currency.strip() and not req.contract.con_id:
            return 321, TEXT_NO_CURRENCY
        self._highest_order_id[session.client_id] = req.order_id
        return None

    def _on_cancel_order(self, session: ClientSession, args: tuple) -> None:
        order_id = args[0]
        if self.faults.readonly:
            session.send(P.error_message(order_id, 321, TEXT_READ_ONLY))
            return
        self.exchange.cancel(session.client_id, order_id)

    def _on_global_cancel(self, session: ClientSession, args: tuple) -> None:
        if self.faults.readonly:
            session.send(P.error_message(-1, 321, TEXT_READ_ONLY))
            return
        self.exchange.global_cancel()

    def _on_open_orders(self, session: ClientSession, args: tuple, every_client: bool = False) -> None:
        if self.faults.readonly:
            session.send(P.error_message(-1, 321, TEXT_READ_ONLY))
            return
        orders = self.exchange.open_orders(None if every_client else session.client_id)
        for order in orders:
            self._send_order(session, order)
        session.send(P.open_order_end())

    def _on_all_open_orders(self, session: ClientSession, args: tuple) -> None:
        self._on_open_orders(session, args, every_client=True)

    def _on_auto_open_orders(self, session: ClientSession, args: tuple) -> None:
        if self.faults.readonly:
            session.send(P.error_message(-1, 321, TEXT_READ_ONLY))

    def _on_completed_orders(self, session: ClientSession, args: tuple) -> None:
        if self.faults.readonly:
            session.send(P.error_message(-1, 321, TEXT_READ_ONLY))
            return
        for order in self.exchange.completed_orders():
            inst = self.book.by_con_id(order.con_id)
            if inst is None:
                continue
            session.send(P.completed_order(self._order_record(inst, order), self._echo(order, inst)))
        session.send(P.completed_orders_end())

    def _on_req_ids(self, session: ClientSession, args: tuple) -> None:
        session.send(P.next_valid_id(self.exchange.next_order_id_hint()))

    def _order_record(self, inst: SimInstrument, order: SimOrder) -> P.ContractRecord:
        rec = self._record(inst)
        exchange = order.extra.get("exchange") or inst.exchange
        return rec if exchange == rec.exchange else _replace_record(rec, exchange=exchange)

    def _echo(self, order: SimOrder, inst: SimInstrument, margins: dict | None = None) -> P.OrderEcho:
        x = order.extra
        completed = ""
        if order.completed_time is not None:
            completed = P.tws_time(order.completed_time, inst.time_zone)
        return P.OrderEcho(
            order_id=order.order_id, client_id=order.client_id, perm_id=order.perm_id, action=order.action,
            total_qty=_num(order.total_qty), order_type=order.order_type, lmt_price=_num_or_none(order.lmt_price),
            aux_price=_num_or_none(order.aux_price), tif=order.tif, account=order.account,
            order_ref=order.order_ref, oca_group=order.oca_group, outside_rth=order.outside_rth,
            parent_id=order.parent_id, status=order.status, what_if=order.what_if, margins=margins,
            filled=_num(order.filled), completed_time=completed, completed_status=order.completed_status,
            good_till_date=x.get("goodTillDate", ""), good_after_time=x.get("goodAfterTime", ""),
            open_close=x.get("openClose", ""), origin=int(x.get("origin", 0) or 0), hidden=bool(x.get("hidden")),
            oca_type=int(x.get("ocaType", 0) or 0), all_or_none=bool(x.get("allOrNone")), wire=x,
            trail_stop_price=_trail_stop_or_none(order),
            commission=_num(order.commission_charged) if order.filled > 0 else None,
            commission_currency=inst.currency if order.filled > 0 else "",
        )

    def _send_order(self, session: ClientSession, order: SimOrder) -> None:
        inst = self.book.by_con_id(order.con_id)
        if inst is None:
            return
        session.send(P.open_order(self._order_record(inst, order), self._echo(order, inst)))
        session.send(_order_status_bytes(order))

    # ----- venue events -----------------------------------------------------------------------------------
    def _on_venue_event(self, event: object) -> None:
        """Route one exchange event to the client that owns the order (by clientId)."""
        self._state_dirty = True
        if self._store is not None:
            self._journal(event)
        if isinstance(event, AccountTouched):
            self._dirty_accounts.add(event.account)
            if not self._account_flush_scheduled and self.loop is not None:
                self._account_flush_scheduled = True
                self.loop.call_soon(self._flush_accounts)
            return
        order = event.order  # type: ignore[attr-defined]
        session = self.by_client_id.get(order.client_id)
        if session is None or session.closed:
            return
        if isinstance(event, OrderUpdated):
            self._send_order(session, order)
        elif isinstance(event, Executed):
            self._send_execution(session, -1, event.execution)
        elif isinstance(event, OrderError):
            session.send(P.error_message(order.order_id, event.code, event.text))
        elif isinstance(event, WhatIfResult):
            inst = self.book.by_con_id(order.con_id)
            if inst is not None:
                margins = {k: _margin_text(v) for k, v in event.margins.items()}
                session.send(P.open_order(self._order_record(inst, order), self._echo(order, inst, margins)))

    def _send_execution(self, session: ClientSession, req_id: int, e: SimExecution) -> None:
        inst = self.book.by_con_id(e.con_id)
        if inst is None:
            return
        rec = self._record(inst)
        rec = _replace_record(rec, exchange=e.exchange) if e.exchange != rec.exchange else rec
        echo = P.ExecutionEcho(
            req_id=req_id, order_id=e.order_id, exec_id=e.exec_id, time=P.tws_time(e.time, inst.time_zone),
            account=e.account, exchange=e.exchange, side=e.side, shares=_num(e.shares), price=_num(e.price),
            perm_id=e.perm_id, client_id=e.client_id, cum_qty=_num(e.cum_qty), avg_price=_num(e.avg_price),
            order_ref=e.order_ref,
        )
        session.send(P.execution_data(rec, echo))
        session.send(P.commission_report(e.exec_id, _num(e.commission), e.commission_currency,
                                         None if e.realized_pnl is None else _num(e.realized_pnl)))

    def _on_executions(self, session: ClientSession, req: P.ExecutionsRequest) -> None:
        since = _parse_filter_time(req.time)
        side = {"BUY": "BOT", "SELL": "SLD"}.get(req.side.upper(), req.side.upper())
        for e in self.exchange.executions(client_id=req.client_id or None, account=req.account,
                                          symbol=req.symbol, since=since):
            if side and e.side != side:
                continue
            self._send_execution(session, req.req_id, e)
        session.send(P.execution_data_end(req.req_id))

    # ----- accounts ---------------------------------------------------------------------------------------
    def _known_account(self, session: ClientSession, account: str, req_id: int) -> bool:
        if account in self.config.accounts:
            return True
        session.send(P.error_message(req_id, 321, f"Error validating request: account {account!r} is not one "
                                                  f"of {','.join(self.config.accounts)}"))
        return False

    def _on_positions(self, session: ClientSession, args: tuple) -> None:
        session.positions_subscribed = True
        for account in self.config.accounts:
            for message in self._position_messages(account, only_held=False):
                session.send(message)
        session.send(P.position_end())

    def _on_cancel_positions(self, session: ClientSession, args: tuple) -> None:
        session.positions_subscribed = False

    def _on_positions_multi(self, session: ClientSession, args: tuple) -> None:
        req_id, account, model = args
        accounts = self._multi_accounts(account)
        if accounts is None:
            self._known_account(session, account, req_id)
            session.send(P.position_multi_end(req_id))  # 321 alone leaves ib_async waiting
            return
        for acct in accounts:
            for pos in self.accounts.positions(acct):
                inst = self.book.by_con_id(pos.con_id)
                if inst is not None:
                    session.send(P.position_multi(req_id, acct, self._record(inst), _num(pos.quantity),
                                                  _num(pos.avg_cost), model))
        session.send(P.position_multi_end(req_id))

    def _on_nothing_running(self, session: ClientSession, args: tuple) -> None:
        """Cancels of requests that are answered at once: nothing keeps running, nothing to send."""

    def _on_managed_accounts(self, session: ClientSession, args: tuple) -> None:
        session.send(P.managed_accounts(self.config.accounts))

    def _on_matching_symbols(self, session: ClientSession, args: tuple) -> None:
        """Symbol search: symbols starting with the pattern first, then names containing it (16 at most)."""
        req_id, pattern = args
        wanted = pattern.strip().upper()
        rows: list[SimInstrument] = []
        if wanted:
            everything = self.book.all()
            rows = [i for i in everything if i.symbol.upper().startswith(wanted)]
            rows += [i for i in everything if wanted in i.long_name.upper() and i not in rows]
        session.send(P.symbol_samples(req_id, [self._record(i) for i in rows[:16]]))

    def _on_head_timestamp(self, session: ClientSession, args: tuple) -> None:
        req_id, spec, _expired, _rth, _what, format_date = args
        inst = self.resolve(spec)
        if inst is None:
            session.send(P.error_message(req_id, 200, TEXT_NO_SECURITY))
            return
        # the practice exchange's synthetic history reaches back as far as anyone asks; say five years
        first = (datetime.now(UTC) - timedelta(days=5 * 365)).replace(hour=0, minute=0, second=0, microsecond=0)
        text = str(int(first.timestamp())) if format_date == 2 else first.strftime("%Y%m%d-%H:%M:%S")
        session.send(P.head_timestamp(req_id, text))

    def _position_messages(self, account: str, only_held: bool = False) -> list[bytes]:
        out = []
        held = set()
        for pos in self.accounts.positions(account):
            inst = self.book.by_con_id(pos.con_id)
            if inst is None or (only_held and pos.quantity == 0):
                continue
            held.add(pos.con_id)
            out.append(P.position_data(account, self._record(inst), _num(pos.quantity), _num(pos.avg_cost)))
        previously = self._sent_positions.get(account, set())
        if not only_held:
            for con_id in previously - held:  # a closed position is reported once with quantity 0
                inst = self.book.by_con_id(con_id)
                if inst is not None:
                    out.append(P.position_data(account, self._record(inst), 0, 0))
        self._sent_positions[account] = held | (previously if only_held else set())
        return out

    def _account_value_messages(self, account: str) -> list[bytes]:
        return [P.account_value(key, value, currency, account)
                for key, value, currency in self.accounts.account_values(account)]

    def _portfolio_messages(self, session: ClientSession, account: str) -> list[bytes]:
        out = []
        held = set()
        for inst, position, price, value, avg_cost, unrealized, realized in self.accounts.portfolio(account):
            held.add(inst.con_id)
            out.append(P.portfolio_value(self._record(inst), _num(position), _num(price), _num(value),
                                         _num(avg_cost), _num(unrealized), _num(realized), account))
        key = (id(session), account)
        for con_id in self._sent_portfolio.get(key, set()) - held:
            inst = self.book.by_con_id(con_id)
            if inst is not None:
                out.append(P.portfolio_value(self._record(inst), 0, 0, 0, 0, 0, 0, account))
        self._sent_portfolio[key] = held
        return out

    def _on_account_updates(self, session: ClientSession, args: tuple) -> None:
        subscribe, account = args
        if not subscribe:
            session.account_updates = None
            return
        account = account or self.config.accounts[0]
        if not self._known_account(session, account, -1):
            session.send(P.account_download_end(account))  # 321 alone leaves ib_async waiting
            return
        session.account_updates = account
        self._send_account_download(session, account, end=True)

    def _send_account_download(self, session: ClientSession, account: str, end: bool) -> None:
        for message in self._account_value_messages(account):
            session.send(message)
        for message in self._portfolio_messages(session, account):
            session.send(message)
        session.send(P.account_update_time(datetime.now(UTC).strftime("%H:%M")))
        if end:
            session.send(P.account_download_end(account))

    def _on_account_updates_multi(self, session: ClientSession, args: tuple) -> None:
        req_id, account, _model, _ledger = args
        accounts = self._multi_accounts(account)
        if accounts is None:
            self._known_account(session, account, req_id)
            session.send(P.account_update_multi_end(req_id))  # 321 alone leaves ib_async waiting
            return
        session.multi_subs[req_id] = account
        self._send_multi(session, req_id, accounts)
        session.send(P.account_update_multi_end(req_id))

    def _multi_accounts(self, account: str) -> list[str] | None:
        if account in ("", "All"):
            return list(self.config.accounts)
        return [account] if account in self.config.accounts else None

    def _send_multi(self, session: ClientSession, req_id: int, accounts: Iterable[str]) -> None:
        for acct in accounts:
            for key, value, currency in self.accounts.account_values(acct):
                session.send(P.account_update_multi(req_id, acct, "", key, value, currency))

    def _on_cancel_account_updates_multi(self, session: ClientSession, args: tuple) -> None:
        session.multi_subs.pop(args[0], None)

    def _on_account_summary(self, session: ClientSession, args: tuple) -> None:
        req_id, _group, tags = args
        if req_id not in session.summary_subs and len(session.summary_subs) >= MAX_ACCOUNT_SUMMARIES:
            session.send(P.error_message(req_id, 322, TEXT_SUMMARY_LIMIT))
            return
        wanted = tuple(t.strip() for t in tags.split(",") if t.strip())
        session.summary_subs[req_id] = wanted
        for account in self.config.accounts:
            for tag, value, currency in self.accounts.summary(account, wanted):
                session.send(P.account_summary(req_id, account, tag, value, currency))
        session.send(P.account_summary_end(req_id))

    def _on_cancel_account_summary(self, session: ClientSession, args: tuple) -> None:
        session.summary_subs.pop(args[0], None)

    def _on_pnl(self, session: ClientSession, args: tuple) -> None:
        req_id, account, _model = args
        if not self._known_account(session, account, req_id):
            return
        session.pnl_subs[req_id] = account
        self._send_pnl(session, req_id, account)

    def _send_pnl(self, session: ClientSession, req_id: int, account: str) -> None:
        daily, unrealized, realized = self.accounts.pnl(account)
        session.send(P.pnl(req_id, _num(daily), _num(unrealized), _num(realized)))

    def _on_cancel_pnl(self, session: ClientSession, args: tuple) -> None:
        session.pnl_subs.pop(args[0], None)

    def _on_pnl_single(self, session: ClientSession, args: tuple) -> None:
        req_id, account, _model, con_id = args
        if not self._known_account(session, account, req_id):
            return
        if self.book.by_con_id(con_id) is None:
            session.send(P.error_message(req_id, 200, TEXT_NO_SECURITY))
            return
        session.pnl_single_subs[req_id] = (account, con_id)
        self._send_pnl_single(session, req_id, account, con_id)

    def _send_pnl_single(self, session: ClientSession, req_id: int, account: str, con_id: int) -> None:
        pos, daily, unrealized, realized, value = self.accounts.pnl_single(account, con_id)
        session.send(P.pnl_single(req_id, _num(pos), _num(daily), _num(unrealized), _num(realized), _num(value)))

    def _on_cancel_pnl_single(self, session: ClientSession, args: tuple) -> None:
        session.pnl_single_subs.pop(args[0], None)

    def _flush_accounts(self) -> None:
        """After fills: positions, account values and portfolio of the touched accounts, to subscribers."""
        self._account_flush_scheduled = False
        accounts, self._dirty_accounts = self._dirty_accounts, set()
        for account in accounts:
            position_messages = None
            for session in self.started_sessions():
                if session.positions_subscribed:
                    if position_messages is None:
                        position_messages = self._position_messages(account)
                    for message in position_messages:
                        session.send(message)
                if session.account_updates == account:
                    self._send_account_download(session, account, end=False)
                for req_id, acct in session.multi_subs.items():
                    if acct in ("", "All", account):
                        self._send_multi(session, req_id, [account])
                for req_id, acct in session.pnl_subs.items():
                    if acct == account:
                        self._send_pnl(session, req_id, account)
                for req_id, (acct, con_id) in session.pnl_single_subs.items():
                    if acct == account:
                        self._send_pnl_single(session, req_id, acct, con_id)

    def _push_live_accounts(self) -> None:
        """Prices moved: values of accounts that hold something change, so subscribers get them again."""
        holding = {a for a in self.config.accounts if any(p.quantity != 0 for p in self.accounts.positions(a))}
        for session in self.started_sessions():
            if session.account_updates in holding:
                self._send_account_download(session, session.account_updates, end=False)
            for req_id, acct in session.multi_subs.items():
                self._send_multi(session, req_id, [a for a in (self._multi_accounts(acct) or []) if a in holding])
            for req_id, acct in session.pnl_subs.items():
                self._send_pnl(session, req_id, acct)
            for req_id, (acct, con_id) in session.pnl_single_subs.items():
                self._send_pnl_single(session, req_id, acct, con_id)

    # ----- persistence ------------------------------------------------------------------------------------
    def _load_state(self) -> None:
        data = self._store.load()
        if data is None:
            return
        self.market.load_dict(data.get("market", {}))
        self.accounts.load_dict(data.get("accounts", {}))
        self.exchange.load_dict(data.get("exchange", {}))
        log.info("practice exchange state restored from %s", self._state_path)

    def _journal(self, event: object) -> None:
        """Queue what an exchange event changed; ``sync_state`` writes it before any reply leaves."""
        store = self._store
        if isinstance(event, AccountTouched):
            state = self.accounts.to_dict()["accounts"].get(event.account)
            if state is not None:
                store.record("account", state, event.account)
            return
        if isinstance(event, WhatIfResult):
            return
        if isinstance(event, Executed):
            store.record("exec", _execution_to_json(event.execution))
        store.record("order", _order_to_json(event.order))  # type: ignore[attr-defined]
        # the counters Exchange.to_dict saves, so ids never repeat after a restart from the journal
        store.record("counters", {name: getattr(self.exchange, "_" + name)
                                  for name in ("next_perm_id", "exec_seq", "max_order_id")})

    def sync_state(self) -> None:
        """Write and fsync the journal of changes not yet on disk (cheap when there are none)."""
        store = self._store
        if store is not None and store.pending:
            try:
                store.sync()
            except OSError:
                log.exception("could not write the state journal of %s", self._state_path)

    def save_state(self) -> None:
        """Write the snapshot now (atomically) and drop the journals it contains."""
        if self._store is not None:
            seq = self._store.rotate()
            self._store.write_snapshot(self._snapshot_text(seq), seq)

    async def _state_writer(self) -> None:
        while True:
            await asyncio.sleep(STATE_SAVE_SECONDS / 5)  # a first change is in the snapshot within ~0.1 s
            now = time.monotonic()
            if now - self._last_state_save < STATE_SAVE_SECONDS:
                continue
            if self._state_dirty or (self._prices_dirty and now - self._last_state_save >= MARKET_SAVE_SECONDS):
                self._last_state_save = now
                try:
                    # serialised on the loop (consistent), written on a worker thread (fsync is slow)
                    seq = self._store.rotate()
                    await asyncio.to_thread(self._store.write_snapshot, self._snapshot_text(seq), seq)
                except Exception:
                    log.exception("could not write the state file %s", self._state_path)

    def _snapshot_text(self, journal_seq: int) -> str:
        self._state_dirty = False
        self._prices_dirty = False
        data = {
            "format": STATE_FORMAT, "saved": datetime.now(UTC).isoformat(), "journal_seq": journal_seq,
            "account_ids": list(self.config.accounts), "market": self.market.to_dict(),
            "accounts": self.accounts.to_dict(), "exchange": self.exchange.to_dict(),
        }
        return json.dumps(data, default=str, separators=(",", ":"))

    _handlers: dict = {}


SimServer._handlers = {
    71: SimServer._on_start_api,
    1: SimServer._on_market_data,
    2: SimServer._on_cancel_market_data,
    3: SimServer._on_place_order,
    4: SimServer._on_cancel_order,
    5: SimServer._on_open_orders,
    6: SimServer._on_account_updates,
    7: SimServer._on_executions,
    8: SimServer._on_req_ids,
    9: SimServer._on_contract_details,
    15: SimServer._on_auto_open_orders,
    16: SimServer._on_all_open_orders,
    20: SimServer._on_historical_data,
    25: SimServer._on_cancel_historical,
    49: SimServer._on_current_time,
    58: SimServer._on_global_cancel,
    59: SimServer._on_market_data_type,
    61: SimServer._on_positions,
    62: SimServer._on_account_summary,
    63: SimServer._on_cancel_account_summary,
    64: SimServer._on_cancel_positions,
    76: SimServer._on_account_updates_multi,
    77: SimServer._on_cancel_account_updates_multi,
    91: SimServer._on_market_rule,
    92: SimServer._on_pnl,
    93: SimServer._on_cancel_pnl,
    94: SimServer._on_pnl_single,
    95: SimServer._on_cancel_pnl_single,
    99: SimServer._on_completed_orders,
    17: SimServer._on_managed_accounts,
    74: SimServer._on_positions_multi,
    75: SimServer._on_nothing_running,
    90: SimServer._on_nothing_running,
    81: SimServer._on_matching_symbols,
    87: SimServer._on_head_timestamp,
    **side_requests.HANDLERS,
}


class SimThread:
    """A SimServer on its own thread and loop: for sync tests, the panel's demo mode and benchmarks.

    ``port``, ``faults`` and ``stats`` are safe to use from any thread. Use as a context manager or call
    ``start()`` / ``stop()``.
    """

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        self.server: SimServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> SimThread:
        self._thread = threading.Thread(target=self._run, name="ibpanel-sim", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"practice exchange failed to start: {self._error}") from self._error
        if self.server is None:
            raise RuntimeError("practice exchange did not start within 30 s")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            server = SimServer(self.config)
            loop.run_until_complete(server.start())
            self.server = server
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._loop is None or self.server is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop)
        try:
            future.result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def faults(self) -> Faults:
        return self.server.faults

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def set_quote_interval(self, seconds: float) -> None:
        self._loop.call_soon_threadsafe(self.server.set_quote_interval, seconds)

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the server's loop and return its result (for tests that inspect the venue)."""

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)


# ----- helpers -----------------------------------------------------------------------------------------------
def _replace_record(rec: P.ContractRecord, **changes) -> P.ContractRecord:
    from dataclasses import replace

    return replace(rec, **changes)


def _num(value) -> str:
    """Decimal/int -> wire text without exponent or trailing zeros (230.5, 100, -3.25)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return str(value.quantize(Decimal(1)))
        return format(value.normalize(), "f")
    return P.field_text(value)


def _num_or_none(value):
    return None if value is None else _num(value)


def _margin_text(value) -> str:
    if isinstance(value, Decimal):
        return _num(value)
    return str(value)


def _trail_stop_or_none(order: SimOrder) -> Decimal | None:
    """The current stop of a trailing order for openOrder's trailStopPrice (None for other orders)."""
    if order.order_type not in ("TRAIL", "TRAIL LIMIT") or not order.extra.get("trailStopPrice"):
        return None
    try:
        return Decimal(str(order.extra["trailStopPrice"]))
    except ArithmeticError:
        return None


def _json_value(value):
    if isinstance(value, Decimal):
        return _num(value)
    return value


def _order_status_bytes(order: SimOrder) -> bytes:
    return P.order_status(order.order_id, order.status, _num(order.filled), _num(order.remaining),
                          _num(order.avg_fill_price), order.perm_id, order.parent_id,
                          _num(order.last_fill_price), order.client_id, "", 0)


def _price_text(value: Decimal) -> str:
    """A Decimal on the tick as wire text ("230.15"); never exponent notation."""
    text = str(value)
    return format(value, "f") if "E" in text else text


def _quote_texts(top) -> list[str]:
    """Top -> the 11 wire values in LIVE_TICKS order."""
    price = _price_text
    return [price(top.bid), price(top.ask), price(top.last), str(top.bid_size), str(top.ask_size),
            str(top.last_size), price(top.high), price(top.low), str(top.volume), price(top.close), price(top.open)]


_PRICE_FIELDS = (0, 1, 2, 6, 7, 9, 10)  # indexes of prices in a quote state (the rest are sizes)


class _QuoteFeed:
    """Quotes as compact states and wire texts: the hot path of market-data streaming.

    A state is an 11-tuple in LIVE_TICKS order. ``Market.top`` builds Decimals and a fresh ``Top`` per call,
    too slow for 1000 symbols x several updates/s; ``Market.quote_units`` gives integer states in the
    instrument's tick grid, and prices are formatted through a per-grid text cache. A self-check at start
    compares both paths and falls back to ``Market.top`` if they ever disagree.
    """

    def __init__(self, market: Market):
        self.market = market
        self._caches: dict[int, dict[int, str]] = {}
        self.fast = hasattr(market, "quote_units") and self._self_check()

    def _self_check(self) -> bool:
        try:
            for inst in self.market.book.all()[:3]:
                con_id = inst.con_id
                state, grid = self.market.quote_units(con_id)
                fast = [self._text(i, v, grid) for i, v in enumerate(state)]
                slow = _quote_texts(self.market.top(con_id))
                if [Decimal(v) for v in fast] != [Decimal(v) for v in slow]:
                    return False
            return True
        except Exception:  # internals changed shape: use the public API
            return False

    def state(self, con_id: int):
        """(state tuple, grid or None) of one instrument now."""
        if self.fast:
            return self.market.quote_units(con_id)
        top = self.market.top(con_id)
        return (top.bid, top.ask, top.last, top.bid_size, top.ask_size, top.last_size, top.high, top.low,
                top.volume, top.close, top.open), None

    def price_text(self, value, grid) -> str:
        """Wire text of a price from a state (integer units of ``grid``, or a Decimal when grid is None)."""
        if grid is None:
            return _price_text(value)
        cache = self._caches.get(id(grid))
        if cache is None or len(cache) > 200_000:
            cache = self._caches[id(grid)] = {}
        text = cache.get(value)
        if text is None:
            text = cache[value] = _price_text(grid.to_decimal(value))
        return text

    def _text(self, index: int, value, grid) -> str:
        return self.price_text(value, grid) if index in _PRICE_FIELDS else str(value)

    def texts(self, con_id: int) -> list[str]:
        state, grid = self.state(con_id)
        return [self._text(i, v, grid) for i, v in enumerate(state)]


def _tick_price_text(req: str, tick_type: int, price: str, size: str, mask: str) -> str:
    payload = f"1\x006\x00{req}\x00{tick_type}\x00{price}\x00{size}\x00{mask}\x00"
    return _length_text(len(payload)) + payload


def _message_id(payload: bytes) -> int:
    """The message id of a request payload (its first field), -1 when unreadable."""
    head = payload[:payload.find(b"\0")] if b"\0" in payload[:8] else payload[:8]
    return int(head) if head.isdigit() else -1


def _tick_string_text(req: str, tick_type: str, value: str) -> str:
    payload = f"46\x006\x00{req}\x00{tick_type}\x00{value}\x00"
    return _length_text(len(payload)) + payload


def _tick_size_text(req: str, tick_type: int, size: str) -> str:
    payload = f"2\x006\x00{req}\x00{tick_type}\x00{size}\x00"
    return _length_text(len(payload)) + payload


def _bar_is_daily(bar_size: str) -> bool:
    unit = bar_size.strip().split()[-1].lower() if bar_size.strip() else ""
    return unit in ("day", "days", "week", "weeks", "month", "months")


def _parse_end_time(text: str, zone_name: str) -> datetime | None:
    """endDateTime of reqHistoricalData: "" (now), "YYYYMMDD HH:MM:SS [zone]", "YYYYMMDD-HH:MM:SS" (UTC)."""
    text = text.strip()
    if not text:
        return None
    if "-" in text and " " not in text:
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    parts = text.split(" ")
    parts = [p for p in parts if p]
    if len(parts) == 1 and len(parts[0]) == 8:
        return datetime.strptime(parts[0], "%Y%m%d").replace(tzinfo=ZoneInfo(zone_name))
    if len(parts) < 2:
        raise ValueError(f"end time {text!r} is not 'YYYYMMDD HH:MM:SS [zone]'")
    moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
    zone = parts[2] if len(parts) > 2 else zone_name
    try:
        tz = UTC if zone.upper() in ("UTC", "GMT") else ZoneInfo(zone)
    except Exception:
        raise ValueError(f"end time zone {zone!r} is unknown") from None
    return moment.replace(tzinfo=tz)


def _historical_request_problem(req: P.HistoricalDataRequest) -> str | None:
    """TWS's validation of a historical data request: the error text (code 321), or None."""
    bar = " ".join(req.bar_size.split()).lower()
    amount, _, unit = bar.partition(" ")
    plural = f"{amount} {unit}s"
    if bar not in LEGAL_BAR_SIZES and plural not in LEGAL_BAR_SIZES and bar not in ("1 sec", "1 mins"):
        return TEXT_BAD_BAR_SIZE
    what = req.what_to_show.strip().upper()
    if what and what not in LEGAL_WHAT_TO_SHOW:
        return TEXT_BAD_WHAT_TO_SHOW.format(what=req.what_to_show)
    if req.keep_up_to_date and req.end.strip():
        return TEXT_END_WITH_UPDATES
    return None


def _parse_filter_time(text: str) -> datetime | None:
    """ExecutionFilter.time "YYYYMMDD-HH:MM:SS" (UTC) or "YYYYMMDD HH:MM:SS"; empty -> None."""
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y%m%d-%H:%M:%S", "%Y%m%d %H:%M:%S", "%Y%m%d"):
        try:
            return datetime.strptime(text[:17], fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return datetime.now(UTC) - timedelta(days=1)


__all__ = ["ClientSession", "SimConfig", "SimServer", "SimThread"]
