"""The practice exchange's TWS socket server: ``SimServer`` owns the market, the accounts, the exchange and
the client sessions, runs the quote clock, and is assembled from one part per role:

- transport.py: one client socket (``ClientSession``): greeting, version, framing, queued replies;
- dispatch.py: the one registry (message id -> handler), pacing, freeze, fair queues;
- handlers/: connection, contracts, market_data, history, orders, accounts (one area each);
- side_requests.py: every other request TWS knows, answered as an empty practice account would;
- persistence.py: the --state snapshot and journal;
- embedded.py: ``SimThread``, the server on its own thread for in-process use;
- protocol/: the wire format (codec, message ids, request decoders, reply encoders).

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
  full current quote of every line that moved meanwhile (TWS conflates similarly).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P
from ibpanel.sim import side_requests
from ibpanel.sim.accounts import Accounts
from ibpanel.sim.config import SimConfig
from ibpanel.sim.dispatch import RequestDispatch
from ibpanel.sim.embedded import SimThread
from ibpanel.sim.exchange import Exchange
from ibpanel.sim.faults import CONNECTIVITY_TEXTS, Faults, Stats
from ibpanel.sim.handlers.accounts import AccountHandlers
from ibpanel.sim.handlers.connection import ConnectionHandlers
from ibpanel.sim.handlers.contracts import ContractHandlers
from ibpanel.sim.handlers.history import HistoryHandlers
from ibpanel.sim.handlers.market_data import MarketDataHandlers, _QuoteFeed
from ibpanel.sim.handlers.orders import OrderHandlers
from ibpanel.sim.market import InstrumentBook, MarketRules, PracticeMarket
from ibpanel.sim.persistence import StatePersistence, StateStore
from ibpanel.sim.transport import ClientSession

if TYPE_CHECKING:
    from ibpanel.sim.handlers.market_data import _Subscription

log = logging.getLogger("ibpanel.sim")


class SimServer(RequestDispatch, ConnectionHandlers, ContractHandlers, MarketDataHandlers, HistoryHandlers,
                OrderHandlers, AccountHandlers, StatePersistence):
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
        self.market = PracticeMarket(self.book, self.rules, seed=cfg.seed, session_mode=cfg.session_mode,
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
        #: (session, subscription...) -> {(key, currency): value} last sent: live pushes send what changed
        self._sent_values: dict[tuple, dict[tuple[str, str], str]] = {}
        self._state_dirty = False  # orders, fills or accounts changed: save within STATE_SAVE_SECONDS
        self._prices_dirty = False  # only prices moved: save every MARKET_SAVE_SECONDS
        self._last_state_save = 0.0
        self._state_wake = asyncio.Event()  # set by _state_changed: the state writer sleeps until then
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
        for key in [k for k in self._sent_values if k[0] == id(session)]:
            del self._sent_values[key]

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


__all__ = ["ClientSession", "SimConfig", "SimServer", "SimThread"]
