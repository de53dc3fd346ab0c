"""Order lifecycle and matching of the practice exchange.

Over 500 lines because validation, the lifecycle of every order type and persistence share one order book;
the prices and moments of the special order types live in sim/order_types.py.

The exchange validates orders the way TWS does (same error codes and texts), keeps working orders,
matches them against ``PracticeMarket`` quotes (walking the synthetic book for size), books fills in
``Accounts`` and reports everything to one listener callable as events, in order:

- ``OrderUpdated``   -> the server sends OPEN_ORDER + ORDER_STATUS
- ``Executed``       -> EXECUTION_DATA then COMMISSION_REPORT
- ``OrderError``     -> ERR_MSG to the owning client, reqId = order id
- ``AccountTouched`` -> account values / portfolio / positions changed
- ``WhatIfResult``   -> OPEN_ORDER with whatIf=1 and the margins, no ORDER_STATUS

Events carry copies of the order, so a listener may keep them. Choices where TWS behaviour was not
pinned down (documented in the final report too):
- a rejected new order gets its OrderError and then status "Inactive" (IB: "rejected or canceled");
- stop orders show "PreSubmitted" until triggered (IB simulates stops), then "Submitted";
- an order placed while its market is closed (session_mode "real") is held "PreSubmitted";
- HK short sales are refused (docs/markets.md: designated securities only; kept out of practice mode);
- trailing stops show "PreSubmitted" until triggered (IB simulates them), each move of the stop is an
  openOrder update with the new trailStopPrice; MOC/LOC/OPG/AUC orders wait "Submitted" for their auction
  (the calendar's real open or close, also in "always open" practice) and fill whole at the last price then;
  a LOC/LOO/at-auction order the auction does not fill is cancelled, an at-auction limit order unfilled at
  the HK pre-opening auction carries on as a DAY limit order; GTD orders are cancelled at their time;
- an HK order below one board lot goes to the odd-lot book and fills whole at the touch; odd quantities
  above one lot are refused (321), and odd lots cannot join an auction;
- an order that would push initial margin above equity is rejected with 201 like TWS.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from ibpanel.sim import calendars
from ibpanel.sim import order_types as ot
from ibpanel.sim.accounts import Accounts, tidy
from ibpanel.sim.market import PracticeMarket, SimInstrument

log = logging.getLogger(__name__)
_RUNS = itertools.count()  # exchanges made in this process
UTC = timezone.utc
ZERO = Decimal(0)
WORKING_STATES = ("PendingSubmit", "PreSubmitted", "Submitted")
DONE_STATES = ("Filled", "Cancelled", "Inactive")
ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MOC", "LOC", "REL", "MTL")
TIFS = ("DAY", "GTC", "IOC", "FOK", "GTD", "OPG", "AUC")
_LIMIT_TYPES = ("LMT", "STP LMT", "LOC")  # a limit price is required
_STOP_TYPES = ("STP", "STP LMT")
_BOOK_DEPTH = 5
_MAX_QUANTITY = Decimal(1_000_000_000)
_MAX_PRICE = Decimal(10_000_000)  # above any listed stock; the HK table itself ends at 9,995
_UNSET_PRICE = Decimal("1e300")  # the wire's UNSET_DOUBLE (1.7976931348623157E308) means "no price"
# SMART fills are reported with the venue that executed them, as TWS does
_VENUE = {"NASDAQ": "ISLAND", "NYSE": "NYSE", "ARCA": "ARCA", "AMEX": "AMEX", "BATS": "BATS", "SEHK": "SEHK"}

TEXT_NO_SECURITY = "No security definition has been found for the request"
TEXT_OFF_TICK = "The price does not conform to the minimum price variation for this contract."
TEXT_ODD_LOT = "Error validating request.-'v' : cause - Order size does not conform to market rule."
TEXT_DUPLICATE = "Duplicate order id"
TEXT_CANCELLED = "Order Canceled - reason:"
TEXT_NOT_CANCELLABLE = "Cancel attempted when order is not in a cancellable state.  Order permId ="
TEXT_NOT_FOUND = "OrderId {order_id} that needs to be cancelled is not found."
TEXT_UNSUPPORTED_TYPE = "Unsupported order type for this exchange and security type."
# TWS's warning when it drops outsideRth from an order type that cannot trade outside regular hours (MKT)
TEXT_RTH_IGNORED = ("Order Event Warning:Attribute 'Outside Regular Trading Hours' is ignored based on the order "
                    "type and destination. PlaceOrder is now being processed.")
# Order types for which IB ignores outsideRth (warning 2109): they wait for the regular session.
_RTH_ONLY_TYPES = frozenset({"MKT"})


@dataclass
class SimOrder:
    """Everything the server needs to echo OPEN_ORDER / ORDER_STATUS faithfully."""

    client_id: int
    order_id: int
    perm_id: int = 0
    account: str = ""
    con_id: int = 0
    action: str = "BUY"
    total_qty: Decimal = ZERO
    order_type: str = "LMT"  # MKT, LMT, STP, STP LMT; anything else -> 387 and Inactive
    lmt_price: Decimal | None = None
    aux_price: Decimal | None = None
    tif: str = "DAY"  # DAY, GTC, IOC, FOK
    outside_rth: bool = False
    order_ref: str = ""
    parent_id: int = 0
    transmit: bool = True
    oca_group: str = ""
    what_if: bool = False
    status: str = "PendingSubmit"  # PreSubmitted, Submitted, Filled, Cancelled, Inactive
    filled: Decimal = ZERO
    avg_fill_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    created: datetime | None = None
    completed_time: datetime | None = None
    completed_status: str = ""
    extra: dict = field(default_factory=dict)  # wire fields the server keeps and echoes
    commission_charged: Decimal = ZERO  # commission booked so far (the per-order minimum applies once)
    triggered: bool = False  # a STP / STP LMT whose stop was touched

    @property
    def remaining(self) -> Decimal:
        return self.total_qty - self.filled

    @property
    def is_working(self) -> bool:
        return self.status in WORKING_STATES

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    @property
    def key(self) -> tuple[int, int]:
        return self.client_id, self.order_id


@dataclass(frozen=True)
class SimExecution:
    exec_id: str  # e.g. "0000e0d5.6740a2b1.01.01"
    time: datetime
    account: str
    exchange: str
    side: str  # "BOT" / "SLD"
    shares: Decimal
    price: Decimal
    perm_id: int
    client_id: int
    order_id: int
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str
    con_id: int
    commission: Decimal
    commission_currency: str
    realized_pnl: Decimal | None  # None for an opening fill (the wire then carries UNSET_DOUBLE)


@dataclass(frozen=True)
class OrderUpdated:
    order: SimOrder


@dataclass(frozen=True)
class Executed:
    order: SimOrder
    execution: SimExecution


@dataclass(frozen=True)
class OrderError:
    order: SimOrder
    code: int
    text: str


@dataclass(frozen=True)
class AccountTouched:
    account: str


@dataclass(frozen=True)
class WhatIfResult:
    order: SimOrder
    margins: dict


class _Rejected(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


def _trades_outside_rth(order: SimOrder) -> bool:
    """outsideRth as IB applies it: ignored (warning 2109) for order types that trade in regular hours only."""
    return bool(order.outside_rth) and order.order_type not in _RTH_ONLY_TYPES


def _trading_day(inst: SimInstrument, when: datetime, outside_rth: bool) -> date:
    """The session day an order placed at ``when`` belongs to: after that day's close (the closing auction in
    HK, after-hours with outsideRth in the US), the next session day of the exchange calendar."""
    local_day = when.astimezone(ZoneInfo(inst.time_zone)).date()
    for offset in range(15):
        day = local_day + timedelta(days=offset)
        sd = calendars.session_on(inst.market, day)
        if sd is None:
            continue
        if inst.market == "HK":
            end = sd.close + timedelta(minutes=10)
        else:
            end = sd.close + (calendars.US_EXTENDED_AFTER if outside_rth else timedelta(0))
        if offset or when < end:
            return day
    return local_day


def _as_decimal(value: object) -> Decimal | None:
    """Decimal of a number or numeric text; None for anything else (never raises)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value)) if isinstance(value, (int, float, str)) else None
    except (InvalidOperation, ValueError):
        return None


def _snapshot(order: SimOrder) -> SimOrder:
    return replace(order, extra=dict(order.extra))


class Exchange:
    """Order book and order lifecycle over a ``PracticeMarket`` and ``Accounts``; not thread-safe (one loop)."""

    def __init__(self, market: PracticeMarket, accounts: Accounts, listener: Callable[[object], None],
                 clock: Callable[[], datetime] | None = None):
        self.market = market
        self.accounts = accounts
        self.listener = listener
        self.clock = clock or market.clock
        self._orders: dict[tuple[int, int], SimOrder] = {}
        self._working_by_con: dict[int, dict[tuple[int, int], SimOrder]] = {}
        self._executions: list[SimExecution] = []
        # permIds and execIds that differ from a previous run's, even without --state: milliseconds, plus a
        # count of the exchanges made in this process (two started in the same second - a restart in a test -
        # must not hand out the same permIds and execIds, which IB never repeats)
        start = int(self.clock().timestamp() * 1000) + next(_RUNS)
        self._next_perm_id = 1_000_000_000 + (start % 1_000_000) * 1000
        self._exec_prefix = start & 0xFFFFFFFF
        self._exec_seq = 1
        self._max_order_id = 0

    # ----- events -----------------------------------------------------------------------------------------
    def _emit(self, event: object) -> None:
        # a failing listener must not leave an order half-booked: log it and carry on
        try:
            self.listener(event)
        except Exception:
            log.exception("practice exchange listener failed on %s", type(event).__name__)

    def _updated(self, order: SimOrder) -> None:
        self._emit(OrderUpdated(_snapshot(order)))

    def _error(self, order: SimOrder, code: int, text: str) -> None:
        self._emit(OrderError(_snapshot(order), code, text))

    # ----- placing ----------------------------------------------------------------------------------------
    def place(self, order: SimOrder) -> None:
        """Place a new order, or modify the working order with the same (client_id, order_id)."""
        self._max_order_id = max(self._max_order_id, order.order_id)
        order.order_type = ot.normalise_type(order.order_type)
        order.tif = str(order.tif or "DAY").strip().upper()
        order.action = str(order.action or "").strip().upper()
        # prices: a number or None ("unset", also the wire's UNSET_DOUBLE); never NaN / inf / text
        for name in ("lmt_price", "aux_price"):
            price = _as_decimal(getattr(order, name))
            usable = price is not None and price.is_finite() and price < _UNSET_PRICE
            setattr(order, name, price if usable else None)
        existing = self._orders.get(order.key)
        if existing is not None:
            self._modify(existing, order)
            return
        try:
            inst = self._validate(order)
        except _Rejected as rej:
            if order.what_if:
                self._error(order, rej.code, rej.text)
                return
            self._reject(order, rej.code, rej.text)
            return
        if order.what_if:
            self._what_if(order, inst)
            return
        try:
            self._check_funds(order, inst)
            self._prepare(order, inst)
        except _Rejected as rej:
            self._reject(order, rej.code, rej.text)
            return
        now = self.clock()
        order.perm_id = self._next_perm_id
        self._next_perm_id += 1
        order.created = now
        order.filled = ZERO
        order.avg_fill_price = ZERO
        order.last_fill_price = ZERO
        order.status = "PreSubmitted"
        if order.outside_rth and order.order_type in _RTH_ONLY_TYPES:
            self._error(order, 2109, TEXT_RTH_IGNORED)  # a warning: the order lives on, for regular hours only
        self._orders[order.key] = order
        self._working_by_con.setdefault(order.con_id, {})[order.key] = order
        self._updated(order)
        if order.transmit:
            self._release_staged(order)
        self._activate(order)

    def _reject(self, order: SimOrder, code: int, text: str) -> None:
        """A new order TWS refuses: the error, then the order reported Inactive (kept for completed orders)."""
        # whatever garbage came in, the stored and echoed order carries numbers the server can encode
        qty = _as_decimal(order.total_qty)
        order.total_qty = qty if qty is not None and qty.is_finite() and qty >= 0 else ZERO
        self._error(order, code, text)
        order.status = "Inactive"
        order.completed_time = self.clock()
        order.completed_status = "Inactive"
        if order.perm_id == 0:
            order.perm_id = self._next_perm_id
            self._next_perm_id += 1
        self._orders.setdefault(order.key, order)
        self._updated(order)

    def _validate(self, order: SimOrder) -> SimInstrument:
        inst = self.market.book.by_con_id(order.con_id)
        if inst is None:
            raise _Rejected(200, TEXT_NO_SECURITY)
        ids = self.accounts.ids()
        if not order.account:
            if len(ids) != 1:
                raise _Rejected(436, "You must specify an allocation (either a single account, group, or profile).")
            order.account = ids[0]
        if order.account not in ids:
            raise _Rejected(321, f"Error validating request.-'bN' : cause - Account {order.account} is not "
                                 f"managed by this session (managed: {','.join(ids)}).")
        if order.action not in ("BUY", "SELL"):
            raise _Rejected(321, f"Error validating request.-'bF' : cause - Invalid side {order.action!r}; "
                                 "use BUY or SELL.")
        if order.order_type not in ORDER_TYPES:
            raise _Rejected(387, TEXT_UNSUPPORTED_TYPE)
        if order.tif not in TIFS:
            raise _Rejected(321, f"Error validating request.-'bJ' : cause - Time in force {order.tif} is not "
                                 f"supported by the practice exchange (use {', '.join(TIFS)}).")
        self._validate_type_for_market(order, inst)
        self._validate_size_and_prices(order, inst)
        self._validate_special_prices(order, inst)
        return inst

    def _validate_type_for_market(self, order: SimOrder, inst: SimInstrument) -> None:
        """Which exchange offers which order type and time in force (as CONTRACT_DATA.orderTypes tells)."""
        hk = inst.market == "HK"
        if order.order_type in ot.CLOSE_TYPES + ("REL",) and hk:
            raise _Rejected(387, TEXT_UNSUPPORTED_TYPE)  # SEHK: the closing auction takes AUC orders instead
        if order.tif == "OPG" and (hk or order.order_type not in ("MKT", "LMT")):
            raise _Rejected(387, TEXT_UNSUPPORTED_TYPE)
        if order.tif == "AUC" and (not hk or order.order_type not in ("MTL", "MKT", "LMT")):
            raise _Rejected(387, TEXT_UNSUPPORTED_TYPE)
        if order.order_type == "MTL" and order.tif != "AUC":
            raise _Rejected(387, TEXT_UNSUPPORTED_TYPE)  # market-to-limit is offered here only at auction
        if order.tif == "GTD":
            until = ot.parse_good_till(order.extra.get("goodTillDate", ""), inst.time_zone)
            if until is None:
                raise _Rejected(321, "Error validating request.-'bO' : cause - A GTD order needs goodTillDate as "
                                     "'YYYYMMDD HH:MM:SS [time zone]'.")
            if until <= self.clock():
                raise _Rejected(201, "Order rejected - reason:The time in force is invalid: the Good Till Date "
                                     f"{order.extra.get('goodTillDate')} has already passed.")

    def _validate_special_prices(self, order: SimOrder, inst: SimInstrument) -> None:
        """Trailing amounts and percents, relative offsets: present, positive, on the tick where a price."""
        x = order.extra
        if order.order_type in ot.TRAIL_TYPES:
            percent = _as_decimal(x.get("trailingPercent"))
            percent = percent if percent is not None and percent.is_finite() and percent < _UNSET_PRICE else None
            amount = order.aux_price
            if (percent is None) == (amount is None) or (percent is not None and not 0 < percent < 100) or (
                    amount is not None and amount <= 0):
                raise _Rejected(321, "Error validating request.-'bC' : cause - A trailing order needs either a "
                                     "positive trailing amount (auxPrice) or a trailing percent, not both.")
            if amount is not None and not self._on_price_tick(inst, amount):
                raise _Rejected(110, TEXT_OFF_TICK)
            x["trailingPercent"] = None if percent is None else str(percent)
            if order.order_type == "TRAIL LIMIT":
                offset = _as_decimal(x.get("lmtPriceOffset"))
                usable = offset is not None and offset.is_finite() and 0 <= offset < _UNSET_PRICE
                if not usable and order.lmt_price is None:
                    raise _Rejected(321, "Error validating request.-'bC' : cause - A TRAIL LIMIT order needs a limit "
                                         "price or a limit price offset (lmtPriceOffset).")
                if order.lmt_price is not None:
                    order.lmt_price = self._checked_price(order.lmt_price, "limit", order, inst)
        if order.order_type == "REL":
            percent = _as_decimal(x.get("percentOffset"))
            percent = percent if percent is not None and percent.is_finite() and percent < _UNSET_PRICE else None
            if (order.aux_price is None or order.aux_price < 0) and percent is None:
                raise _Rejected(321, "Error validating request.-'bC' : cause - A relative order needs an offset "
                                     "(auxPrice) or a percent offset.")
            if order.aux_price is not None and order.aux_price > 0 and not self._on_price_tick(inst, order.aux_price):
                raise _Rejected(110, TEXT_OFF_TICK)
            if order.lmt_price is not None:
                order.lmt_price = self._checked_price(order.lmt_price, "limit", order, inst)

    def _on_price_tick(self, inst: SimInstrument, distance: Decimal) -> bool:
        """A price distance (trailing amount, offset) is a whole number of the increment at today's price."""
        increment = self.market.rules.increment(inst.market_rule_id, self.market.top(inst.con_id).last)
        try:
            return distance % increment == 0
        except ArithmeticError:
            return False

    def _prepare(self, order: SimOrder, inst: SimInstrument) -> None:
        """The state a special order type starts with: its auction moment, its first trailing stop."""
        now = self.clock()
        at = ot.auction_time(inst, order.order_type, order.tif, now)
        if order.order_type in ot.CLOSE_TYPES or order.tif in ot.AUCTION_TIFS:
            if at is None:
                raise _Rejected(201, "Order rejected - reason:No auction of this exchange is scheduled in the next "
                                     "two weeks.")
            order.extra["auctionAt"] = at.isoformat()
        if order.order_type in ot.TRAIL_TYPES:
            top = self.market.top(inst.con_id)
            touch = top.bid if order.action == "SELL" else top.ask
            given = _as_decimal(order.extra.get("trailStopPrice"))
            if given is not None and given.is_finite() and 0 < given < _UNSET_PRICE:
                stop = given
            else:
                amount = ot.trail_amount(order.aux_price, _as_decimal(order.extra.get("trailingPercent")), touch)
                stop = self._stop_on_tick(inst, order.action, ot.trail_stop(order.action, touch, amount))
            order.extra["trailStopPrice"] = str(stop)
            if order.order_type == "TRAIL LIMIT":
                offset = _as_decimal(order.extra.get("lmtPriceOffset"))
                if offset is None or not offset.is_finite() or offset >= _UNSET_PRICE or offset < 0:
                    offset = abs(stop - order.lmt_price)
                order.extra["lmtPriceOffset"] = str(offset)

    def _stop_on_tick(self, inst: SimInstrument, action: str, price: Decimal) -> Decimal:
        """A trailing stop on the tick, rounded away from the market (down for a sell, up for a buy)."""
        floor = self.market.rules.increment(inst.market_rule_id, Decimal("0.0001"))
        price = max(price, floor)
        return self.market.rules.round_to_tick(inst.market_rule_id, price, up=action == "BUY")

    def _validate_size_and_prices(self, order: SimOrder, inst: SimInstrument) -> None:
        qty = _as_decimal(order.total_qty)
        if qty is None or not qty.is_finite() or qty > _MAX_QUANTITY:
            raise _Rejected(321, f"Error validating request.-'bQ' : cause - The order size {order.total_qty!r} is "
                                 f"not a usable quantity (whole shares up to {_MAX_QUANTITY:,}).")
        order.total_qty = qty
        if qty <= 0:
            raise _Rejected(434, "The order size cannot be zero.")
        if qty != qty.to_integral_value():
            raise _Rejected(10243, "Fractional-sized order cannot be placed via API for this contract.")
        if inst.board_lot > 1 and qty % inst.board_lot != 0:
            # below one lot: IB routes it to SEHK's odd-lot book; an odd quantity above one lot is refused
            if qty > inst.board_lot or order.tif == "AUC" or order.order_type not in ("LMT", "MKT"):
                raise _Rejected(321, TEXT_ODD_LOT)
        needs_limit = order.order_type in _LIMIT_TYPES or (order.tif in ot.AUCTION_TIFS and order.order_type == "LMT")
        needs_stop = order.order_type in _STOP_TYPES
        if needs_limit:
            order.lmt_price = self._checked_price(order.lmt_price, "limit", order, inst)
        if needs_stop:
            order.aux_price = self._checked_price(order.aux_price, "stop", order, inst)
        if inst.market == "HK" and order.action == "SELL" and not order.what_if:
            held = sum((p.quantity for p in self.accounts.positions(order.account) if p.con_id == inst.con_id), ZERO)
            pending = sum((o.remaining for o in self._working_by_con.get(inst.con_id, {}).values()
                           if o.account == order.account and o.action == "SELL" and o.key != order.key), ZERO)
            existing = self._orders.get(order.key)
            already = existing.filled if existing is not None else ZERO
            if qty - already > held - pending:
                raise _Rejected(201, "Order rejected - reason:Short sale of Hong Kong stocks is not available in "
                                     f"the practice exchange (holding {held - pending}, selling {qty}).")

    def _checked_price(self, value: object, what: str, order: SimOrder, inst: SimInstrument) -> Decimal:
        """A positive finite price on the instrument's tick, or the TWS rejection (321 missing, 110 off tick)."""
        price = _as_decimal(value)
        if price is None or not price.is_finite() or price <= 0 or price >= _UNSET_PRICE:
            raise _Rejected(321, f"Error validating request.-'bC' : cause - A {what} price is required for "
                                 f"{order.order_type} orders.")
        if price > _MAX_PRICE or not self.market.rules.on_tick(inst.market_rule_id, price):
            raise _Rejected(110, TEXT_OFF_TICK)
        return price

    def _reference_price(self, order: SimOrder, inst: SimInstrument) -> Decimal:
        top = self.market.top(inst.con_id)
        touch = top.ask if order.action == "BUY" else top.bid
        if order.order_type in _LIMIT_TYPES + ("TRAIL LIMIT", "REL") and order.lmt_price is not None:
            return order.lmt_price
        if order.order_type == "STP" and order.aux_price is not None:
            return max(order.aux_price, touch) if order.action == "BUY" else min(order.aux_price, touch)
        return touch

    def _check_funds(self, order: SimOrder, inst: SimInstrument) -> None:
        """TWS refuses an order whose fill would leave initial margin above equity with loan value."""
        if order.action == "SELL":
            held = sum((p.quantity for p in self.accounts.positions(order.account) if p.con_id == inst.con_id), ZERO)
            if held >= order.total_qty:  # a sale that only reduces a long frees margin
                return
        w = self.accounts.what_if(order.account, inst, order.action, order.total_qty,
                                  self._reference_price(order, inst))
        if w["init_after"] > w["equity_after"]:
            raise _Rejected(201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE "
                                 f"DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [{w['equity_after']} "
                                 f"{self.accounts.base_currency}] MUST EXCEED THE INITIAL MARGIN "
                                 f"[{w['init_after']} {self.accounts.base_currency}]")

    def _what_if(self, order: SimOrder, inst: SimInstrument) -> None:
        margins = self.accounts.what_if(order.account, inst, order.action, order.total_qty,
                                        self._reference_price(order, inst))
        order.status = "PreSubmitted"
        self._emit(WhatIfResult(_snapshot(order), margins))

    def _modify(self, existing: SimOrder, new: SimOrder) -> None:
        if existing.is_done:
            if existing.status == "Filled":
                self._error(new, 104, "Can't modify a filled order.")
            else:
                self._error(new, 103, TEXT_DUPLICATE)
            return
        if new.con_id != existing.con_id or new.action != existing.action or (
                new.account and new.account != existing.account):
            self._error(new, 105, "Order being modified does not match original order.")
            return
        new.account = existing.account
        if new.what_if:
            try:
                inst = self._validate(new)
            except _Rejected as rej:
                self._error(new, rej.code, rej.text)
                return
            self._what_if(new, inst)
            return
        try:
            inst = self._validate(new)
            if new.total_qty < existing.filled:
                raise _Rejected(321, "Error validating request.-'bQ' : cause - The new quantity "
                                     f"{new.total_qty} is below the {existing.filled} already filled.")
            self._check_funds(replace(new, total_qty=new.total_qty - existing.filled), inst)
        except _Rejected as rej:
            self._error(new, rej.code, rej.text)  # the working order stays as it was
            return
        for name in ("total_qty", "order_type", "lmt_price", "aux_price", "tif", "outside_rth", "order_ref",
                     "transmit", "oca_group"):
            setattr(existing, name, getattr(new, name))
        existing.extra.update(new.extra)
        if existing.order_type in ot.TRAIL_TYPES + ot.CLOSE_TYPES or existing.tif in ot.AUCTION_TIFS:
            try:
                self._prepare(existing, inst)  # a modified trailing stop restarts from the touch unless given
            except _Rejected as rej:
                self._error(new, rej.code, rej.text)
                return
        if existing.remaining == 0:
            self._finish(existing, "Filled")
            return
        self._updated(existing)
        self._activate(existing, inst)

    # ----- working orders ---------------------------------------------------------------------------------
    def _release_staged(self, order: SimOrder) -> None:
        """A transmitted order releases the untransmitted orders of its bracket (parent and siblings)."""
        group = order.parent_id or order.order_id
        for other in list(self._working_by_con.get(order.con_id, {}).values()):
            if other.client_id == order.client_id and not other.transmit and other is not order and (
                    other.order_id == group or other.parent_id == group):
                other.transmit = True
                self._activate(other)

    def _held(self, order: SimOrder) -> bool:
        """Orders that wait: untransmitted, children of an unfilled parent, or outside their session."""
        if not order.transmit:
            return True
        if order.parent_id:
            parent = self._orders.get((order.client_id, order.parent_id))
            if parent is not None and parent.status != "Filled":
                return True
        if order.extra.get("auctionAt"):
            return False  # an auction order waits at the exchange for its auction, whatever the session
        return not self.market.accepts_order(order.con_id, _trades_outside_rth(order))

    def _activate(self, order: SimOrder, inst: SimInstrument | None = None) -> None:
        """Submit (if it may trade now) and match one working order."""
        if not order.is_working:
            return
        if order.tif == "GTD" and self._gtd_expired(order):
            self._finish(order, "Cancelled")
            return
        if self._held(order):
            if order.tif in ("IOC", "FOK") and order.transmit and not order.parent_id:
                self._finish(order, "Cancelled")  # IOC cannot wait for the session
            return
        if order.extra.get("auctionAt"):
            self._auction(order)
            return
        if order.order_type in _STOP_TYPES and not order.triggered:
            if not self._stop_triggered(order):
                if order.tif in ("IOC", "FOK"):
                    self._finish(order, "Cancelled")
                return
            order.triggered = True
        if order.order_type in ot.TRAIL_TYPES and not order.triggered:
            if not self._trail(order):
                if order.tif in ("IOC", "FOK"):
                    self._finish(order, "Cancelled")
                return
            order.triggered = True
        if order.status != "Submitted":
            order.status = "Submitted"
            self._updated(order)
        self._match(order)

    def _gtd_expired(self, order: SimOrder) -> bool:
        inst = self.market.book.by_con_id(order.con_id)
        until = ot.parse_good_till(order.extra.get("goodTillDate", ""), inst.time_zone) if inst else None
        return until is not None and self.clock() >= until

    def _trail(self, order: SimOrder) -> bool:
        """Move a trailing stop with the touch (only in the order's favour); True once the touch reaches it."""
        inst = self.market.book.by_con_id(order.con_id)
        top = self.market.top(order.con_id)
        touch = top.bid if order.action == "SELL" else top.ask
        stop = Decimal(order.extra["trailStopPrice"])
        if ot.stop_touched(order.action, touch, stop):
            if order.order_type == "TRAIL LIMIT":
                offset = Decimal(order.extra.get("lmtPriceOffset") or 0)
                limit = stop - offset if order.action == "SELL" else stop + offset
                order.lmt_price = self.market.rules.round_to_tick(inst.market_rule_id, max(limit, Decimal("0.0001")),
                                                                  up=order.action == "SELL")
            return True
        amount = ot.trail_amount(order.aux_price, _as_decimal(order.extra.get("trailingPercent")), touch)
        candidate = self._stop_on_tick(inst, order.action, ot.trail_stop(order.action, touch, amount))
        if ot.better_stop(order.action, stop, candidate):
            order.extra["trailStopPrice"] = str(candidate)
            self._updated(order)  # openOrder carries the new trailStopPrice
        return False

    def _auction(self, order: SimOrder) -> None:
        """An auction order: wait Submitted for its moment, then fill whole at the last price or end."""
        if order.status != "Submitted":
            order.status = "Submitted"
            self._updated(order)
        at = datetime.fromisoformat(order.extra["auctionAt"])
        if self.clock() < at:
            return
        inst = self.market.book.by_con_id(order.con_id)
        price = self.market.top(order.con_id).last
        limit = order.lmt_price if order.order_type in ("LOC", "LMT") else None
        crosses = limit is None or (price <= limit if order.action == "BUY" else price >= limit)
        if crosses:
            self._fill(order, inst, price, order.remaining)
            return
        if order.tif == "AUC" and order.order_type == "LMT" and ot.is_opening_auction(inst, at):
            # an at-auction limit order the pre-opening auction did not fill carries on as a limit order
            order.extra.pop("auctionAt", None)
            order.tif = "DAY"
            self._updated(order)
            return
        self._finish(order, "Cancelled")

    def _stop_triggered(self, order: SimOrder) -> bool:
        top = self.market.top(order.con_id)
        # last trade through the stop; before any print today, the touch decides
        price = top.last if top.volume else (top.ask if order.action == "BUY" else top.bid)
        return price >= order.aux_price if order.action == "BUY" else price <= order.aux_price

    def _limit_now(self, order: SimOrder, inst: SimInstrument) -> Decimal | None:
        """The price an order may trade at now: its limit, a REL order's peg, None for market orders."""
        if order.order_type == "REL":
            top = self.market.top(order.con_id)
            buying = order.action == "BUY"
            touch = top.bid if buying else top.ask
            percent = _as_decimal(order.extra.get("percentOffset"))
            offset = order.aux_price or ZERO
            if percent is not None and percent.is_finite() and percent < _UNSET_PRICE and not offset:
                offset = touch * percent / 100
            peg = self.market.rules.round_to_tick(inst.market_rule_id, touch + offset if buying else touch - offset,
                                                  up=not buying)
            if order.lmt_price is not None:
                peg = min(peg, order.lmt_price) if buying else max(peg, order.lmt_price)
            return peg
        if order.order_type in ("LMT", "STP LMT", "TRAIL LIMIT"):
            return order.lmt_price
        return None

    def _match(self, order: SimOrder) -> None:
        inst = self.market.book.by_con_id(order.con_id)
        limit = self._limit_now(order, inst)
        buying = order.action == "BUY"
        if inst.board_lot > 1 and order.total_qty < inst.board_lot:
            self._match_odd_lot(order, inst, limit)
            return
        levels = self.market.levels(order.con_id, order.action, depth=_BOOK_DEPTH)
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = order.remaining
        for price, size in levels:
            if remaining <= 0:
                break
            if limit is not None and (price > limit if buying else price < limit):
                break
            take = min(remaining, Decimal(size))
            if inst.board_lot > 1:
                take -= take % inst.board_lot
            if take <= 0:
                break
            fills.append((price, take))
            remaining -= take
        if order.tif == "FOK" and remaining > 0:
            self._finish(order, "Cancelled")
            return
        for price, qty in fills:
            self._fill(order, inst, price, qty)
        if order.is_working and order.tif in ("IOC", "FOK") and order.remaining > 0:
            self._finish(order, "Cancelled")

    def _match_odd_lot(self, order: SimOrder, inst: SimInstrument, limit: Decimal | None) -> None:
        """SEHK's odd-lot book: a sub-lot order fills whole at the touch when its limit allows."""
        top = self.market.top(order.con_id)
        price = top.ask if order.action == "BUY" else top.bid
        if limit is None or (price <= limit if order.action == "BUY" else price >= limit):
            self._fill(order, inst, price, order.remaining)
        elif order.tif in ("IOC", "FOK"):
            self._finish(order, "Cancelled")

    def _fill(self, order: SimOrder, inst: SimInstrument, price: Decimal, qty: Decimal) -> None:
        now = self.clock()
        before_value = order.avg_fill_price * order.filled
        charged = order.commission_charged
        cum_qty = order.filled + qty
        avg = (before_value + price * qty) / cum_qty
        # the per-order minimum applies to the order, not to each partial fill
        total_commission, ccy = self.accounts.commission(inst, cum_qty, avg)
        commission = max(total_commission - charged, ZERO)
        order.commission_charged = charged + commission
        held = sum((p.quantity for p in self.accounts.positions(order.account) if p.con_id == inst.con_id), ZERO)
        closing = held != 0 and (held > 0) != (order.action == "BUY")
        realized = self.accounts.apply_fill(order.account, inst, order.action, qty, price, commission)
        self.market.record_trade(inst.con_id, price, qty)
        order.filled = cum_qty
        order.avg_fill_price = tidy(avg)
        order.last_fill_price = price
        execution = SimExecution(
            exec_id=f"{self._exec_prefix:08x}.{self._exec_seq:08x}.01.01", time=now,
            account=order.account, exchange=_VENUE.get(inst.primary_exchange, inst.primary_exchange),
            side="BOT" if order.action == "BUY" else "SLD", shares=qty, price=price, perm_id=order.perm_id,
            client_id=order.client_id, order_id=order.order_id, cum_qty=cum_qty, avg_price=order.avg_fill_price,
            order_ref=order.order_ref, con_id=inst.con_id, commission=commission, commission_currency=ccy,
            realized_pnl=realized.quantize(Decimal("0.01")) if closing else None)
        self._exec_seq += 1
        self._executions.append(execution)
        if order.remaining == 0:
            order.status = "Filled"
            order.completed_time = now
            order.completed_status = "Filled"
            self._unindex(order)
        self._emit(Executed(_snapshot(order), execution))
        self._updated(order)
        self._emit(AccountTouched(order.account))
        if order.status == "Filled":
            self._on_filled(order)
            self._cancel_oca_siblings(order)

    def _on_filled(self, order: SimOrder) -> None:
        """A filled parent releases its children (bracket take-profit / stop-loss)."""
        for child in list(self._working_by_con.get(order.con_id, {}).values()):
            if child.client_id == order.client_id and child.parent_id == order.order_id:
                self._activate(child)

    def _cancel_oca_siblings(self, order: SimOrder) -> None:
        """A filled order of an OCA group (or a filled bracket child) cancels the others, with 202 each."""
        if not order.oca_group and not order.parent_id:
            return
        for book in list(self._working_by_con.values()):
            for other in list(book.values()):
                if other is order or other.client_id != order.client_id:
                    continue
                same_oca = order.oca_group and other.oca_group == order.oca_group
                siblings = order.parent_id and other.parent_id == order.parent_id
                if same_oca or siblings:
                    self._finish(other, "Cancelled", TEXT_CANCELLED)

    def _finish(self, order: SimOrder, status: str, cancel_text: str | None = None) -> None:
        order.status = status
        order.completed_time = self.clock()
        order.completed_status = status
        self._unindex(order)
        self._updated(order)
        if cancel_text is not None:
            self._error(order, 202, cancel_text)
        if status == "Cancelled":
            # children of a cancelled parent die with it
            for child in list(self._working_by_con.get(order.con_id, {}).values()):
                if child.client_id == order.client_id and child.parent_id == order.order_id:
                    self._finish(child, "Cancelled", cancel_text)

    def _unindex(self, order: SimOrder) -> None:
        book = self._working_by_con.get(order.con_id)
        if book is not None:
            book.pop(order.key, None)
            if not book:
                del self._working_by_con[order.con_id]

    # ----- cancelling -------------------------------------------------------------------------------------
    def cancel(self, client_id: int, order_id: int) -> None:
        """Cancel a working order: Cancelled + error 202. Unknown id: 10147; done order: 161."""
        order = self._orders.get((client_id, order_id))
        if order is None:
            self._error(SimOrder(client_id=client_id, order_id=order_id), 10147,
                        TEXT_NOT_FOUND.format(order_id=order_id))
            return
        if not order.is_working:
            self._error(order, 161, f"{TEXT_NOT_CANCELLABLE}{order.perm_id}")
            return
        self._finish(order, "Cancelled", TEXT_CANCELLED)

    def global_cancel(self) -> None:
        """Cancel every working order of every client (TWS's reqGlobalCancel)."""
        for book in list(self._working_by_con.values()):
            for order in list(book.values()):
                if order.is_working:
                    self._finish(order, "Cancelled", TEXT_CANCELLED)

    # ----- market driven ----------------------------------------------------------------------------------
    def on_market(self, con_ids: Iterable[int]) -> None:
        """After PracticeMarket.advance: trigger stops, fill crossed limits, release orders whose session opened.

        In session_mode "real", DAY orders from an earlier local trading day expire first.
        """
        real = self.market.session_mode == "real"
        for con_id in con_ids:
            book = self._working_by_con.get(con_id)
            if not book:
                continue
            for order in sorted(book.values(), key=lambda o: (o.created or datetime.min.replace(tzinfo=UTC),
                                                               o.order_id)):
                if not order.is_working:
                    continue
                if real and order.tif == "DAY" and self._expired(order):
                    self._finish(order, "Cancelled")
                    continue
                self._activate(order)

    def on_clock(self) -> None:
        """Orders that act at a moment whatever the market does: GTD expiry and auctions."""
        for book in list(self._working_by_con.values()):
            for order in list(book.values()):
                if order.is_working and (order.tif == "GTD" or order.extra.get("auctionAt")):
                    self._activate(order)

    def _expired(self, order: SimOrder) -> bool:
        """A DAY order lives until the close of the trading day it was placed for."""
        if order.created is None:
            return False
        inst = self.market.book.by_con_id(order.con_id)
        outside_rth = _trades_outside_rth(order)
        return _trading_day(inst, order.created, outside_rth) < _trading_day(inst, self.clock(), outside_rth)

    def end_of_day(self) -> None:
        """Expire every working DAY order (Cancelled, no 202), as at the close."""
        for book in list(self._working_by_con.values()):
            for order in list(book.values()):
                if order.is_working and order.tif == "DAY":
                    self._finish(order, "Cancelled")

    # ----- queries ----------------------------------------------------------------------------------------
    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [_snapshot(o) for o in self._orders.values()
                if o.is_working and (client_id is None or o.client_id == client_id)]

    def completed_orders(self) -> list[SimOrder]:
        done = [o for o in self._orders.values() if o.is_done]
        done.sort(key=lambda o: o.completed_time or datetime.min.replace(tzinfo=UTC))
        return [_snapshot(o) for o in done]

    def orders_of(self, client_id: int) -> list[SimOrder]:
        return [_snapshot(o) for o in self._orders.values() if o.client_id == client_id]

    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        found = self._orders.get((client_id, order_id))
        return _snapshot(found) if found else None

    def executions(self, client_id: int | None = None, account: str = "", symbol: str = "",
                   since: datetime | None = None) -> list[SimExecution]:
        """Executions filtered like reqExecutions (empty / None / 0 client id = all)."""
        out = []
        wanted_symbol = symbol.strip().upper()
        for e in self._executions:
            if client_id and e.client_id != client_id:
                continue
            if account and e.account != account:
                continue
            if since is not None and e.time < since:
                continue
            if wanted_symbol:
                inst = self.market.book.by_con_id(e.con_id)
                if inst is None or inst.symbol.upper() != wanted_symbol:
                    continue
            out.append(e)
        return out

    def working_con_ids(self) -> set[int]:
        """Instruments with working orders: advance these too (not only subscribed ones) so orders can fill."""
        return set(self._working_by_con)

    def next_order_id_hint(self) -> int:
        """For NEXT_VALID_ID: above every order id seen."""
        return self._max_order_id + 1

    # ----- persistence ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "next_perm_id": self._next_perm_id,
            "exec_prefix": self._exec_prefix,
            "exec_seq": self._exec_seq,
            "max_order_id": self._max_order_id,
            "orders": [_order_to_json(o) for o in self._orders.values()],
            "executions": [_execution_to_json(e) for e in self._executions],
        }

    def load_dict(self, d: dict) -> None:
        """Restore orders and executions; working orders resume (matched at the next on_market)."""
        self._next_perm_id = max(self._next_perm_id, int(d.get("next_perm_id", 0)))
        self._exec_prefix = int(d.get("exec_prefix", self._exec_prefix))
        self._exec_seq = max(self._exec_seq, int(d.get("exec_seq", 1)))
        self._max_order_id = max(self._max_order_id, int(d.get("max_order_id", 0)))
        self._orders.clear()
        self._working_by_con.clear()
        for raw in d.get("orders", []):
            order = _order_from_json(raw)
            self._orders[order.key] = order
            if order.is_working:
                self._working_by_con.setdefault(order.con_id, {})[order.key] = order
        self._executions = [_execution_from_json(e) for e in d.get("executions", [])]


_DECIMAL_ORDER_FIELDS = ("total_qty", "lmt_price", "aux_price", "filled", "avg_fill_price", "last_fill_price",
                         "commission_charged")
_TIME_ORDER_FIELDS = ("created", "completed_time")


def _order_to_json(order: SimOrder) -> dict:
    out = {}
    for f in fields(SimOrder):
        value = getattr(order, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[f.name] = value
    out["extra"] = {k: v for k, v in order.extra.items() if _json_safe(v)}
    return out


def _json_safe(value: object) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))


def _order_from_json(raw: dict) -> SimOrder:
    kwargs = {f.name: raw[f.name] for f in fields(SimOrder) if f.name in raw}
    for name in _DECIMAL_ORDER_FIELDS:
        if kwargs.get(name) is not None:
            kwargs[name] = Decimal(kwargs[name])
    for name in _TIME_ORDER_FIELDS:
        if kwargs.get(name):
            kwargs[name] = datetime.fromisoformat(kwargs[name])
    kwargs["extra"] = dict(kwargs.get("extra") or {})
    return SimOrder(**kwargs)


def _execution_to_json(e: SimExecution) -> dict:
    out = asdict(e)
    for k, v in out.items():
        if isinstance(v, Decimal):
            out[k] = str(v)
        elif isinstance(v, datetime):
            out[k] = v.isoformat()
    return out


def _execution_from_json(raw: dict) -> SimExecution:
    kwargs = dict(raw)
    for name in ("shares", "price", "cum_qty", "avg_price", "commission", "realized_pnl"):
        if kwargs.get(name) is not None:
            kwargs[name] = Decimal(kwargs[name])
    kwargs["time"] = datetime.fromisoformat(kwargs["time"])
    return SimExecution(**kwargs)
