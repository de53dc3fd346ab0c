"""Orders: place / cancel / global cancel, open and completed orders, order ids, executions, and
the exchange's order events sent to the clients that should see them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from ibpanel.sim import protocol as P
from ibpanel.sim.calendars import UTC
from ibpanel.sim.exchange import (
    AccountTouched,
    Executed,
    OrderError,
    OrderUpdated,
    SimExecution,
    SimOrder,
    WhatIfResult,
)
from ibpanel.sim.handlers.contracts import (
    TEXT_NO_CURRENCY,
    TEXT_NO_EXCHANGE,
    TEXT_NO_SECURITY,
    _replace_record,
)
from ibpanel.sim.market import SimInstrument

if TYPE_CHECKING:
    from ibpanel.sim.transport import ClientSession


TEXT_READ_ONLY = ("Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode.")
TEXT_DUPLICATE_ORDER_ID = "Duplicate order id"


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


class OrderHandlers:
    """SimServer's orders part (mixed into SimServer; state lives on the server)."""

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
        self._state_changed()
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
