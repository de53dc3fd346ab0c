"""Market data: subscriptions, snapshots, delayed data and the quote fan-out of every clock step
(the exchange's hot path).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P
from ibpanel.sim.handlers.contracts import TEXT_NO_SECURITY
from ibpanel.sim.handlers.orders import _num
from ibpanel.sim.market import PracticeMarket, SimInstrument
from ibpanel.sim.protocol.codec import LENGTH_TEXTS, length_text
from ibpanel.sim.protocol.messages import TICK_PRICE, TICK_SIZE, TICK_STRING

if TYPE_CHECKING:
    from ibpanel.sim.transport import ClientSession


TEXT_NOT_SUBSCRIBED = ("Requested market data is not subscribed. Delayed market data is available."
                       "Error&{exchange}/TOP/ALL")
TEXT_DELAYED = "Requested market data is not subscribed. Displaying delayed market data."
TEXT_DUPLICATE_TICKER = "Duplicate ticker id"
TEXT_MAX_TICKERS = "Max number of tickers has been reached"
SHORTABLE_SHARES = 10_000_000  # tick 89 of generic tick 236
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
# tick types: (bid, ask, last, bid size, ask size, last size, high, low, volume, close, open)
LIVE_TICKS = (1, 2, 4, 0, 3, 5, 6, 7, 8, 9, 14)
DELAYED_TICKS = (66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76)


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
        self.prefixes = (f"{TICK_SIZE}\x006\x00{req_id}\x00", f"{TICK_PRICE}\x006\x00{req_id}\x00",
                         f"{TICK_STRING}\x006\x00{req_id}\x00")
        # the 11 quote ticks, then the last trade's timestamp (45, delayed 88)
        self.tick_texts = tuple(str(t) for t in (DELAYED_TICKS if delayed else LIVE_TICKS)) + (
            "88" if delayed else "45",)
        self.rt_volume = rt_volume  # generic tick 233: RTVolume strings (tick 48) with every print


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

    A state is an 11-tuple in LIVE_TICKS order. ``PracticeMarket.top`` builds Decimals and a fresh ``Top`` per call,
    too slow for 1000 symbols x several updates/s; ``PracticeMarket.quote_units`` gives integer states in the
    instrument's tick grid, and prices are formatted through a per-grid text cache. A self-check at start
    compares both paths and falls back to ``PracticeMarket.top`` if they ever disagree.
    """

    def __init__(self, market: PracticeMarket):
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
    payload = f"{TICK_PRICE}\x006\x00{req}\x00{tick_type}\x00{price}\x00{size}\x00{mask}\x00"
    return length_text(len(payload)) + payload


def _tick_string_text(req: str, tick_type: str, value: str) -> str:
    payload = f"{TICK_STRING}\x006\x00{req}\x00{tick_type}\x00{value}\x00"
    return length_text(len(payload)) + payload


def _tick_size_text(req: str, tick_type: int, size: str) -> str:
    payload = f"{TICK_SIZE}\x006\x00{req}\x00{tick_type}\x00{size}\x00"
    return length_text(len(payload)) + payload


class MarketDataHandlers:
    """SimServer's market data part (mixed into SimServer; state lives on the server)."""

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
        """After a pause in streaming to ``session``: every line that moved meanwhile gets its full current quote.

        Only those: a refresh of every line (1,000 lines: ~9,000 messages) can itself fill the socket and
        pause the client again, and then the refreshes follow one another instead of the market.
        """
        missed, session.missed = session.missed, set()
        for sub in session.subs.values():
            if sub.con_id in missed:
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
        length = LENGTH_TEXTS
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
                if session.closed:
                    continue
                if session.paused:
                    session.missed.add(con_id)  # conflated: its newest quote goes out when the client drains
                    continue
                prefixes = sub.prefixes
                ticks = sub.tick_texts
                append = session._out.append
                for is_price, i, rest in moved:
                    body = prefixes[is_price] + ticks[i] + rest
                    size = len(body)
                    append((length[size] if size < 4096 else length_text(size)) + body)
                if new_print and sub.rt_volume:
                    if rt_volume is None:
                        rt_volume = f"48\x00{self._rt_volume_text(con_id)}\x00"
                    body = prefixes[2] + rt_volume
                    append(length_text(len(body)) + body)
                touched.add(session)
        for session in touched:
            session.schedule_flush()
