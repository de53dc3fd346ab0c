"""Flatten: the closing orders for one position or every position of an account.

Qt-free. ``plan_flatten`` turns positions (and, for limit orders, their quotes and tick tables) into one
``OrderRequest`` per position; ``prepare_flatten`` gathers what it needs from the broker and checks every
request with ``broker.check`` (nothing is sent); ``execute_flatten`` cancels the account's working orders
first, as TWS does before it closes positions, then sends each checked request with ``broker.place``, the
same path as the ticket and the REST API. The UI shows ``FlattenPlan.describe()`` in one confirmation.

Quantities: a position is closed in whole board lots (SEHK trades odd lots only on its odd-lot market,
where an API order cannot go); an odd remainder is listed as not closed, never rounded up past the holding.
Limit prices: a sell at the bid minus ``offset_ticks`` ticks, a buy at the ask plus them (0 = at the touch),
falling back to the last price when the side of the book is empty; no price at all means no order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Position, Quote, Side, ValidationIssue
from ibpanel.broker.rules import BoardLot, TickTable, round_to_lots, to_decimal


@dataclass(frozen=True)
class FlattenLine:
    """One position and the order that closes it (None when it cannot be closed; ``note`` says why)."""

    position: Position
    request: OrderRequest | None
    note: str = ""
    issues: tuple[ValidationIssue, ...] = ()

    @property
    def sendable(self) -> bool:
        return self.request is not None and not self.issues

    def describe(self) -> str:
        pos = self.position
        name = pos.instrument.display
        if self.request is None:
            return f"{name}: not closed: {self.note}"
        req = self.request
        price = f" LMT {req.limit_price}" if req.order_type is OrderType.LMT else " MKT"
        text = f"{req.side.value} {req.quantity} {name}{price} {pos.currency}"
        if self.note:
            text += f" ({self.note})"
        if self.issues:
            text += " — NOT SENT: " + "; ".join(i.message for i in self.issues)
        return text


@dataclass(frozen=True)
class FlattenPlan:
    account: str
    lines: tuple[FlattenLine, ...]
    #: Working orders of the account (or of the one position) cancelled before the closing orders go.
    cancel_order_ids: tuple[int, ...] = ()

    @property
    def requests(self) -> tuple[OrderRequest, ...]:
        return tuple(line.request for line in self.lines if line.sendable and line.request is not None)

    def describe(self) -> str:
        """Every order of the flatten, for the one confirmation."""
        head = [f"Flatten account {self.account}:"]
        if self.cancel_order_ids:
            ids = ", ".join(str(i) for i in self.cancel_order_ids)
            head.append(f"First cancel {len(self.cancel_order_ids)} working order(s): {ids}")
        if not self.lines:
            head.append("No position to close.")
        return "\n".join(head + [f"  • {line.describe()}" for line in self.lines])


_GONE = (OrderStatus.CANCELLED, OrderStatus.API_CANCELLED)


@dataclass
class FlattenResult:
    cancelled: list[int] = field(default_factory=list)
    placed: list[Any] = field(default_factory=list)  # OrderView per order sent
    failed: list[tuple[OrderRequest, str]] = field(default_factory=list)
    #: Why nothing was sent (a cancel failed: an order may have filled, so the positions are not the plan's).
    stopped: str = ""


def limit_price(side: Side, quote: Quote | None, ticks: TickTable | None, offset_ticks: int) -> Decimal | None:
    """A marketable limit: sell at bid - offset, buy at ask + offset (last when that side is empty)."""
    if quote is None or ticks is None:
        return None
    touch = quote.bid if side is Side.SELL else quote.ask
    if touch is None or touch <= 0:
        touch = quote.last
    if touch is None or touch <= 0:
        return None
    price = ticks.round(to_decimal(touch), "down" if side is Side.SELL else "up")
    step = -offset_ticks if side is Side.SELL else offset_ticks
    price = ticks.step(price, step) if step else price
    return price if price > 0 else None


def closing_line(position: Position, *, order_type: OrderType = OrderType.MKT, offset_ticks: int = 0,
                 quote: Quote | None = None, ticks: TickTable | None = None, source: str = "panel") -> FlattenLine:
    """The order that closes ``position`` (opposite side, whole board lots)."""
    inst = position.instrument
    order_type = OrderType(order_type)
    held = abs(to_decimal(position.quantity))
    side = Side.SELL if position.quantity > 0 else Side.BUY
    lot = BoardLot(size=inst.board_lot, source=inst.lot_source or "unknown", symbol=inst.symbol, market=inst.market)
    if not lot.known:
        return FlattenLine(position, None, f"the board lot of {lot.describe()} is unknown")
    quantity = round_to_lots(held, lot, "down")
    odd = held - quantity
    note = f"{odd} odd-lot share(s) stay: close them on the odd-lot market" if odd else ""
    if quantity <= 0:
        return FlattenLine(position, None, note or "nothing to close")
    price = None
    if order_type is OrderType.LMT:
        price = limit_price(side, quote, ticks, offset_ticks)
        if price is None:
            return FlattenLine(position, None, "no bid, ask or last price for a limit order: flatten at market")
    request = OrderRequest(symbol=inst.display, side=side, quantity=quantity, order_type=order_type,
                           limit_price=price, account=position.account, market=inst.market, source=source)
    return FlattenLine(position, request, note)


def plan_flatten(account: str, positions: Iterable[Position], *, order_type: OrderType = OrderType.MKT,
                 offset_ticks: int = 0, quotes: Mapping[str, Quote] | None = None,
                 ticks: Mapping[str, TickTable] | None = None, cancel_order_ids: Iterable[int] = (),
                 source: str = "panel") -> FlattenPlan:
    """One closing line per held position of ``account`` (quotes / ticks keyed by ``Instrument.key``)."""
    quotes = quotes or {}
    ticks = ticks or {}
    lines = tuple(
        closing_line(p, order_type=order_type, offset_ticks=offset_ticks, quote=quotes.get(p.instrument.key),
                     ticks=ticks.get(p.instrument.key), source=source)
        for p in positions if p.account == account and p.quantity != 0)
    return FlattenPlan(account, lines, tuple(cancel_order_ids))


async def prepare_flatten(broker: Any, account: str, *, con_id: int | None = None,
                          order_type: OrderType = OrderType.MKT, offset_ticks: int = 0,
                          source: str = "panel") -> FlattenPlan:
    """The plan for every position of ``account`` (or only ``con_id``), each request checked. Sends nothing."""
    positions = [p for p in broker.positions(account)
                 if p.account == account and (con_id is None or p.instrument.con_id == con_id)]
    quotes: dict[str, Quote] = {}
    tables: dict[str, TickTable] = {}
    if order_type is OrderType.LMT:
        for p in positions:
            quotes[p.instrument.key] = broker.quote(p.instrument) or await broker.snapshot(p.instrument)
            tables[p.instrument.key] = await broker.tick_table(p.instrument)
    held = {p.instrument.con_id for p in positions}
    cancel = tuple(o.order_id for o in broker.open_orders()
                   if o.account == account and not o.status.is_done and (con_id is None or o.instrument.con_id in held))
    plan = plan_flatten(account, positions, order_type=order_type, offset_ticks=offset_ticks, quotes=quotes,
                        ticks=tables, cancel_order_ids=cancel, source=source)
    lines = []
    for line in plan.lines:
        if line.request is not None:
            line = FlattenLine(line.position, line.request, line.note, tuple(await broker.check(line.request)))
        lines.append(line)
    return FlattenPlan(plan.account, tuple(lines), plan.cancel_order_ids)


async def execute_flatten(broker: Any, plan: FlattenPlan, cancel_timeout: float = 5.0) -> FlattenResult:
    """Cancel the plan's working orders, then place each checked closing order (one per position).

    Fails closed: when a cancel is not confirmed (the order may have filled meanwhile, changing the position)
    no closing order is sent and ``stopped`` says why; the trader flattens again from fresh positions.
    """
    result = FlattenResult()
    for order_id in plan.cancel_order_ids:
        try:
            await broker.cancel(order_id, cancel_timeout)
            result.cancelled.append(order_id)
        except Exception as exc:  # noqa: BLE001 - any failure stops the flatten
            if getattr(broker.order(order_id), "status", None) in _GONE:
                result.cancelled.append(order_id)
                continue
            result.stopped = (f"order {order_id} could not be cancelled ({exc}); no closing order was sent. "
                              "Check Orders and Positions, then flatten again.")
            return result
    for request in plan.requests:
        try:
            result.placed.append(await broker.place(request))
        except Exception as exc:  # noqa: BLE001 - one refused order does not stop the others
            result.failed.append((request, str(exc)))
    return result
