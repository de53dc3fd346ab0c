"""The Broker: the one trading service the panel and the REST API share.

Over 500 lines because it is the one facade front ends call; the work is in session, orders,
quotes and account modules beside it.

CONTRACT (fixed at project start; the implementation fills in the bodies). UI and API code
against exactly these names. Everything runs on the asyncio loop that calls ``connect``
(under the panel that is qasync's Qt loop); every event below is emitted on that loop's
thread, synchronously, with our frozen dataclasses from ``ibpanel.broker.models``.

Events (``ibpanel.broker.events.Event``; ``broker.<name>.connect(handler)``):

================== ================================ ==============================================
event              payload                          when
================== ================================ ==============================================
state_changed      ConnectionStatus                 any change of connection state / account
notice             Notice                           every IB error / warning / info message
account_changed    AccountSummary                   account values of the selected account moved
positions_changed  tuple[Position, ...]             positions or their prices / P&L changed
order_changed      OrderView                        an order was placed, changed status, filled
fill_added         Fill                             an execution (and later its commission)
quotes_updated     tuple[Quote, ...]                streaming quotes changed (one emit per packet)
pnl_changed        PnL                              daily / unrealized / realized P&L changed
================== ================================ ==============================================

Errors: ``ibpanel.broker.exceptions`` (NotConnected, ConnectError, SymbolError, OrderRejected,
OrderNotFound, NotCancellable, BrokerTimeout), each with ``message`` and ``advice``.

Safety: read-only sessions, account checks, lots, ticks, fat-finger and value limits are all
enforced inside ``place`` / ``modify`` / ``preview``; the journal records the intent before a
byte is sent and is reconciled with TWS on every connect and reconnect; a reconnect never
re-sends an order.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from ib_async import IB, Contract
from ib_async.wrapper import RequestError

from ibpanel.broker import ib_codes
from ibpanel.broker import journal as journal_mod
from ibpanel.broker.account import AccountBook
from ibpanel.broker.convert import bare_instrument, dec, int_id, known_price, rule_ids, split_list
from ibpanel.broker.events import Event
from ibpanel.broker.exceptions import (
    PACING_MESSAGE,
    BrokerError,
    BrokerTimeout,
    NotConnected,
    PacingLimit,
    SymbolError,
)
from ibpanel.broker.framing import StreamReader
from ibpanel.broker.heartbeat import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, STALE_ADVICE
from ibpanel.broker.models import (
    AccountSummary,
    Bar,
    ConnectionParams,
    ConnectionState,
    ConnectionStatus,
    Fill,
    Instrument,
    Market,
    Notice,
    OrderRequest,
    OrderStatus,
    OrderView,
    PnL,
    Position,
    Quote,
    ValidationIssue,
    WhatIf,
)
from ibpanel.broker.orders import OrderBook
from ibpanel.broker.pacing import OrderFirstPacer
from ibpanel.broker.quotes import QuoteBook
from ibpanel.broker.rules import TickTable, board_lot, fallback_tick_table, is_hk_etf
from ibpanel.broker.session import Session
from ibpanel.broker.symbols import ContractCache, SymbolSpec, choose_primary_exchange, parse_symbol

log = logging.getLogger(__name__)

# Reference price for the fat-finger rule when the stock is not streamed: how long to wait.
_REFERENCE_SNAPSHOT_TIMEOUT = 2.0
# Statuses TWS itself reports (ib_async adds its own "ValidationError" for warnings).
_TWS_STATUSES = frozenset({"PendingSubmit", "PreSubmitted", "Submitted", "PendingCancel", "Cancelled",
                           "ApiCancelled", "Filled", "Inactive", "ApiPending"})
# How long a snapshot price stays good enough as the fat-finger reference.
_REFERENCE_MAX_AGE = 5.0
# Startup requests we add to ib_async's own sync (all clients' open orders) get this long.
_SYNC_TIMEOUT = 4.0
# IB allows 50 client messages per second. ib_async's default throttle (45 per 1 s) sends in bursts of 45:
# one burst delivered late lands in the same second at TWS as the next one (error 100, QA F41). Small
# bursts (4 per 0.1 s = 40/s) leave room for a quarter second of delivery jitter.
PACE_MESSAGES = 4
PACE_INTERVAL = 0.1
#: Default bound on how long a new order may wait behind queued orders before it is refused (back-pressure).
MAX_ORDER_WAIT = 2.0
SHUTDOWN_NOT_SENT = "still queued for sending at shutdown: never left the panel"
DROPPED_NOT_SENT = "still queued for sending when the connection closed: never left the panel"


class Broker:
    """See the module docstring for events. Construct once per process; connect many times.

    Beyond the contract (additions, safe to use from the UI and the API):

    * ``await tick_table(instrument)`` -> ``rules.TickTable`` from IB's market rule for the stock's
      exchange (``.source`` says "IB market rule N" or which fallback table was used);
    * ``await reference_price(instrument)`` -> the Decimal the fat-finger rule compares against;
    * ``journal`` (the ``OrderJournal``) and ``last_reconcile`` (entries the last connect settled).

    Price checks (``check`` / ``place`` / ``preview`` / ``modify``): ``fat_finger_pct`` limits how far an
    *aggressive* limit (a buy above / sell below the last trade; a stop-limit's limit against its stop) may
    be; a *resting* limit or a protective stop may be up to ``orders.PASSIVE_BAND_PCT`` (50%, or the
    fat-finger limit if larger) away. A stop already through the market (sell stop at/above it, buy stop
    at/below it) is refused, and so is a MKT order with ``outside_rth`` (IB ignores it, warning 2109) and any
    Hong Kong order with ``outside_rth`` (SEHK has no extended hours; code ``outside_rth_hk``).
    ``modify`` refuses a quantity at or below the filled part before sending, then waits (``orders.
    MODIFY_ACK_TIMEOUT``) for TWS to echo the new terms: a refusal raises ``ModifyRejected`` (IB's code and
    reason) and the order keeps its previous terms; no answer raises BrokerTimeout.
    Requests are paced at ``PACE_MESSAGES`` per ``PACE_INTERVAL`` s (IB allows 50 messages/s); concurrent
    ``resolve`` calls for one symbol share one lookup; a snapshot or lookup lost to IB's pacing limit (error
    100) raises ``PacingLimit`` (a BrokerTimeout).
    ``limits_source`` (e.g. the settings.ini path) is named in the fat-finger / order-value refusals.
    Positions of managed accounts other than the selected one are priced from quotes the broker streams
    itself (TWS streams the portfolio of one account at a time).
    Journal reconcile (every connect): a working entry of one of the login's accounts that TWS lists
    nowhere becomes "Unknown" (``journal.GONE``) with the time checked; other logins' entries are kept.

    Reconnects keep order views, subscriptions and fills; ``connect()`` to a different host:port
    forgets them (another TWS has other conIds and orders). ``disconnect()`` during ``connect()``
    makes that connect raise ConnectError ("cancelled").
    """

    def __init__(
        self,
        journal_path: Path | None = None,
        *,
        max_order_value: dict[str, Decimal] | None = None,  # per currency, e.g. {"USD": 1_000_000}
        fat_finger_pct: Decimal = Decimal(10),  # refuse a limit/stop price this far from the last trade
        reconnect_backoff: tuple[float, float] = (1.0, 30.0),  # first and largest delay, seconds
        limits_source: str = "",  # where the limits above are set (e.g. the profile's settings.ini), named in refusals
        practice_journal_path: Path | None = None,  # default: beside the journal, "journal-practice.sqlite3"
        max_order_wait: float = MAX_ORDER_WAIT,  # refuse an order that would wait longer than this to be sent
        heartbeat: tuple[float, float] = (HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT),  # idle s before a probe, its timeout
    ) -> None:
        ib_codes.install_log_filter()  # a cancel (202) is information: not an ERROR line on the terminal
        self.state_changed = Event("state_changed")
        self.notice = Event("notice")
        self.account_changed = Event("account_changed")
        self.positions_changed = Event("positions_changed")
        self.order_changed = Event("order_changed")
        self.fill_added = Event("fill_added")
        self.quotes_updated = Event("quotes_updated")
        self.pnl_changed = Event("pnl_changed")

        self._ib = IB()
        self._ib.RaiseRequestErrors = True  # a request IB refuses raises (with its code) instead of returning []
        client = self._ib.client
        # Linear framing and a time budget per loop turn: a burst of quotes never freezes the window.
        self.stream_reader = StreamReader(client)
        self._pacer: OrderFirstPacer | None = None
        if client.MaxRequests:  # 0: the throttle was switched off on purpose (benchmarks of the raw path)
            client.MaxRequests, client.RequestsInterval = PACE_MESSAGES, PACE_INTERVAL
            self._pacer = OrderFirstPacer(client)  # orders, modifies and cancels ahead of data requests
        self.not_sent_at_shutdown = 0  # orders still queued when close() ran (settled NotSent in the journal)
        self._real_journal_path = Path(journal_path or journal_mod.default_journal_path())
        self._practice_journal_path = Path(
            practice_journal_path or journal_mod.practice_journal_path(self._real_journal_path)
        )
        self.journal = journal_mod.OrderJournal(self._real_journal_path)
        self._cache = ContractCache()
        self._qualifying: dict[object, asyncio.Future] = {}  # SymbolSpec.key -> the lookup in flight
        self._contracts: dict[int, Contract] = {}
        self._rule_of: dict[int, int] = {}
        self._etf: set[int] = set()
        self._tick_tables: dict[int, TickTable] = {}
        self._reference_prices: dict[int, tuple[Decimal, float]] = {}  # only prices: a missing one is never kept
        self._account_task: asyncio.Task | None = None
        self._watched: set[int] = set()  # conIds streamed to price other accounts' positions
        self._venue: tuple[str, int] | None = None  # (host, port) of the last connect
        self.last_reconcile: list = []  # journal entries the last reconcile changed (for the UI / tests)
        self._session = Session(
            self._ib, backoff=reconnect_backoff, on_status=self._on_status, on_ready=self._on_ready,
            on_lost=self._on_lost, on_data_lost=self._on_data_lost, heartbeat=heartbeat,
        )
        self._quotes = QuoteBook(
            self._ib, contract_for=self._contract, is_connected=lambda: self._session.connected,
            on_quotes=self.quotes_updated.emit,
        )
        self._orders = OrderBook(
            self._ib, self.journal, _Catalog(self), is_connected=lambda: self._session.connected,
            session_info=self._session_info,
            max_order_value=max_order_value if max_order_value is not None else {},
            fat_finger_pct=fat_finger_pct, on_change=self.order_changed.emit, limits_source=limits_source,
            connection_problem=self._connection_problem,
            order_wait=self._pacer.order_wait if self._pacer is not None else (lambda: 0.0),
            max_order_wait=max_order_wait,
        )
        self._account = AccountBook(
            self._ib, self.journal, instrument_for=self._instrument_for, price_of=self._quotes.last_price,
            selected=lambda: self._session.status.account, on_account=self.account_changed.emit,
            on_positions=self.positions_changed.emit, on_fill=self.fill_added.emit, on_pnl=self.pnl_changed.emit,
            watch_price=self._watch_price,
        )
        self._ib.errorEvent += self._on_ib_error
        self._ib.disconnectedEvent += self._settle_dropped

    # --- connection -------------------------------------------------------------------------
    @property
    def status(self) -> ConnectionStatus:
        return self._session.status

    async def connect(self, params: ConnectionParams) -> ConnectionStatus:
        """Connect; raises ConnectError (with .failure: kind, message, advice, suggested_client_id)."""
        venue = (params.host, params.port)
        if self._venue is not None and venue != self._venue:
            self._forget_venue()  # another TWS: its conIds, orders and quotes are not this one's
        self._venue = venue
        # Practice orders never enter the record of real ones (and are never reconciled against a real TWS).
        self.journal.reopen(self._practice_journal_path if params.practice else self._real_journal_path)
        return await self._session.connect(params)

    def _forget_venue(self) -> None:
        self._cache.clear()
        self._qualifying.clear()
        self._contracts.clear()
        self._rule_of.clear()
        self._etf.clear()
        self._tick_tables.clear()
        self._reference_prices.clear()
        self._quotes.forget_all()
        self._watched.clear()
        self._orders.forget_all()
        self._account.forget_fills()

    async def disconnect(self) -> None:
        """Disconnect politely and stop auto-reconnect. Safe to call when not connected."""
        await self._session.disconnect()
        self._quotes.on_connection_lost()
        self._orders.mark_stale()

    def set_account(self, account: str) -> None:
        """Choose which managed account the views and new orders use. Raises BrokerError if unknown."""
        accounts = self.accounts
        if account not in accounts:
            raise BrokerError(f"Account {account} is not managed by this login.",
                              f"Use one of: {', '.join(accounts) or 'none (connect first)'}.")
        if account == self._session.status.account:
            return
        self._session.set_account(account)
        if self._session.connected:
            self._account_task = asyncio.ensure_future(self._account.select(account))

    def _settle_queued(self, reason: str) -> int:
        """Orders still waiting in the pacer will never be sent: NotSent in their views and the journal."""
        if self._pacer is None:
            return 0
        dropped = self._pacer.drop_queued()
        if not dropped:
            return 0
        settled = self._orders.settle_unsent(dropped, reason)
        if settled:
            log.warning("%d queued order(s) were not sent (%s); the journal says NotSent", settled, reason)
        return settled

    def _settle_dropped(self) -> None:
        self._settle_queued(DROPPED_NOT_SENT)

    async def close(self) -> None:
        """Disconnect and close the journal (app shutdown). Orders still queued for sending are settled as
        NotSent in the journal first; ``not_sent_at_shutdown`` says how many."""
        self.not_sent_at_shutdown = self._settle_queued(SHUTDOWN_NOT_SENT)
        # Shared symbol lookups are shielded from their callers; at shutdown nobody is left to wait for them.
        lookups = list(self._qualifying.values())
        self._qualifying.clear()
        for lookup in lookups:
            lookup.cancel()
        await asyncio.gather(*lookups, return_exceptions=True)
        await self.disconnect()
        task, self._account_task = self._account_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.journal.close()

    def _session_info(self) -> tuple[str, tuple[str, ...], str | None]:
        """(why orders are blocked, or "" when they are not; managed accounts; selected account)."""
        status = self._session.status
        reason = ""
        if status.params is not None and status.params.readonly:
            reason = "This session is read-only, so orders are blocked: reconnect with read-only off to trade."
        elif self._session.tws_readonly:
            reason = ("TWS is in Read-Only API mode, so orders are blocked: untick 'Read-Only API' in TWS > "
                      "Configure > API > Settings, then reconnect.")
        return reason, status.accounts, status.account

    def _connection_problem(self) -> str:
        status = self._session.status
        if status.stale:
            return f"{status.stale_reason}: the order was not sent. {STALE_ADVICE}"
        return ""

    def _on_status(self, status: ConnectionStatus) -> None:
        if status.state is ConnectionState.DEGRADED or status.stale:
            self._quotes.set_stale(True)
        elif status.state is ConnectionState.CONNECTED:
            self._quotes.set_stale(False)
        self.state_changed.emit(status)

    def _on_lost(self) -> None:
        self._quotes.on_connection_lost()
        self._orders.mark_stale()

    def _on_data_lost(self) -> None:
        self._quotes.resubscribe()

    async def _on_ready(self, reconnected: bool) -> None:
        """After every (re)connect: account stream, orders, journal reconcile, fills, P&L, quotes."""
        status = self._session.status
        # a TWS whose id sequence restarted would hand out ids the journal has seen: start above all of them
        seen = self.journal.highest_order_id(status.accounts)
        if seen:
            self._ib.client.updateReqId(seen + 1)
        account = status.account
        if account:
            # TWS streams one account's portfolio at a time: the session asked for it at API start
            await self._account.select(account, requested=self._session.take_account_stream(account))
        full_sync = not status.readonly  # without open / completed orders a reconcile would guess
        if full_sync:
            try:  # ib_async read this client's open orders; orders of other clients matter for the journal
                await asyncio.wait_for(self._ib.reqAllOpenOrdersAsync(), _SYNC_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("all-open-orders request timed out; journal reconcile limited to this client")
                full_sync = False
            except Exception:  # noqa: BLE001
                log.warning("all-open-orders request failed", exc_info=True)
                full_sync = False
        if full_sync and any(e.status == OrderStatus.UNCONFIRMED.value or e.account in status.accounts
                             for e in self.journal.unsettled()):
            # ib_async's startup sync shrugs off timeouts; before declaring an order "never sent" or
            # "unknown at TWS", read completed orders and executions again and insist on an answer
            try:
                await asyncio.wait_for(self._ib.reqCompletedOrdersAsync(False), _SYNC_TIMEOUT)
                await asyncio.wait_for(self._ib.reqExecutionsAsync(), _SYNC_TIMEOUT)
            except Exception:  # noqa: BLE001 - timeout or refusal: settle nothing as unsent this time
                log.warning("could not re-read completed orders / executions; unconfirmed entries stay open",
                            exc_info=True)
                full_sync = False
        self._orders.resync()
        self._reconcile(full_sync, status.accounts)
        self._orders.settle_from_journal(self.last_reconcile)
        self._account.resync(status.accounts)
        self._quotes.resubscribe()  # after a reconnect, or a disconnect / connect to the same TWS

    def _reconcile(self, full_sync: bool, accounts: tuple[str, ...] = ()) -> None:
        seen: list[journal_mod.SeenOrder] = []
        for trade in self._ib.trades():
            order = trade.order
            if order.whatIf:
                continue
            parsed = journal_mod.parse_order_ref(order.orderRef)
            state = trade.orderStatus
            # completed orders carry no ORDER_STATUS: their filled size is on the order itself
            filled = dec(state.filled) or dec(getattr(order, "filledQuantity", None))
            seen.append(journal_mod.SeenOrder(
                journal_id=parsed[0] if parsed else None, leg=parsed[1] if parsed else None,
                order_id=order.orderId or None, perm_id=int_id(order.permId) or int_id(state.permId),
                status=state.status if state.status in _TWS_STATUSES else None,
                filled=filled, avg_fill_price=known_price(state.avgFillPrice) if filled else None,
                client_id=order.clientId or None,
            ))
        for fill in self._ib.fills():
            parsed = journal_mod.parse_order_ref(fill.execution.orderRef)
            if parsed is None:
                continue
            seen.append(journal_mod.SeenOrder(
                journal_id=parsed[0], leg=parsed[1], order_id=fill.execution.orderId or None,
                perm_id=int_id(fill.execution.permId), status=None, client_id=fill.execution.clientId or None,
            ))
        try:
            self.last_reconcile = self.journal.reconcile(seen, full_sync=full_sync, accounts=accounts)
        except Exception:  # noqa: BLE001 - reconcile trouble must not block the connection
            log.exception("journal reconcile failed")

    def _on_ib_error(self, req_id: int, code: int, text: str, contract: object = None) -> None:
        info = ib_codes.describe(code, text)
        self.notice.emit(Notice(
            time=datetime.now(timezone.utc), code=code, text=text, message=info.message,
            advice=info.advice, severity=info.severity, req_id=req_id,
        ))

    def _watch_price(self, instrument: Instrument) -> None:
        """Stream quotes for a held instrument (once per conId) so positions of accounts TWS does not
        stream a portfolio for still get a market price, value and P&L."""
        con_id = instrument.con_id or 0
        if not con_id or con_id in self._watched or not self._session.connected:
            return
        self._watched.add(con_id)

        def done(task: asyncio.Future) -> None:
            if task.cancelled() or task.exception() is not None:
                self._watched.discard(con_id)  # try again on the next position update / reconnect
                if not task.cancelled():
                    log.info("no quotes for held %s: %s", instrument.display, task.exception())

        try:
            asyncio.ensure_future(self._quotes.subscribe(instrument)).add_done_callback(done)
        except RuntimeError:  # no running loop (shutdown)
            self._watched.discard(con_id)

    # --- symbols and rules ------------------------------------------------------------------
    async def resolve(self, text: str, market: Market | None = None) -> Instrument:
        """Parse what the user typed and qualify it with IB (cached). Raises SymbolError."""
        spec = parse_symbol(text, market)
        cached = self._cache.get(spec)
        if cached is not None:
            return cached
        if not self._session.connected:
            raise NotConnected()
        # callers asking for the same stock at once share one lookup (a burst of quotes is one request each)
        pending = self._qualifying.get(spec.key)
        if pending is None:
            pending = asyncio.ensure_future(self._qualify(spec))
            self._qualifying[spec.key] = pending
            pending.add_done_callback(lambda done, key=spec.key: self._qualified(key, done))
        return await asyncio.shield(pending)

    def _qualified(self, key: object, done: asyncio.Future) -> None:
        if self._qualifying.get(key) is done:
            del self._qualifying[key]
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have given up waiting

    async def _qualify(self, spec: SymbolSpec) -> Instrument:
        probe = Contract(secType="STK", symbol=spec.symbol, exchange=spec.exchange, currency=spec.currency)
        started = asyncio.get_running_loop().time()
        try:
            details_list = await asyncio.wait_for(self._ib.reqContractDetailsAsync(probe), 10)
        except asyncio.TimeoutError as exc:
            if self._quotes.paced_since(started):
                raise PacingLimit(f"IB did not answer the lookup of {spec.display} in time.", PACING_MESSAGE) from exc
            raise BrokerTimeout(f"IB did not answer the lookup of {spec.display} in time.", "Try again.") from exc
        except RequestError as exc:
            if exc.code != 200:  # 200 = no such contract, said below in our words
                info = ib_codes.describe(exc.code, exc.message)
                raise SymbolError(f"IB refused the lookup of {spec.display}: {info.message}", info.advice) from exc
            details_list = []
        details_list = [d for d in details_list or [] if d.contract and d.contract.secType == "STK"]
        if not details_list:
            raise SymbolError(f"IB has no {'Hong Kong' if spec.market is Market.HK else 'US'} stock {spec.display}.",
                              "Check the symbol (US tickers such as AAPL, HK codes such as 700).")
        index = 0
        if len(details_list) > 1:
            index = choose_primary_exchange([d.contract.primaryExchange for d in details_list]) or 0
        details = details_list[index]
        contract = details.contract
        lot = board_lot(spec.market, contract.symbol, details.minSize, details.sizeIncrement)
        exchanges = split_list(details.validExchanges)
        rules = rule_ids(details.marketRuleIds)
        if rules:
            wanted = spec.exchange
            rule = rules[exchanges.index(wanted)] if wanted in exchanges and exchanges.index(wanted) < len(rules) \
                else rules[0]
            self._rule_of[contract.conId] = rule
        if (details.stockType or "").upper() == "ETF" or (spec.market is Market.HK and is_hk_etf(contract.symbol)):
            self._etf.add(contract.conId)
        instrument = Instrument(
            symbol=contract.symbol, market=spec.market, exchange=spec.exchange, currency=contract.currency,
            con_id=contract.conId, primary_exchange=contract.primaryExchange or None,
            long_name=details.longName or None, local_symbol=contract.localSymbol or None,
            min_tick=dec(details.minTick), board_lot=lot.size, lot_source=lot.source, market_rule_ids=rules,
            order_types=split_list(details.orderTypes), time_zone=details.timeZoneId or None,
            trading_hours=details.tradingHours or None, liquid_hours=details.liquidHours or None,
        )
        contract.exchange = spec.exchange  # route SMART for US even if IB answered with a venue
        self._contracts[contract.conId] = contract
        self._cache.put(spec, instrument)
        return instrument

    def _contract(self, instrument: Instrument) -> Contract:
        """The ib_async Contract to send for an instrument (internal: never handed past broker/)."""
        known = self._contracts.get(instrument.con_id or 0)
        if known is not None:
            return known
        return Contract(secType="STK", conId=instrument.con_id or 0, symbol=instrument.symbol,
                        exchange=instrument.exchange, currency=instrument.currency,
                        primaryExchange=instrument.primary_exchange or "")

    def _instrument_for(self, contract: Contract) -> Instrument:
        """Our Instrument for a contract TWS sent (resolved one if cached, else a bare one)."""
        known = self._cache.by_con_id(contract.conId) if contract.conId else None
        return known if known is not None else bare_instrument(contract)

    async def tick_table(self, instrument: Instrument) -> TickTable:
        """IB's market rule for the instrument's exchange, else the fallback table (``.source`` says which)."""
        con_id = instrument.con_id or 0
        rule = self._rule_of.get(con_id)
        if rule is not None:
            table = self._tick_tables.get(rule)
            if table is None and self._session.connected:
                try:
                    increments = await self._ib.reqMarketRuleAsync(rule)
                except RequestError:
                    increments = None  # fall back to the built-in table below (its .source says so)
                if increments:
                    table = TickTable.from_market_rule(increments, source=f"IB market rule {rule}")
                    self._tick_tables[rule] = table
            if table is not None:
                return table
        return fallback_tick_table(instrument.market, etf=con_id in self._etf)

    async def reference_price(self, instrument: Instrument) -> Decimal | None:
        """The last trade (else mid, else close) for the fat-finger rule; None when none is to be had.

        A streamed quote is used as is; otherwise one snapshot, remembered for a few seconds so a
        burst of orders in an unwatched stock does not wait for a quote each time.
        """
        con_id = instrument.con_id or 0
        price = self._quotes.last_price(instrument, max_age=_REFERENCE_MAX_AGE)
        if price is None:
            loop = asyncio.get_running_loop()
            remembered = self._reference_prices.get(con_id)
            if remembered is not None and loop.time() - remembered[1] < _REFERENCE_MAX_AGE:
                return remembered[0]
            if not self._session.connected:
                return None
            try:
                quote = await self._quotes.snapshot(instrument, _REFERENCE_SNAPSHOT_TIMEOUT)
            except (BrokerTimeout, BrokerError):
                return None  # no price: the order checks refuse (fail closed); nothing remembered, the next asks again
            price = quote.last if quote.last is not None else (
                (quote.bid + quote.ask) / 2 if quote.bid is not None and quote.ask is not None else quote.close)
            if price is None:
                return None
            self._reference_prices[con_id] = (dec(price), loop.time())
        return dec(price)

    # --- orders -----------------------------------------------------------------------------
    async def check(self, request: OrderRequest) -> tuple[ValidationIssue, ...]:
        """Every rule the request breaks (empty when it may be sent). Sends nothing."""
        issues, _instrument = await self._orders.check(request)
        return issues

    async def place(self, request: OrderRequest) -> OrderView:
        """Validate (raises OrderRejected), journal the intent, send. Returns the first snapshot."""
        return await self._orders.place(request)

    async def preview(self, request: OrderRequest, timeout: float = 5.0) -> WhatIf:
        """What-if: commission and margin change. Validates first. Raises BrokerTimeout."""
        return await self._orders.preview(request, timeout)

    async def modify(
        self,
        order_id: int,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> OrderView:
        """Change a working order (validated like a new one). Raises OrderNotFound / NotCancellable."""
        return await self._orders.modify(order_id, quantity=quantity, limit_price=limit_price, stop_price=stop_price)

    async def put_in_oca(self, order_ids: list[int], group: str, oca_type: int = 1) -> list[OrderView]:
        """Group working orders of one account one-cancels-all (each is modified with ocaGroup / ocaType)."""
        return await self._orders.put_in_oca(order_ids, group, oca_type)

    async def cancel(self, order_id: int, timeout: float = 5.0) -> OrderView:
        """Cancel and wait until the exchange confirms. Raises OrderNotFound, NotCancellable, BrokerTimeout."""
        return await self._orders.cancel(order_id, timeout)

    async def cancel_all(self) -> None:
        """Global cancel (every open order of every client on this TWS)."""
        await self._orders.cancel_all()

    def open_orders(self) -> tuple[OrderView, ...]:
        return self._orders.open_orders()

    def completed_orders(self) -> tuple[OrderView, ...]:
        return self._orders.completed_orders()

    def order(self, order_id: int) -> OrderView | None:
        return self._orders.order(order_id)

    def order_for_journal(self, journal_id: str) -> OrderView | None:
        """The live view of the order the journal knows as ``journal_id`` (its orderRef), or None."""
        return self._orders.order_for_journal(journal_id)

    def fills(self) -> tuple[Fill, ...]:
        return self._account.fills()

    # --- account ----------------------------------------------------------------------------
    @property
    def accounts(self) -> tuple[str, ...]:
        return self._session.status.accounts

    def account_summary(self, account: str | None = None) -> AccountSummary | None:
        return self._account.summary(account)

    def positions(self, account: str | None = None, closed_today: bool = False) -> tuple[Position, ...]:
        """Held positions; ``closed_today`` adds those closed to 0 this session (their realized P&L)."""
        return self._account.positions(account, closed_today)

    def pnl(self, account: str | None = None) -> PnL | None:
        return self._account.pnl(account)

    def pnl_single(self, account: str, con_id: int) -> tuple[float | None, float | None] | None:
        """(daily, unrealized) of one position from IB's single-position P&L, in the base currency."""
        return self._account.pnl_single(account, con_id)

    # --- market data ------------------------------------------------------------------------
    async def subscribe(self, instrument: Instrument) -> Quote:
        """Stream quotes for the instrument (idempotent, reference counted); falls back to delayed."""
        return await self._quotes.subscribe(instrument)

    def unsubscribe(self, instrument: Instrument) -> None:
        self._quotes.unsubscribe(instrument)

    async def snapshot(self, instrument: Instrument, timeout: float = 5.0) -> Quote:
        """One quote (from the stream if subscribed). Raises BrokerTimeout."""
        return await self._quotes.snapshot(instrument, timeout)

    def quote(self, instrument: Instrument) -> Quote | None:
        """The latest streamed quote, or None."""
        return self._quotes.quote(instrument)

    async def bars(self, instrument: Instrument, duration: str = "1 D", bar_size: str = "5 mins") -> tuple[Bar, ...]:
        """Historical bars (TRADES) for the chart."""
        if not self._session.connected:
            raise NotConnected()
        return await self._quotes.bars(instrument, duration, bar_size)

    # --- journal ----------------------------------------------------------------------------
    def export_journal_csv(self, path: Path) -> int:
        """Write the order journal to CSV; returns the number of rows."""
        return self.journal.export_csv(path)


class _Catalog:
    """What the order book may ask the broker (symbols, contracts, rules, prices); keeps ib objects inside."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def resolve(self, text: str, market: Market | None = None) -> Instrument:
        return await self._broker.resolve(text, market)

    def contract(self, instrument: Instrument) -> Contract:
        return self._broker._contract(instrument)

    async def tick_table(self, instrument: Instrument) -> TickTable:
        return await self._broker.tick_table(instrument)

    async def reference_price(self, instrument: Instrument) -> Decimal | None:
        return await self._broker.reference_price(instrument)

    def instrument_for(self, contract: Contract) -> Instrument:
        return self._broker._instrument_for(contract)
