"""Orders: OrderRequest -> validation -> journal intent -> ib_async placeOrder, and the views after.

Over 500 lines because the one path to placeOrder (check, place, modify, cancel, OCA) and the order views
it keeps belong together; the special order types' rules live in order_kinds.py.

Every order the panel or the API sends passes through :meth:`OrderBook.place`; there is no
other path to ``ib.placeOrder`` in the project, so read-only, lot, tick, fat-finger and value
rules cannot be bypassed by a front door.

Order identity: IB keys an order by (clientId, orderId) while it lives and by permId forever;
TWS completed orders come back without an orderId, and (clientId, orderId) repeats when TWS's id
sequence restarts. Views of our own orders are stored under their orderRef (the journal id, one per
order and leg), others under (clientId, orderId) when there is one, else under the permId; a permId
seen later folds into the same view. ``_id_index`` maps (clientId, orderId) to the newest order that
used it (errors and cancels arrive by orderId).

Sending: ``place`` refuses (``OrdersBacklogged``, nothing sent, nothing journaled) when the orders
already queued in the pacer (``pacing.OrderFirstPacer``) would hold the new one longer than
``max_order_wait`` seconds. PLACE_ORDER messages the pacer still held when the socket closed (or at
shutdown) never left: ``settle_unsent`` marks those orders NotSent in the view and the journal.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from ib_async import IB, Contract, Order, Trade
from ib_async.wrapper import RequestError

from ibpanel.broker import ib_codes, order_kinds
from ibpanel.broker import journal as journal_mod
from ibpanel.broker.completed import CompletionTimes, join_completed
from ibpanel.broker.convert import int_id, now_utc, order_status, order_view, what_if_model
from ibpanel.broker.exceptions import (
    BrokerError,
    BrokerTimeout,
    ModifyRejected,
    NotCancellable,
    NotConnected,
    OrderNotFound,
    OrderRejected,
    OrdersBacklogged,
    SymbolError,
)
from ibpanel.broker.models import (
    Instrument,
    Market,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderView,
    Side,
    TimeInForce,
    ValidationIssue,
    WhatIf,
)
from ibpanel.broker.pacing import placed_order_id
from ibpanel.broker.rules import BoardLot, TickTable, check_quantity
from ibpanel.numbers import decimal_or_none

log = logging.getLogger(__name__)

OrderKey = tuple[Any, ...]
# Statuses only TWS sends: the order reached it.
_ACK_STATUSES = frozenset({"PreSubmitted", "Submitted", "Filled", "PendingCancel", "ApiCancelled"})
# Codes that end an order's life at IB for sure (rejected outright).
_REJECT_CODES = frozenset({201, 203, 10147, 10148, 10149})
#: A resting (passive) limit - a buy below / sell above the market - may sit this far (%) from the last
#: trade: bids far under the market are normal trading; beyond half the price it is almost surely a typo.
#: The fat-finger limit (a setting) applies to the aggressive side, where a typo trades at once.
PASSIVE_BAND_PCT = Decimal(50)
# IB's ContractDetails.orderTypes spells types without spaces ("STPLMT", "TRAILLMT"); ours have them.
#: How long modify() waits for TWS to confirm (open-order echo with the new terms) or refuse a change.
MODIFY_ACK_TIMEOUT = 3.0
# An error this long after a change was sent is no longer read as the change's refusal.
_MODIFY_MEMORY = 30.0
# Codes on an order being modified that do not refuse the change (notes, holds, data and cancel notices).
_NOT_A_MODIFY_REFUSAL = frozenset({165, 202, 399, 404, 492, 10167})
_IB_TYPE_SPELLING = {"STPLMT": "STP LMT", "TRAILLMT": "TRAIL LIMIT", "TRAILLIMIT": "TRAIL LIMIT", "LMTONCLOSE": "LOC"}


def ib_order_type(name: str) -> str:
    """One spelling for an order type, whichever side wrote it: "STPLMT", "stp lmt", "STP_LMT" -> "STP LMT"."""
    squeezed = "".join(str(name).upper().replace("_", " ").split())
    return _IB_TYPE_SPELLING.get(squeezed, " ".join(str(name).upper().replace("_", " ").split()))


class Catalog(Protocol):
    """What the order book needs from the broker's symbol / rule cache."""

    async def resolve(self, text: str, market: Any = None) -> Instrument: ...
    def contract(self, instrument: Instrument) -> Contract: ...
    async def tick_table(self, instrument: Instrument) -> TickTable: ...
    async def reference_price(self, instrument: Instrument) -> Decimal | None: ...
    def instrument_for(self, contract: Contract) -> Instrument: ...


class OrderBook:
    """Places, tracks and changes orders. ``on_change(OrderView)`` is called on every new snapshot."""

    def __init__(
        self,
        ib: IB,
        journal: journal_mod.OrderJournal,
        catalog: Catalog,
        *,
        is_connected: Callable[[], bool],
        session_info: Callable[[], tuple[str, tuple[str, ...], str | None]],  # read-only reason, accounts, account
        max_order_value: dict[str, Decimal],
        fat_finger_pct: Decimal,
        on_change: Callable[[OrderView], None],
        limits_source: str = "",
        connection_problem: Callable[[], str] = lambda: "",  # why orders cannot go now (a stale TWS), or ""
        order_wait: Callable[[], float] = lambda: 0.0,  # seconds a new order would wait in the pacer
        max_order_wait: float = 2.0,
    ) -> None:
        self.ib = ib
        self.journal = journal
        self.catalog = catalog
        self._is_connected = is_connected
        self._session_info = session_info
        self.max_order_value = {k.upper(): Decimal(str(v)) for k, v in max_order_value.items()}
        self.fat_finger_pct = Decimal(str(fat_finger_pct))
        self.limits_source = limits_source  # where the [safety] limits are set, named in refusals
        self._on_change = on_change
        self._connection_problem = connection_problem
        self._order_wait = order_wait
        self.max_order_wait = float(max_order_wait)
        self._views: dict[OrderKey, OrderView] = {}
        self._id_index: dict[tuple[int, int], OrderKey] = {}  # (clientId, orderId) -> the newest order using it
        self._perm_index: dict[int, OrderKey] = {}
        self._trades: dict[OrderKey, Trade] = {}
        self._messages: dict[OrderKey, str] = {}
        self._created: dict[OrderKey, datetime] = {}
        self._cancel_waiters: dict[OrderKey, list[asyncio.Future]] = {}
        self._acked: set[OrderKey] = set()  # TWS reported a working / final status for it
        self._modifying: dict[OrderKey, _PendingModify] = {}  # changes sent, not yet confirmed or refused
        self._completion_times = CompletionTimes(ib)
        ib.newOrderEvent += self._on_trade
        ib.openOrderEvent += self._on_trade
        ib.openOrderEvent += self._on_open_order
        ib.orderStatusEvent += self._on_trade
        ib.orderModifyEvent += self._on_trade
        ib.cancelOrderEvent += self._on_trade
        ib.errorEvent += self._on_error
        _echo_more_order_fields(ib)

    # --- lookups -------------------------------------------------------------------------------
    def _client_id(self) -> int:
        return int(self.ib.client.clientId)

    def _key_of(self, trade: Trade) -> OrderKey:
        order = trade.order
        perm = int_id(order.permId) or int_id(trade.orderStatus.permId)
        if journal_mod.parse_order_ref(order.orderRef or "") is not None:
            key = ("ref", order.orderRef)  # one journal id per order: a reused orderId or permId never merges two
        elif perm and perm in self._perm_index:
            key = self._perm_index[perm]
        elif order.orderId and order.orderId > 0:
            key = (order.clientId, order.orderId)
        else:
            key = ("perm", perm)
        if perm:
            self._perm_index[perm] = key
        if order.orderId and order.orderId > 0:
            self._id_index[(order.clientId, order.orderId)] = key
        return key

    def _find_key(self, order_id: int) -> OrderKey | None:
        own = self._id_index.get((self._client_id(), order_id))
        if own in self._views:
            return own
        found = [key for key, view in self._views.items() if view.order_id == order_id and key[0] != "perm"]
        working = [key for key in found if not self._views[key].status.is_done]
        return (working or found or [None])[-1]

    def order(self, order_id: int) -> OrderView | None:
        key = self._find_key(order_id)
        return self._views.get(key) if key else None

    def order_for_journal(self, journal_id: str) -> OrderView | None:
        return self._views.get(("ref", journal_mod.order_ref(journal_id))) or next(
            (v for v in self._views.values() if v.journal_id == journal_id and v.order_id), None)

    def open_orders(self) -> tuple[OrderView, ...]:
        return tuple(v for v in self._views.values() if not v.status.is_done)

    def completed_orders(self) -> tuple[OrderView, ...]:
        return tuple(v for v in self._views.values() if v.status.is_done)

    # --- ib_async events -> views --------------------------------------------------------------
    def _on_trade(self, trade: Trade) -> None:
        if trade.order.whatIf:
            return
        key = self._key_of(trade)
        pending = self._pending_modify(key)
        if (pending is not None and key in self._acked and trade.orderStatus.status == "Cancelled" and trade.log
                and trade.log[-1].errorCode):
            # ib_async marks a Trade Cancelled on any error for its orderId; after a modify the error refuses
            # the change only: the order still works at TWS with its previous terms (_on_error says why)
            trade.orderStatus.status = pending.status_before
            return
        view = self._update(trade)
        if pending is not None and view.status.is_done:
            self._settle_modify(key, NotCancellable(
                f"Order {view.order_id} is {view.status.value.lower()}: the change did not take effect.",
                "Check the Orders and Fills tabs."))

    def _on_open_order(self, trade: Trade) -> None:
        """TWS echoes a change it accepted with an open-order message carrying the new terms."""
        key = self._key_of(trade)
        pending = self._pending_modify(key)
        if pending is not None and pending.matches(trade.order) and key in self._views:
            if bool(trade.order.outsideRth) != pending.outside_rth:
                # ib_async copies only quantity, prices, type and ref from the echo: the flag TWS accepted too
                trade.order.outsideRth = pending.outside_rth
                self._update(trade)
            self._settle_modify(key, self._views[key])

    def _pending_modify(self, key: OrderKey) -> _PendingModify | None:
        pending = self._modifying.get(key)
        if pending is not None and time.monotonic() - pending.sent_at > _MODIFY_MEMORY:
            del self._modifying[key]  # TWS never answered that change; later errors are not about it
            return None
        return pending

    def _settle_modify(self, key: OrderKey, outcome: OrderView | BaseException) -> None:
        pending = self._modifying.pop(key, None)
        if pending is None or pending.waiter.done():
            return
        if isinstance(outcome, BaseException):
            pending.waiter.set_exception(outcome)
        else:
            pending.waiter.set_result(outcome)

    def _update(self, trade: Trade, *, status: OrderStatus | None = None) -> OrderView:
        key = self._key_of(trade)
        self._trades[key] = trade
        previous = self._views.get(key)
        new_status = status or order_status(trade.orderStatus.status, previous.status if previous else None)
        if trade.orderStatus.status in _ACK_STATUSES:
            self._acked.add(key)
        if previous is not None and previous.status is OrderStatus.REJECTED and new_status in (
                OrderStatus.CANCELLED, OrderStatus.INACTIVE):
            new_status = OrderStatus.REJECTED  # ib_async / TWS call a refused order Cancelled / Inactive
        if (previous is not None and previous.status is OrderStatus.NOT_SENT and status is None
                and trade.orderStatus.status not in _ACK_STATUSES):
            new_status = OrderStatus.NOT_SENT  # ib_async's own PendingSubmit does not revive an order never sent
        parsed_ref = journal_mod.parse_order_ref(trade.order.orderRef or "")
        journal_id, leg = parsed_ref if parsed_ref else (None, None)
        instrument = self.catalog.instrument_for(trade.contract)
        created = self._created.setdefault(key, previous.created_at if previous and previous.created_at else now_utc())
        view = order_view(trade, instrument, journal_id=journal_id, status=new_status,
                          message=self._messages.get(key, ""), created_at=created)
        if not trade.order.orderId:  # a completed-order message: no orderId, average price or time of its own
            view = self._join_completed(view, journal_id)
        if previous is not None and not view.order_id:  # completed orders come back without an orderId
            view = replace(view, order_id=previous.order_id, client_id=previous.client_id or view.client_id)
        if previous is not None and view.filled < previous.filled:  # a completed-order echo carries less detail
            view = replace(view, filled=previous.filled, avg_fill_price=previous.avg_fill_price,
                           remaining=previous.remaining)
        if previous is not None and _same(previous, view):
            return previous
        self._views[key] = view
        if journal_id and (previous is None or previous.status != view.status or previous.filled != view.filled
                           or previous.perm_id != view.perm_id):
            # ib_async's local PendingSubmit is not an acknowledgement: the entry stays Unconfirmed until TWS speaks
            heard = key in self._acked or view.status.is_done
            if leg:  # a bracket child: its own row, never the parent's status
                self._journal(lambda: self.journal.update_leg(
                    journal_id, leg, order_id=view.order_id or None, perm_id=view.perm_id,
                    status=view.status.value if heard else None, filled=view.filled if heard else None))
            else:
                self._journal(lambda: self.journal.update(
                    journal_id, status=view.status.value if heard else None, perm_id=view.perm_id,
                    order_id=view.order_id or None, filled=view.filled if heard else None,
                    avg_fill_price=view.avg_fill_price))
        self._on_change(view)
        self._wake_cancel_waiters(key, view)
        return view

    def _join_completed(self, view: OrderView, journal_id: str | None) -> OrderView:
        try:
            if not journal_id and view.perm_id:
                journal_id = self.journal.find_by_perm_id(view.perm_id)
            entry = self.journal.entry(journal_id) if journal_id else None
        except Exception:  # noqa: BLE001 - a journal read error must not lose the order's view
            log.debug("journal lookup for a completed order failed", exc_info=True)
            entry = None
        return join_completed(view, entry=entry, fills=self.ib.fills(),
                              completed_at=self._completion_times.get(view.perm_id))

    def _on_error(self, req_id: int, code: int, text: str, contract: object = None) -> None:
        if req_id <= 0:
            return
        key = self._id_index.get((self._client_id(), req_id))
        view = self._views.get(key) if key is not None else None
        trade = self._trades.get(key)
        if view is None or trade is None:
            return
        info = ib_codes.describe(code, text)
        if code == 161:
            self._fail_cancel_waiters(key, NotCancellable(info.message, info.advice))
            return
        if code in (10147, 10148):  # TWS does not know the order we tried to cancel
            self._fail_cancel_waiters(key, OrderNotFound(info.message, info.advice))
        if code == 202:  # the cancel confirmation itself: the status message says it all
            return
        pending = self._pending_modify(key)
        refused_change = pending is not None and code not in _NOT_A_MODIFY_REFUSAL and not 2100 <= code <= 2199
        self._messages[key] = f"{'Change refused: ' if refused_change else ''}{info.message} ({code})"
        if view.journal_id:
            self._journal(lambda: self.journal.add_error(view.journal_id, code, text))
        status = None
        never_acknowledged = key not in self._acked
        if refused_change and not never_acknowledged:
            # the working order keeps its previous terms and status; the caller of modify() hears why
            self._settle_modify(key, pending.refusal(self._update(trade), info))
            return
        if code in _REJECT_CODES or (not info.order_warning and never_acknowledged):
            status = OrderStatus.REJECTED
        elif code in (110, 321) and never_acknowledged:
            status = OrderStatus.REJECTED  # off the tick / failed TWS validation: a new order is refused
        view = self._update(trade, status=status)
        if refused_change:  # changed before TWS acknowledged the order: the refusal still reaches the caller
            self._settle_modify(key, pending.refusal(view, info))

    def resync(self) -> None:
        """After (re)connect: fold every trade ib_async now knows (open + completed) into our views."""
        for trade in self.ib.trades():
            if not trade.order.whatIf:
                self._update(trade)

    def _journal(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:  # noqa: BLE001 - a journal hiccup must not lose the live view
            log.exception("order journal update failed")

    # --- validation ----------------------------------------------------------------------------
    async def check(self, request: OrderRequest, *, new_stop: bool = True,
                    ) -> tuple[tuple[ValidationIssue, ...], Instrument | None]:
        """Every rule ``request`` breaks, and the instrument when the symbol resolved. Sends nothing."""
        issues, instrument, _effective = await self._check(request, new_stop=new_stop)
        return issues, instrument

    async def _check(self, request: OrderRequest, *, new_stop: bool = True,
                     ) -> tuple[tuple[ValidationIssue, ...], Instrument | None, dict[str, Decimal]]:
        """Every rule ``request`` breaks, and the instrument when the symbol resolved. Sends nothing.

        ``new_stop=False`` (a modify that keeps the stop): the stop may have triggered already, so it is
        not judged against the market again.
        """
        issues: list[ValidationIssue] = []
        readonly, accounts, default_account = self._session_info()
        if readonly:
            issues.append(ValidationIssue("session", "readonly", readonly))
        problem = self._connection_problem()
        if problem:
            issues.append(ValidationIssue("session", "connection_stale", problem))
        account = request.account or default_account
        if request.account and accounts and request.account not in accounts:
            issues.append(ValidationIssue(
                "account", "unknown_account",
                f"Account {request.account} is not managed by this login: use one of {', '.join(accounts)}."))
        elif not account and len(accounts) > 1:
            issues.append(ValidationIssue(
                "account", "no_account", f"Choose the account for this order: one of {', '.join(accounts)}."))

        order_type = _enum_or_none(OrderType, request.order_type)
        if order_type is None:
            issues.append(ValidationIssue(
                "order_type", "unknown_order_type",
                f"Order type {_shown(request.order_type)} is not supported: use "
                f"{', '.join(t.value for t in OrderType)}."))
        tif = _enum_or_none(TimeInForce, request.tif)
        if tif is None:
            issues.append(ValidationIssue(
                "tif", "unknown_tif", f"Time in force {_shown(request.tif)} is not supported: use "
                          f"{', '.join(t.value for t in TimeInForce)}."))
        if _enum_or_none(Side, request.side) is None:
            issues.append(ValidationIssue("side", "unknown_side", f"Side {_shown(request.side)} is not BUY or SELL."))

        quantity = decimal_or_none(request.quantity)
        if quantity is None or quantity <= 0 or quantity != quantity.to_integral_value():
            issues.append(ValidationIssue(
                "quantity", "bad_quantity",
                f"Quantity {_shown(request.quantity)} is not a positive whole number of shares: enter one such as 100."))
            quantity = None

        instrument: Instrument | None = None
        try:
            instrument = await self.catalog.resolve(request.symbol, request.market)
        except SymbolError as exc:
            issues.append(ValidationIssue("symbol", "unknown_symbol", f"{exc.message} {exc.advice}".strip()))
        if instrument is None:
            return tuple(issues), None, {}

        allowed = {ib_order_type(t) for t in instrument.order_types}
        if order_type is not None and allowed and order_type.value not in allowed:
            usable = [t.value for t in OrderType if t.value in allowed]
            issues.append(ValidationIssue(
                "order_type", "order_type_not_allowed",
                f"{instrument.display} does not take {order_type.value} orders at IB: use "
                f"{' or '.join(usable) if usable else 'another order type'}."))
        if instrument.market is Market.HK and request.outside_rth:
            issues.append(ValidationIssue(
                "outside_rth", "outside_rth_hk",
                "Hong Kong stocks trade only in the regular session (09:30-12:00, 13:00-16:00 HKT): "
                "untick outside RTH."))
        elif order_type is OrderType.MKT and request.outside_rth:
            issues.append(ValidationIssue(
                "outside_rth", "outside_rth_market",
                "IB ignores 'outside regular hours' on a market order (warning 2109) and holds it for the regular "
                "session: use a limit order to trade outside regular hours, or untick outside RTH."))
        if quantity is not None:
            problem = check_quantity(quantity, _lot_of(instrument))
            if problem:
                issues.append(ValidationIssue("quantity", "odd_lot" if "lot" in problem else "bad_quantity", problem))

        prices: list[tuple[str, Decimal]] = []
        needs_limit = order_type in (OrderType.LMT, OrderType.STP_LMT, OrderType.LOC)
        needs_stop = order_type in (OrderType.STP, OrderType.STP_LMT)
        trail = order_type in order_kinds.TRAIL_TYPES  # its stop_price, when given, is the initial stop
        for field, value, needed in (("limit_price", request.limit_price, needs_limit),
                                     ("stop_price", request.stop_price, needs_stop or trail)):
            label = "Limit price" if field == "limit_price" else "Stop price"
            if value is None:
                if needed and not trail:
                    issues.append(ValidationIssue(
                        field, "price_missing", f"{label} is missing: a {order_type.value} order needs one."))  # type: ignore[union-attr]
                continue
            if order_type is not None and not needed:
                issues.append(ValidationIssue(
                    field, "price_not_used",
                    f"{label} is set but a {order_type.value} order does not use it: clear it or change the order type."))
                continue
            price = decimal_or_none(value)
            if price is None or price <= 0:
                issues.append(ValidationIssue(field, "bad_price", f"{label} {_shown(value)} must be a positive number."))
                continue
            prices.append((field, price))
        for field, value in (("take_profit", request.take_profit), ("stop_loss", request.stop_loss),
                             ("stop_loss_trail", request.stop_loss_trail)):
            if value is None:
                continue
            price = decimal_or_none(value)
            if price is None or price <= 0:
                issues.append(ValidationIssue(field, "bad_price", f"{field.replace('_', ' ').capitalize()} must be a positive number."))
                continue
            prices.append((field, price))

        if prices:
            table = await self.catalog.tick_table(instrument)
            for field, price in prices:
                if not table.is_on_tick(price):
                    down, up = table.round(price, "down"), table.round(price, "up")
                    issues.append(ValidationIssue(
                        field, "off_tick",
                        f"{price} is not on the price tick of {instrument.display} ({table.increment(price)} at this "
                        f"price, from the {table.source}): use {down} or {up}."))

        reference = await self.catalog.reference_price(instrument)
        special, effective = order_kinds.special_issues(
            request, order_type, tif, instrument, await self.catalog.tick_table(instrument), reference)
        issues.extend(special)
        prices = [(f, p) for f, p in prices if f not in effective] + list(effective.items())
        if (reference is None or reference <= 0) and order_type in (OrderType.LMT, OrderType.STP, OrderType.STP_LMT,
                                                                    OrderType.LOC):
            # fail closed: without a market price the fat-finger, resting-band and stop-through-market checks
            # cannot be made, and an order they would refuse must not slip through
            issues.append(ValidationIssue(
                "limit_price" if order_type in (OrderType.LMT, OrderType.LOC) else "stop_price", "no_reference_price",
                f"There is no market price for {instrument.display} right now (no quote arrived in time), so this "
                f"{order_type.value} order's price cannot be checked against the market and it was not sent: "
                "try again in a moment, or subscribe to its quote (Quotes tab, or GET /api/ibkr/quote) so a "
                "price is at hand."))
        if request.take_profit is not None or request.stop_loss is not None or request.stop_loss_trail is not None:
            issues.extend(self._check_bracket(request, order_type, tif, prices, reference))
        if reference is not None and reference > 0:
            priced_as = order_kinds.PRICED_AS.get(order_type, order_type)  # type: ignore[arg-type]
            issues.extend(self._check_distance(request, priced_as, dict(prices), reference, new_stop=new_stop))
        limit = self.max_order_value.get(instrument.currency.upper())
        if limit is not None and quantity is not None:
            unit = next((p for f, p in prices if f == "limit_price"), None) or next(
                (p for f, p in prices if f == "stop_price"), None) or reference
            if unit is None and order_type in (OrderType.MKT, OrderType.MOC):
                # safety first: a market order we cannot value could be of any size
                issues.append(ValidationIssue(
                    "order_type", "no_reference_price",
                    f"There is no last price for {instrument.display}, so this market order's value cannot be "
                    "checked against the limit: use a limit order, or wait until quotes arrive."))
            if unit is not None:
                value = unit * quantity
                if value > limit:
                    where = (f" (safety/max_order_value_{instrument.currency.lower()} in {self.limits_source})"
                             if self.limits_source else " in the settings")
                    issues.append(ValidationIssue(
                        "quantity", "order_value",
                        f"Order value {value:,.2f} {instrument.currency} is above the limit of {limit:,.2f} "
                        f"{instrument.currency}: lower the quantity, or raise the limit{where}."))
        return tuple(issues), instrument, effective

    def _check_distance(self, request: OrderRequest, order_type: OrderType | None, given: dict[str, Decimal],
                        reference: Decimal, *, new_stop: bool = True) -> list[ValidationIssue]:
        """Prices against the market: fat finger on the aggressive side, a wide sanity band on the passive
        side, and a stop already through the market (it would trigger at once)."""
        issues: list[ValidationIssue] = []
        side = _enum_or_none(Side, request.side)
        if side is None:
            return issues
        buy = side is Side.BUY
        word = "buy" if buy else "sell"
        ref = _plain(reference)
        stop = given.get("stop_price")
        if stop is not None and order_type in (OrderType.STP, OrderType.STP_LMT) and not new_stop:
            pass  # a working stop that may have triggered: its stop stands as it is
        elif stop is not None and order_type in (OrderType.STP, OrderType.STP_LMT):
            if buy and stop <= reference:
                issues.append(ValidationIssue(
                    "stop_price", "stop_through_market",
                    f"A buy stop at {_plain(stop)} is {'at' if stop == reference else 'below'} the market {ref}: "
                    "it would trigger at once — use a limit or a higher stop."))
                stop = None
            elif not buy and stop >= reference:
                issues.append(ValidationIssue(
                    "stop_price", "stop_through_market",
                    f"A sell stop at {_plain(stop)} is {'at' if stop == reference else 'above'} the market {ref}: "
                    "it would trigger at once — use a limit or a lower stop."))
                stop = None
            else:  # a protective stop: passive, only the sanity band applies
                issues.extend(self._too_far("stop_price", f"A {word} stop", stop, reference, passive=True))
        limit = given.get("limit_price")
        if limit is not None:
            # a stop-limit's limit applies once the stop triggers: the market then is the stop price
            market = stop if order_type is OrderType.STP_LMT and stop is not None else reference
            if order_type is OrderType.STP_LMT and stop is None and given.get("stop_price") is not None:
                return issues  # the stop is wrong already: judging the limit against it says nothing more
            aggressive = limit > market if buy else limit < market
            stop_limit = order_type is OrderType.STP_LMT and stop is not None
            label = f"The {word} stop-limit's limit" if stop_limit else f"A {word} limit"
            issues.extend(self._too_far("limit_price", label, limit, market, passive=not aggressive,
                                        against="the stop price" if stop_limit else "the last trade"))
        return issues

    def _too_far(self, field: str, label: str, price: Decimal, market: Decimal, *, passive: bool,
                 against: str = "the last trade") -> list[ValidationIssue]:
        distance = abs(price - market) / market * 100
        where = "above" if price > market else "below"
        if passive:
            band = max(PASSIVE_BAND_PCT, self.fat_finger_pct)
            if distance <= band:
                return []
            return [ValidationIssue(
                field, "far_from_market",
                f"{label} at {_plain(price)} is {distance:.1f}% {where} {against} {_plain(market)}: more than the "
                f"{_plain(band)}% a resting order may be from the market — check the price.")]
        if distance <= self.fat_finger_pct:
            return []
        source = f": safety/fat_finger_pct in {self.limits_source}" if self.limits_source else ""
        return [ValidationIssue(
            field, "fat_finger",
            f"{label} at {_plain(price)} is {distance:.1f}% {where} {against} {_plain(market)} and would trade "
            f"through the market (limit {_plain(self.fat_finger_pct)}%{source}): check the price.")]

    @staticmethod
    def _check_bracket(request: OrderRequest, order_type: OrderType | None, tif: TimeInForce | None,
                       prices: list[tuple[str, Decimal]], reference: Decimal | None) -> list[ValidationIssue]:
        """Take-profit above / stop-loss below the entry for a buy (mirrored for a sell); no IOC parent."""
        issues = []
        if tif in (TimeInForce.IOC, TimeInForce.OPG):
            issues.append(ValidationIssue(
                "tif", "bracket_tif", f"A bracket (take-profit / stop-loss) needs a DAY, GTC or GTD entry, "
                                      f"not {tif.value}."))
        if request.stop_loss is not None and request.stop_loss_trail is not None:
            issues.append(ValidationIssue(
                "stop_loss_trail", "bracket_two_stops",
                "Choose a stop-loss price or a trailing stop-loss, not both."))
        given = dict(prices)
        entry = given.get("limit_price") or given.get("stop_price") or reference
        buy = _enum_or_none(Side, request.side) is Side.BUY
        if entry is None:
            return issues
        take_profit, stop_loss = given.get("take_profit"), given.get("stop_loss")
        if take_profit is not None and (take_profit <= entry if buy else take_profit >= entry):
            issues.append(ValidationIssue(
                "take_profit", "bracket_side",
                f"Take-profit {take_profit} must be {'above' if buy else 'below'} the entry price {entry} "
                f"for a {'buy' if buy else 'sell'}."))
        if stop_loss is not None and (stop_loss >= entry if buy else stop_loss <= entry):
            issues.append(ValidationIssue(
                "stop_loss", "bracket_side",
                f"Stop-loss {stop_loss} must be {'below' if buy else 'above'} the entry price {entry} "
                f"for a {'buy' if buy else 'sell'}."))
        return issues

    # --- placing -------------------------------------------------------------------------------
    def _build_order(self, request: OrderRequest, account: str | None, instrument: Instrument | None = None,
                     effective: dict[str, Decimal] | None = None) -> Order:
        # validated already: the enums parse (API callers may pass "buy" / "lmt" spelled their way)
        order_type = _enum_or_none(OrderType, request.order_type)
        order = Order(
            action=_enum_or_none(Side, request.side).value,
            totalQuantity=float(decimal_or_none(request.quantity)),
            orderType=order_type.value,
            tif=_enum_or_none(TimeInForce, request.tif).value,
            outsideRth=bool(request.outside_rth),
            account=account or "",
        )
        if order_type in (OrderType.LMT, OrderType.STP_LMT):
            order.lmtPrice = float(decimal_or_none(request.limit_price))  # type: ignore[arg-type]
        if order_type in (OrderType.STP, OrderType.STP_LMT):
            order.auxPrice = float(decimal_or_none(request.stop_price))  # type: ignore[arg-type]
        if instrument is not None:
            order_kinds.apply_to_order(order, request, order_type, effective or {}, instrument)
        return order

    async def place(self, request: OrderRequest) -> OrderView:
        if not self._is_connected():
            raise NotConnected()
        issues, instrument, effective = await self._check(request)
        if issues:
            raise OrderRejected(issues)
        assert instrument is not None
        if not self._is_connected():
            raise NotConnected()
        wait = self._order_wait()
        if wait > self.max_order_wait:
            raise OrdersBacklogged(wait, self.max_order_wait)  # before the journal: nothing is sent or recorded
        _readonly, _accounts, default_account = self._session_info()
        account = request.account or default_account
        contract = self.catalog.contract(instrument)
        order = self._build_order(request, account, instrument, effective)
        # The intent is durable before a single byte leaves: a crash from here on leaves an
        # UNCONFIRMED entry that the next reconcile settles from what TWS knows.
        journal_id = self.journal.record_intent(request, instrument, account)
        order.orderRef = journal_mod.order_ref(journal_id)
        children = self._bracket_children(request, order, journal_id)
        try:
            order.orderId = self.ib.client.getReqId()
            order.transmit = not children  # a bracket goes out when its last child is transmitted
            trade = self.ib.placeOrder(contract, order)
            for index, child in enumerate(children):
                child.orderId = self.ib.client.getReqId()
                child.parentId = order.orderId
                child.transmit = index == len(children) - 1
                self._update(self.ib.placeOrder(contract, child))
        except Exception as exc:
            reason = f"send failed: {exc}"
            self._journal(lambda: self.journal.mark_not_sent(journal_id, reason))
            raise BrokerError(f"The order could not be sent: {exc}.",
                              "Nothing reached TWS; check the connection and send it again.") from exc
        self._journal(lambda: self.journal.mark_sent(journal_id, order.orderId, self._client_id()))
        return self._update(trade)

    @staticmethod
    def _bracket_children(request: OrderRequest, parent: Order, journal_id: str) -> list[Order]:
        """Take-profit (LMT) and stop-loss (STP) on the other side, same size, tagged "/tp" and "/sl"."""
        exit_side = "SELL" if parent.action == "BUY" else "BUY"
        children = []
        tif = "GTC" if parent.tif == "GTC" else parent.tif
        if request.take_profit is not None:
            children.append(Order(action=exit_side, totalQuantity=parent.totalQuantity, orderType="LMT",
                                  lmtPrice=float(Decimal(request.take_profit)), tif=tif, account=parent.account,
                                  outsideRth=parent.outsideRth, orderRef=journal_mod.order_ref(journal_id, "tp")))
        if request.stop_loss is not None:
            children.append(Order(action=exit_side, totalQuantity=parent.totalQuantity, orderType="STP",
                                  auxPrice=float(Decimal(request.stop_loss)), tif=tif, account=parent.account,
                                  outsideRth=parent.outsideRth, orderRef=journal_mod.order_ref(journal_id, "sl")))
        if request.stop_loss_trail is not None:  # trails from the moment the entry fills
            children.append(Order(action=exit_side, totalQuantity=parent.totalQuantity, orderType="TRAIL",
                                  auxPrice=float(Decimal(request.stop_loss_trail)), tif=tif, account=parent.account,
                                  outsideRth=parent.outsideRth, orderRef=journal_mod.order_ref(journal_id, "sl")))
        for child in children:
            child.goodTillDate = parent.goodTillDate
        return children

    async def preview(self, request: OrderRequest, timeout: float) -> WhatIf:
        if not self._is_connected():
            raise NotConnected()
        issues, instrument, effective = await self._check(request)
        if issues:
            raise OrderRejected(issues)
        assert instrument is not None
        _readonly, _accounts, default_account = self._session_info()
        order = self._build_order(request, request.account or default_account, instrument, effective)
        try:
            # whatIfOrderAsync has no timeout and hangs when TWS leaves the margins empty.
            state = await asyncio.wait_for(self.ib.whatIfOrderAsync(self.catalog.contract(instrument), order), timeout)
        except asyncio.TimeoutError as exc:
            raise BrokerTimeout(f"TWS did not answer the what-if preview within {timeout:g} s.",
                                "Try again; if it keeps failing the account may not allow a margin preview.") from exc
        except RequestError as exc:
            info = ib_codes.describe(exc.code, exc.message)
            raise BrokerError(f"TWS refused the what-if preview: {info.message} ({exc.code})", info.advice) from exc
        if state is None:
            raise BrokerError("TWS refused the what-if preview.", "See the log for IB's reason.")
        return what_if_model(state)

    def _own_trade(self, order_id: int) -> tuple[OrderKey, OrderView, Trade]:
        key = self._find_key(order_id)
        if key is None:
            raise OrderNotFound(f"There is no order {order_id}.", "Refresh the Orders tab and pick a listed order.")
        view, trade = self._views[key], self._trades.get(key)
        if view.status is OrderStatus.NOT_SENT:
            raise NotCancellable(f"Order {order_id} was never sent to TWS (NotSent): there is nothing to cancel "
                                 "or change.", "Place a new order if you still want it.")
        if view.status.is_done:
            raise NotCancellable(f"Order {order_id} is already {view.status.value.lower()}.",
                                 "Nothing to change: it is no longer working.")
        if view.client_id not in (None, self._client_id()):
            raise BrokerError(f"Order {order_id} belongs to another program (client id {view.client_id}).",
                              "Change it in TWS or in the program that placed it.")
        if trade is None:
            raise BrokerError(f"Order {order_id} is not confirmed by TWS since the connection came back.",
                              "Wait until the Orders tab shows its status from TWS, then try again.")
        return key, view, trade

    async def modify(self, order_id: int, *, quantity: Decimal | None, limit_price: Decimal | None,
                     stop_price: Decimal | None) -> OrderView:
        if not self._is_connected():
            raise NotConnected()
        key, view, trade = self._own_trade(order_id)
        request = OrderRequest(
            symbol=view.instrument.display, market=view.instrument.market, side=view.side,
            quantity=quantity if quantity is not None else view.quantity,
            order_type=_enum_or_none(OrderType, view.order_type) or view.order_type,  # type: ignore[arg-type]
            limit_price=limit_price if limit_price is not None else view.limit_price,
            stop_price=stop_price if stop_price is not None else view.stop_price,
            tif=_enum_or_none(TimeInForce, view.tif) or view.tif,  # type: ignore[arg-type]
            # SEHK has no extended hours: an HK order placed with the flag (before it was refused) drops it
            outside_rth=view.outside_rth and view.instrument.market is not Market.HK, account=view.account,
            **_kept_terms(trade.order, view),
        )
        issues, _instrument = await self.check(
            request, new_stop=stop_price is not None and decimal_or_none(stop_price) != view.stop_price)
        below_filled = _below_filled(view, decimal_or_none(quantity) if quantity is not None else None)
        if below_filled is not None:
            issues = (below_filled, *(i for i in issues if i.field != "quantity"))
        if issues:
            raise OrderRejected(issues)
        # a copy: the live Trade keeps what TWS last confirmed until TWS echoes the change
        order = copy.copy(trade.order)
        order.transmit = True  # a bracket parent was first sent held (transmit off): a change must go out
        order.totalQuantity = float(decimal_or_none(request.quantity))
        order.outsideRth = bool(request.outside_rth)
        if request.limit_price is not None:
            order.lmtPrice = float(decimal_or_none(request.limit_price))
        if ib_order_type(view.order_type) in ("TRAIL", "TRAIL LIMIT"):
            if stop_price is not None:  # a trailing stop's auxPrice is its distance: a new stop moves trailStopPrice
                order.trailStopPrice = float(decimal_or_none(stop_price))
        elif request.stop_price is not None:
            order.auxPrice = float(decimal_or_none(request.stop_price))
        if view.journal_id:
            self._journal(lambda: self.journal.update(
                view.journal_id, message=f"modify: quantity {request.quantity}, limit {request.limit_price}, "
                                         f"stop {request.stop_price}"))
        changed = [f for f, v in (("quantity", quantity), ("limit_price", limit_price), ("stop_price", stop_price))
                   if v is not None]
        pending = _PendingModify(asyncio.get_running_loop(), trade.orderStatus.status, order, changed)
        self._settle_modify(key, BrokerError(
            f"A newer change to order {order_id} was sent before TWS answered this one.",
            "The latest change is the one that counts: check the Orders tab."))  # only the latest change is awaited
        self._modifying[key] = pending
        self.ib.placeOrder(trade.contract, order)
        self._update(trade)
        try:
            return await asyncio.wait_for(asyncio.shield(pending.waiter), MODIFY_ACK_TIMEOUT)
        except asyncio.TimeoutError as exc:
            raise BrokerTimeout(
                f"TWS did not confirm the change to order {order_id} within {MODIFY_ACK_TIMEOUT:g} s.",
                "Check the Orders tab: until TWS confirms the change the order keeps its previous terms.") from exc
        finally:
            if not pending.waiter.done():
                pending.waiter.cancel()  # stays in _modifying a while: a late refusal still keeps the old terms

    async def put_in_oca(self, order_ids: list[int], group: str, oca_type: int = 1) -> list[OrderView]:
        """Put working orders in one one-cancels-all group: each is modified with ocaGroup / ocaType.

        IB requires one account for the group: orders of several accounts are refused and nothing is sent.
        ``oca_type`` 1 cancels the others when one fills (2 and 3 reduce them instead).
        """
        if not self._is_connected():
            raise NotConnected()
        readonly, _a, _b = self._session_info()
        if readonly:
            raise BrokerError(readonly, "Connect without read-only to group orders.")
        group = group.strip()
        if not group:
            raise BrokerError("An OCA group needs a name.", "Type a group name, e.g. OCA-AAPL-1.")
        if len(set(order_ids)) < 2:
            raise BrokerError("An OCA group needs at least two working orders.", "Select two or more in Orders.")
        if oca_type not in (1, 2, 3):
            raise BrokerError(f"OCA type {oca_type} does not exist.", "Use 1 (cancel the others on a fill), 2 or 3.")
        owned = [self._own_trade(order_id) for order_id in dict.fromkeys(order_ids)]
        accounts = {view.account for _key, view, _trade in owned}
        if len(accounts) > 1:
            raise BrokerError(
                f"These orders belong to {len(accounts)} accounts ({', '.join(sorted(a or '?' for a in accounts))}): "
                "IB groups orders of one account only.", "Select orders of a single account.")
        views = []
        for _key, view, trade in owned:
            order = copy.copy(trade.order)
            order.ocaGroup, order.ocaType = group, oca_type
            order.transmit = True
            if view.journal_id:
                self._journal(lambda jid=view.journal_id: self.journal.update(jid, message=f"OCA group {group}"))
            self.ib.placeOrder(trade.contract, order)
            views.append(self._update(trade))
        return views

    async def cancel(self, order_id: int, timeout: float) -> OrderView:
        if not self._is_connected():
            raise NotConnected()
        readonly, _a, _b = self._session_info()
        if readonly:
            raise BrokerError(f"{readonly} Cancels are blocked too.", "Cancel in TWS if it cannot wait.")
        key, view, trade = self._own_trade(order_id)
        waiter: asyncio.Future = asyncio.get_running_loop().create_future()
        self._cancel_waiters.setdefault(key, []).append(waiter)
        try:
            self.ib.cancelOrder(trade.order)
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError as exc:
            raise BrokerTimeout(f"TWS did not confirm the cancel of order {order_id} within {timeout:g} s.",
                                "Check the Orders tab: it may still be working.") from exc
        finally:
            waiters = self._cancel_waiters.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)

    def _wake_cancel_waiters(self, key: OrderKey, view: OrderView) -> None:
        if not view.status.is_done:
            return
        for waiter in self._cancel_waiters.pop(key, []):
            if waiter.done():
                continue
            if view.status in (OrderStatus.CANCELLED, OrderStatus.API_CANCELLED):
                waiter.set_result(view)
            else:
                waiter.set_exception(NotCancellable(
                    f"Order {view.order_id} was {view.status.value.lower()} before the cancel arrived.",
                    "Check the Fills and Positions tabs."))

    def _fail_cancel_waiters(self, key: OrderKey, exc: BrokerError) -> None:
        for waiter in self._cancel_waiters.pop(key, []):
            if not waiter.done():
                waiter.set_exception(exc)

    async def cancel_all(self) -> None:
        if not self._is_connected():
            raise NotConnected()
        readonly, _a, _b = self._session_info()
        if readonly:
            raise BrokerError(f"{readonly} Cancels are blocked too.", "Cancel in TWS if it cannot wait.")
        self.ib.reqGlobalCancel()

    def settle_unsent(self, dropped: list[str], reason: str) -> int:
        """PLACE_ORDER messages that never left the pacer: their orders are NotSent (view and journal).

        Returns how many orders were settled. A dropped change to an acknowledged order is not a new
        order: that order keeps working with its previous terms (its pending modify is told elsewhere).
        """
        settled = 0
        client_id = self._client_id() if self.ib.client.clientId is not None else None
        for msg in dropped:
            order_id = placed_order_id(msg)
            key = self._id_index.get((client_id, order_id)) if order_id is not None else None
            view = self._views.get(key) if key is not None else None
            if view is None or key in self._acked or view.status.is_done:
                continue
            self._messages[key] = reason
            self._views[key] = view = replace(view, status=OrderStatus.NOT_SENT, message=reason, updated_at=now_utc())
            if view.journal_id:
                self._journal(lambda journal_id=view.journal_id: self.journal.mark_not_sent(journal_id, reason))
            settled += 1
            self._on_change(view)
            self._wake_cancel_waiters(key, view)
        return settled

    def settle_from_journal(self, entries: list[journal_mod.JournalEntry]) -> None:
        """After a reconcile: views of orders the journal now calls NotSent (TWS never got them) say so too."""
        never_sent = {e.journal_id: e.message for e in entries if e.status == OrderStatus.NOT_SENT.value}
        if not never_sent:
            return
        for key, view in list(self._views.items()):
            if view.journal_id in never_sent and not view.status.is_done and key not in self._acked:
                message = never_sent[view.journal_id] or "never reached TWS"
                self._messages[key] = message
                self._views[key] = view = replace(view, status=OrderStatus.NOT_SENT, message=message,
                                                  updated_at=now_utc())
                self._on_change(view)
                self._wake_cancel_waiters(key, view)

    def forget_all(self) -> None:
        """Another TWS: nothing we showed belongs to it (the journal keeps the history)."""
        for waiters in self._cancel_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(NotConnected("The connection changed before the cancel was confirmed."))
        self._cancel_waiters.clear()
        for key in list(self._modifying):
            self._settle_modify(key, NotConnected("The connection changed before TWS confirmed the change."))
        for store in (self._views, self._perm_index, self._trades, self._messages, self._created, self._id_index):
            store.clear()
        self._acked.clear()
        self._completion_times.clear()

    def mark_stale(self) -> None:
        """Forget ib_async's live objects after a drop; views stay, trades come back on resync."""
        self._trades.clear()
        for key in list(self._modifying):
            self._settle_modify(key, NotConnected(
                "The connection dropped before TWS confirmed the change.",
                "Check the order in the Orders tab after reconnecting: it may have its previous terms."))


#: Order fields TWS changes or confirms on a working order that ib_async does not copy from the openOrder echo.
_ECHOED_FIELDS = ("trailStopPrice", "trailingPercent", "lmtPriceOffset", "ocaGroup", "ocaType", "goodTillDate")


def _echo_more_order_fields(ib: IB) -> None:
    """Copy the trailing stop's current stop and the OCA group from every openOrder echo onto the live Trade
    (ib_async copies only prices, quantity, type and orderRef), before the openOrder events fire."""
    wrapper = ib.wrapper
    original = wrapper.openOrder
    if getattr(original, "_ibpanel_echo", False):
        return

    def open_order(order_id, contract, order, order_state):
        if not order.whatIf:
            trade = wrapper.trades.get(wrapper.orderKey(order.clientId, order.orderId, order.permId))
            if trade is not None:
                for name in _ECHOED_FIELDS:
                    value = getattr(order, name)
                    if value not in ("", None) and not (isinstance(value, float) and value >= 1e300):
                        setattr(trade.order, name, value)  # an unset echo keeps what was sent
        return original(order_id, contract, order, order_state)

    open_order._ibpanel_echo = True  # type: ignore[attr-defined]
    wrapper.openOrder = open_order  # type: ignore[method-assign]


def _kept_terms(order: Order, view: OrderView) -> dict[str, Any]:
    """What a modify keeps of a trailing stop (its distance, limit offset; its current stop is not judged
    again) and of a GTD order (its good-till moment), so the change is checked like the order it is."""
    kept: dict[str, Any] = {}
    if ib_order_type(view.order_type) in ("TRAIL", "TRAIL LIMIT"):
        percent = decimal_or_none(order.trailingPercent) if order.trailingPercent is not None else None
        if percent is not None and 0 < percent < 100:
            kept["trailing_percent"] = percent
        else:
            kept["trailing_amount"] = decimal_or_none(order.auxPrice)
        offset = decimal_or_none(order.lmtPriceOffset) if order.lmtPriceOffset is not None else None
        if offset is not None and 0 <= offset < Decimal("1e300"):
            kept["limit_offset"] = offset
    if view.tif == "GTD" and order.goodTillDate:
        kept["good_till"] = order.goodTillDate
    return kept


def _same(a: OrderView, b: OrderView) -> bool:
    return replace(a, updated_at=None) == replace(b, updated_at=None)


def _enum_or_none(enum: Any, value: object) -> Any:
    try:
        return enum(value.value if hasattr(value, "value") else str(value).strip().upper())
    except (ValueError, AttributeError):
        return None


def _shown(value: object) -> str:
    """A value as the user typed it: numbers plain (1.5, never Decimal('1.5')), text in quotes."""
    value = getattr(value, "value", value)
    if isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
        return _plain(value)
    return repr(value)


def _plain(value: Decimal | float | int) -> str:
    """A number without exponent or type noise: Decimal('1.50') -> "1.50", 1E+2 -> "100"."""
    if isinstance(value, Decimal):
        return f"{value:f}" if value.is_finite() else str(value)
    return str(value)


def _lot_of(instrument: Instrument) -> BoardLot:
    return BoardLot(instrument.board_lot, instrument.lot_source or "unknown", instrument.symbol, instrument.market)



class _PendingModify:
    """A change sent to TWS and not yet confirmed (open-order echo with the new terms) or refused (an error)."""

    _ATTRIBUTE = {"quantity": "totalQuantity", "limit_price": "lmtPrice", "stop_price": "auxPrice"}

    def __init__(self, loop: asyncio.AbstractEventLoop, status_before: str, order: Order, changed: list[str]) -> None:
        self.waiter: asyncio.Future = loop.create_future()
        self.sent_at = time.monotonic()  # read from ib_async callbacks too, loop or not
        self.status_before = status_before  # what the order shows again if TWS refuses the change
        # the terms the echo must carry (only those changed: TWS may spell unset prices differently)
        self.terms = {self._ATTRIBUTE[f]: getattr(order, self._ATTRIBUTE[f]) for f in changed}
        self.field = changed[0] if changed else "order"  # named in a refusal
        self.outside_rth = bool(order.outsideRth)

    def matches(self, order: Order) -> bool:
        return all(_same_number(value, getattr(order, name, None)) for name, value in self.terms.items())

    def refusal(self, view: OrderView, info: ib_codes.ErrorInfo) -> ModifyRejected:
        terms = f"{_plain(view.quantity)} shares" + (
            f" at {_plain(view.limit_price)}" if view.limit_price is not None else "") + (
            f", stop {_plain(view.stop_price)}" if view.stop_price is not None else "")
        message = (f"TWS refused the change to order {view.order_id}: {info.message} ({info.code}). "
                   f"The order keeps its previous terms ({terms}).")
        return ModifyRejected([ValidationIssue(self.field, "tws_refused", message)], code=info.code,
                              ib_text=info.ib_text, advice=info.advice)


def _same_number(a: object, b: object) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-9  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return a == b


def _below_filled(view: OrderView, quantity: Decimal | None) -> ValidationIssue | None:
    """A new total at or below what is already filled cannot be sent: say the smallest that can."""
    filled = view.filled or Decimal(0)
    if quantity is None or filled <= 0 or quantity > filled:
        return None
    lot = max(int(view.instrument.board_lot or 1), 1)
    smallest = (filled // lot + 1) * lot
    lots = f" (whole lots of {lot:,} above it)" if lot > 1 else ""
    where = "below" if quantity < filled else "not above"
    return ValidationIssue(
        "quantity", "below_filled",
        f"New quantity {_count(quantity)} is {where} the {_count(filled)} already filled: the smallest is "
        f"{_count(smallest)}{lots}, or cancel the rest.")


def _count(value: Decimal) -> str:
    """A share count with thousands separators: 1000 -> "1,000"."""
    return f"{int(value):,}" if value == value.to_integral_value() else f"{value:,f}"
