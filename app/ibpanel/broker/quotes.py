"""Quotes: reference-counted streaming subscriptions, snapshots, delayed fallback, historical bars.

One ``quotes_updated`` emit per ib_async packet (``pendingTickersEvent``), carrying every quote
that changed in it. When the account has no live data for a stock (10167, 354, 10089) we switch
the connection to delayed data (``reqMarketDataType(3)``: TWS then sends delayed where live is
missing and live where it is available) and re-request; every Quote says which kind it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from ib_async import IB, Contract, Ticker
from ib_async.wrapper import RequestError

from ibpanel.broker import ib_codes
from ibpanel.broker.convert import bar_model, quote_model
from ibpanel.broker.exceptions import PACING_MESSAGE, BrokerError, BrokerTimeout, NotConnected, PacingLimit
from ibpanel.broker.models import Bar, Instrument, MarketDataType, Quote

log = logging.getLogger(__name__)

#: IB codes that mean "no live data for this stock on this account".
NO_LIVE_DATA_CODES = frozenset({10167, 354, 10089})
#: TWS refused the line itself: nothing will stream until a line frees up.
LINE_LIMIT_CODE = 101
#: TWS dropped requests: more than 50 messages in a second.
PACING_CODE = 100
NO_LINE_MESSAGE = (
    "No data: IB's market-data line limit is reached (error 101). Remove symbols from the watchlist, "
    "or raise the limit with IB (quote booster); this row fills in when a line frees up."
)
#: ib_async's marketDataType values (1..4) -> MarketDataType, looked up per tick.
_KINDS = {int(kind): kind for kind in MarketDataType}
# How long subscribe() waits for the first tick before returning an empty quote.
_FIRST_TICK_WAIT = 0.5  # short: a watchlist subscribes many at once, closed markets send nothing


class QuoteBook:
    """Streaming quotes keyed by conId. ``on_quotes(tuple[Quote, ...])`` once per packet."""

    def __init__(
        self,
        ib: IB,
        *,
        contract_for: Callable[[Instrument], Contract],
        is_connected: Callable[[], bool],
        on_quotes: Callable[[tuple[Quote, ...]], None],
    ) -> None:
        self.ib = ib
        self._contract_for = contract_for
        self._is_connected = is_connected
        self._on_quotes = on_quotes
        self._refs: dict[int, int] = {}
        self._instruments: dict[int, Instrument] = {}
        self._tickers: dict[int, Ticker] = {}
        self._con_of_ticker: dict[int, int] | None = None  # id(ticker) -> conId, rebuilt after changes
        self._by_req: dict[int, int] = {}  # reqId -> conId
        self._quotes: dict[int, Quote] = {}
        self._last_seen: dict[int, tuple[Quote, float]] = {}  # kept after unsubscribe: recent reference prices
        self._seen_at: dict[int, float] = {}  # conId -> loop time of its last streamed quote
        self._data_type: dict[int, MarketDataType] = {}
        self._waiters: dict[int, list[asyncio.Future]] = {}
        self._no_line: list[int] = []  # conIds refused with 101, oldest first: retried when a line frees up
        self.delayed_mode = False  # reqMarketDataType(3) sent on this connection
        self._stale = False
        self.pacing_seen_at: float | None = None  # loop time of the last error 100
        ib.pendingTickersEvent += self._on_pending
        ib.errorEvent += self._on_error

    # --- subscriptions -------------------------------------------------------------------------
    @staticmethod
    def _con_id(instrument: Instrument) -> int:
        if not instrument.con_id:
            raise BrokerError(f"{instrument.display} is not qualified with IB yet.", "Resolve the symbol first.")
        return instrument.con_id

    def subscribed(self) -> tuple[Instrument, ...]:
        return tuple(self._instruments[c] for c in self._refs)

    async def subscribe(self, instrument: Instrument) -> Quote:
        con_id = self._con_id(instrument)
        if not self._is_connected():
            raise NotConnected()
        self._refs[con_id] = self._refs.get(con_id, 0) + 1
        self._instruments[con_id] = instrument
        if con_id not in self._tickers:
            self._request(con_id)
        quote = self._quotes.get(con_id)
        if quote is None or quote.last is None and quote.bid is None:
            try:
                await asyncio.wait_for(self._wait_first(con_id), _FIRST_TICK_WAIT)
            except asyncio.TimeoutError:
                pass  # the stream is up; the first quote will arrive as an event
        return self._quotes.get(con_id) or Quote(instrument=instrument, data_type=self._kind(con_id))

    def unsubscribe(self, instrument: Instrument) -> None:
        con_id = instrument.con_id
        if not con_id or con_id not in self._refs:
            return
        self._refs[con_id] -= 1
        if self._refs[con_id] > 0:
            return
        del self._refs[con_id]
        ticker = self._tickers.pop(con_id, None)
        self._con_of_ticker = None
        quote = self._quotes.pop(con_id, None)
        seen_at = self._seen_at.pop(con_id, None)
        if quote is not None and seen_at is not None and not quote.unavailable:
            self._last_seen[con_id] = (quote, seen_at)
        self._by_req = {r: c for r, c in self._by_req.items() if c != con_id}
        if con_id in self._no_line:
            self._no_line.remove(con_id)  # TWS never opened that line: nothing to cancel
            return
        if ticker is not None and self._is_connected():
            try:
                self.ib.cancelMktData(ticker.contract)
            except Exception:  # noqa: BLE001 - the line is gone either way
                log.debug("cancelMktData failed", exc_info=True)
            self._retry_no_line()

    def _retry_no_line(self) -> None:
        """A line was freed: give it to the symbol that has waited longest for one."""
        while self._no_line and self._is_connected():
            con_id = self._no_line.pop(0)
            if con_id in self._refs:
                self._request(con_id)
                return

    def _request(self, con_id: int) -> None:
        contract = self._contract_for(self._instruments[con_id])
        ticker = self.ib.reqMktData(contract, "", False, False)
        self._tickers[con_id] = ticker
        self._con_of_ticker = None
        req_id = self.ib.wrapper.ticker2ReqId["mktData"].get(ticker)
        if req_id is not None:
            self._by_req[req_id] = con_id

    async def _wait_first(self, con_id: int) -> None:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(con_id, []).append(future)
        try:
            await future
        finally:
            waiters = self._waiters.get(con_id, [])
            if future in waiters:
                waiters.remove(future)

    def quote(self, instrument: Instrument) -> Quote | None:
        return self._quotes.get(instrument.con_id or 0)

    def last_price(self, instrument: Instrument, max_age: float = 0.0) -> float | None:
        """Last trade, else mid, else close of the streamed quote; with ``max_age`` also a quote seen
        that recently (a snapshot, or a line closed since)."""
        quote = self.quote(instrument)
        if quote is None and max_age > 0:
            seen = self._last_seen.get(instrument.con_id or 0)
            if seen is not None and asyncio.get_running_loop().time() - seen[1] <= max_age and not seen[0].stale:
                quote = seen[0]
        if quote is None:
            return None
        if quote.last is not None:
            return quote.last
        if quote.bid is not None and quote.ask is not None:
            return (quote.bid + quote.ask) / 2
        return quote.close

    def _kind(self, con_id: int) -> MarketDataType:
        ticker = self._tickers.get(con_id)
        raw = getattr(ticker, "marketDataType", 1) if ticker is not None else 1
        kind = _KINDS.get(raw, MarketDataType.LIVE)
        if kind is MarketDataType.LIVE and con_id in self._data_type:
            kind = self._data_type[con_id]  # TWS said 10167 before the MARKET_DATA_TYPE message came
        return kind

    # --- events --------------------------------------------------------------------------------
    def _on_pending(self, tickers: set[Ticker]) -> None:
        """Runs once per packet for every ticker in it: kept free of per-tick lookups that could be hoisted."""
        if self._con_of_ticker is None:
            self._con_of_ticker = {id(t): c for c, t in self._tickers.items()}
        by_ticker = self._con_of_ticker
        instruments, quotes, seen_at, waiters = self._instruments, self._quotes, self._seen_at, self._waiters
        known_kinds = self._data_type
        stale = self._stale
        now = asyncio.get_running_loop().time()
        changed = []
        for ticker in tickers:
            con_id = by_ticker.get(id(ticker))
            if con_id is None:
                continue
            kind = _KINDS.get(getattr(ticker, "marketDataType", 1), MarketDataType.LIVE)
            if kind is MarketDataType.LIVE and known_kinds:
                kind = known_kinds.get(con_id, kind)  # TWS said 10167 before the MARKET_DATA_TYPE message came
            quote = quote_model(ticker, instruments[con_id], kind, stale)
            quotes[con_id] = quote
            seen_at[con_id] = now
            changed.append(quote)
            if waiters and con_id in waiters and (quote.last is not None or quote.bid is not None or quote.ask is not None):
                for waiter in waiters[con_id]:
                    if not waiter.done():
                        waiter.set_result(None)
        if changed:
            self._on_quotes(tuple(changed))

    def _on_error(self, req_id: int, code: int, text: str, contract: object = None) -> None:
        if code == PACING_CODE:
            self.pacing_seen_at = asyncio.get_running_loop().time()
            return
        if code not in NO_LIVE_DATA_CODES and code != LINE_LIMIT_CODE:
            return
        con_id = self._by_req.get(req_id)
        if con_id is None and contract is not None:
            con_id = getattr(contract, "conId", None)
        if con_id is None or con_id not in self._refs:
            return
        if code == LINE_LIMIT_CODE:
            self._on_no_line(con_id, req_id)
            return
        self._data_type[con_id] = MarketDataType.DELAYED
        if code == 10167:
            return  # TWS already streams delayed ticks for it
        # 354 / 10089: nothing will come until we ask for delayed data and request again
        if not self.delayed_mode:
            self.delayed_mode = True
            self.ib.reqMarketDataType(MarketDataType.DELAYED)
        asyncio.get_running_loop().call_soon(self._rerequest, con_id)

    def _on_no_line(self, con_id: int, req_id: int) -> None:
        """TWS refused the line (101): say so on the quote instead of showing an empty "live" row."""
        self._tickers.pop(con_id, None)  # never opened at TWS, so never cancelled either (that would be error 300)
        self._con_of_ticker = None
        self._by_req.pop(req_id, None)
        if con_id not in self._no_line:
            self._no_line.append(con_id)
        quote = Quote(instrument=self._instruments[con_id], data_type=self._kind(con_id), stale=self._stale,
                      unavailable=NO_LINE_MESSAGE)
        self._quotes[con_id] = quote
        self._on_quotes((quote,))

    def _rerequest(self, con_id: int) -> None:
        if con_id not in self._refs or not self._is_connected():
            return
        old = self._tickers.pop(con_id, None)
        self._con_of_ticker = None
        if old is not None:
            try:
                self.ib.cancelMktData(old.contract)
            except Exception:  # noqa: BLE001
                log.debug("cancelMktData failed", exc_info=True)
        self._request(con_id)

    # --- connection changes --------------------------------------------------------------------
    def set_stale(self, stale: bool) -> None:
        """Mark every quote stale (link down / degraded) or fresh again, and tell the views once."""
        if stale == self._stale:
            return
        self._stale = stale
        if self._quotes:
            self._quotes = {c: replace(q, stale=stale) for c, q in self._quotes.items()}
            self._on_quotes(tuple(self._quotes.values()))

    def on_connection_lost(self) -> None:
        self.set_stale(True)
        self._tickers.clear()  # ib_async reset its tickers; ours point at dead objects
        self._con_of_ticker = None
        self._by_req.clear()
        self.delayed_mode = False

    def forget_all(self) -> None:
        """Drop every subscription (a different TWS: its conIds may not match); viewers subscribe again."""
        self.on_connection_lost()
        self._last_seen.clear()
        self._seen_at.clear()
        self._refs.clear()
        self._instruments.clear()
        self._quotes.clear()
        self._data_type.clear()
        self._no_line.clear()
        self._stale = False

    def resubscribe(self) -> None:
        """After a reconnect (or 1101): the same subscriptions again, delayed mode restored if it was needed."""
        self._con_of_ticker = None
        for con_id in list(self._tickers):
            ticker = self._tickers.pop(con_id)
            try:
                self.ib.cancelMktData(ticker.contract)
            except Exception:  # noqa: BLE001
                log.debug("cancelMktData failed", exc_info=True)
        self._by_req.clear()
        if any(k is not MarketDataType.LIVE for k in self._data_type.values()):
            self.delayed_mode = True
            self.ib.reqMarketDataType(MarketDataType.DELAYED)
        self._no_line.clear()  # every subscription is asked for again; TWS answers 101 again if still full
        for con_id in list(self._refs):
            self._request(con_id)
        self.set_stale(False)

    # --- snapshot and bars ---------------------------------------------------------------------
    def paced_since(self, started: float) -> bool:
        """Whether TWS refused a request for pacing (error 100) at or after loop time ``started``."""
        return self.pacing_seen_at is not None and self.pacing_seen_at >= started

    async def snapshot(self, instrument: Instrument, timeout: float) -> Quote:
        con_id = self._con_id(instrument)
        quote = self._quotes.get(con_id)
        if quote is not None and (quote.last is not None or quote.bid is not None):
            return quote
        if not self._is_connected():
            raise NotConnected()
        self._refs[con_id] = self._refs.get(con_id, 0) + 1
        self._instruments[con_id] = instrument
        started = asyncio.get_running_loop().time()
        if con_id not in self._tickers:
            self._request(con_id)
        try:
            await asyncio.wait_for(self._wait_first(con_id), timeout)
            return self._quotes[con_id]
        except asyncio.TimeoutError as exc:
            if self.paced_since(started):  # TWS dropped requests: no guess about the market
                raise PacingLimit(f"No quote for {instrument.display} within {timeout:g} s.", PACING_MESSAGE) from exc
            raise BrokerTimeout(f"No quote for {instrument.display} within {timeout:g} s.",
                                "The market may be closed or the data not subscribed; try again.") from exc
        finally:
            self.unsubscribe(instrument)

    async def bars(self, instrument: Instrument, duration: str, bar_size: str, timeout: float = 20.0) -> tuple[Bar, ...]:
        if not self._is_connected():
            raise NotConnected()
        contract = self._contract_for(instrument)
        try:
            bars = await asyncio.wait_for(self.ib.reqHistoricalDataAsync(
                contract, endDateTime="", durationStr=duration, barSizeSetting=bar_size,
                whatToShow="TRADES", useRTH=False, formatDate=2, timeout=0), timeout)
        except asyncio.TimeoutError as exc:
            raise BrokerTimeout(f"No chart data for {instrument.display} within {timeout:g} s.",
                                "IB paces historical requests; wait a few seconds and try again.") from exc
        except RequestError as exc:
            info = ib_codes.describe(exc.code, exc.message)
            raise BrokerError(f"No chart data for {instrument.display}: {info.message} ({exc.code})",
                              info.advice) from exc
        return tuple(bar_model(b) for b in bars or ())
