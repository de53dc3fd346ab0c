"""ib_async objects -> our frozen models. The only place that reads ib_async's data classes field by field.

ib_async marks "no value" with ``UNSET_DOUBLE`` (``sys.float_info.max``), ``UNSET_INTEGER``
(``2**31 - 1``), NaN (empty ticker fields) or an empty string (what-if margins); every one of
those becomes ``None`` here so nothing past broker/ ever shows 1.79e308.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from ib_async.util import UNSET_INTEGER

from ibpanel.broker.models import (
    AccountSummary,
    AccountValue,
    Bar,
    Fill,
    Instrument,
    Market,
    MarketDataType,
    OrderStatus,
    OrderView,
    Position,
    Quote,
    Side,
    WhatIf,
)
from ibpanel.numbers import float_to_decimal

# Anything this large is one of IB's "unset" spellings, however it was rounded on the way.
_UNSET_FLOOR = 1e300


def num(value: object) -> float | None:
    """A displayable float, or None for every unset marker (UNSET_DOUBLE, NaN, '', None, inf)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = float(value)
        except ValueError:
            return None
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if math.isnan(result) or math.isinf(result) or abs(result) >= _UNSET_FLOOR:
        return None
    return result


def dec(value: object) -> Decimal | None:
    """A Decimal from a wire float without binary noise (0.1 stays 0.1), or None when unset."""
    if isinstance(value, Decimal):
        return None if not value.is_finite() else value
    as_float = num(value)
    if as_float is None:
        return None
    try:
        return float_to_decimal(as_float)
    except (InvalidOperation, ValueError, OverflowError):
        return None


def int_id(value: object) -> int | None:
    """An IB id (orderId, permId, conId), or None for 0 / UNSET_INTEGER / missing."""
    if value is None:
        return None
    try:
        result = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    if result in (0, UNSET_INTEGER) or result == -1:
        return None
    return result


def utc(value: object) -> datetime | None:
    """Aware UTC datetime from ib_async's datetime (naive ones are taken as UTC), else None."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def known_price(value: object) -> float | None:
    """A fill price, or None when it is unset or 0 (ib_async's default where TWS sent none: completed orders)."""
    price = num(value)
    return price if price is not None and price > 0 else None


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def market_of(contract: object) -> Market:
    """HK when the stock is on SEHK or in HKD, else US."""
    exchange = (getattr(contract, "exchange", "") or "").upper()
    primary = (getattr(contract, "primaryExchange", "") or "").upper()
    currency = (getattr(contract, "currency", "") or "").upper()
    if "SEHK" in (exchange, primary) or currency == "HKD":
        return Market.HK
    return Market.US


def bare_instrument(contract: object) -> Instrument:
    """An Instrument from a contract alone (orders / positions TWS knows but we never resolved)."""
    market = market_of(contract)
    exchange = getattr(contract, "exchange", "") or ("SEHK" if market is Market.HK else "SMART")
    if market is Market.US and exchange != "SMART":
        exchange = "SMART"  # our US instruments are always SMART routed; keep the key stable
    return Instrument(
        symbol=getattr(contract, "symbol", "") or "?",
        market=market,
        exchange=exchange,
        currency=getattr(contract, "currency", "") or ("HKD" if market is Market.HK else "USD"),
        con_id=int_id(getattr(contract, "conId", None)),
        primary_exchange=getattr(contract, "primaryExchange", "") or None,
        local_symbol=getattr(contract, "localSymbol", "") or None,
        board_lot=1 if market is Market.US else 0,
        lot_source="US whole shares" if market is Market.US else "",
    )


def split_list(text: str | None, sep: str = ",") -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(sep) if part.strip())


def rule_ids(text: str | None) -> tuple[int, ...]:
    out = []
    for part in (text or "").split(","):
        part = part.strip()
        if part.lstrip("-").isdigit():
            out.append(int(part))
    return tuple(out)


_STATUS = {s.value: s for s in OrderStatus}


def order_status(text: str, previous: OrderStatus | None = None) -> OrderStatus:
    """Map TWS's status text; ib_async's own "ValidationError" (a warning) keeps the previous status."""
    status = _STATUS.get(text)
    if status is not None:
        return status
    return previous if previous is not None else OrderStatus.PENDING_SUBMIT


def side_of(action: str) -> Side:
    return Side.SELL if (action or "").upper() in ("SELL", "SLD", "SSHORT") else Side.BUY


def order_view(
    trade: object,
    instrument: Instrument,
    *,
    journal_id: str | None,
    status: OrderStatus,
    message: str,
    created_at: datetime | None,
) -> OrderView:
    """Snapshot of an ib_async Trade as our frozen OrderView."""
    order = trade.order  # type: ignore[attr-defined]
    state = trade.orderStatus  # type: ignore[attr-defined]
    quantity = dec(order.totalQuantity) or Decimal(0)
    filled = dec(state.filled) or dec(getattr(order, "filledQuantity", None)) or Decimal(0)  # completed orders
    remaining = dec(state.remaining)
    if status is OrderStatus.FILLED:
        remaining = Decimal(0)
    elif remaining is None or (not filled and remaining == 0 and not status.is_done):
        remaining = max(quantity - filled, Decimal(0))  # ib_async starts at 0 before TWS answers
    log = getattr(trade, "log", None) or []
    updated = utc(log[-1].time) if log else None
    order_type = order.orderType or "?"
    limit_price = dec(order.lmtPrice) if order_type in ("LMT", "STP LMT", "LOC") else None
    stop_price = dec(order.auxPrice) if order_type in ("STP", "STP LMT") else None
    trailing = ""
    if order_type in ("TRAIL", "TRAIL LIMIT"):  # the stop shown is where it trails now
        stop_price = dec(getattr(order, "trailStopPrice", None))
        percent = dec(getattr(order, "trailingPercent", None))
        trailing = f"{percent.normalize():f}%" if percent else f"{(dec(order.auxPrice) or Decimal(0)).normalize():f}"
    return OrderView(
        order_id=int(order.orderId or 0),
        perm_id=int_id(order.permId) or int_id(state.permId),
        client_id=int_id(order.clientId),
        journal_id=journal_id,
        account=order.account or None,
        instrument=instrument,
        side=side_of(order.action),
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        tif=order.tif or "DAY",
        outside_rth=bool(order.outsideRth),
        status=status,
        filled=filled,
        remaining=remaining,
        avg_fill_price=known_price(state.avgFillPrice) if filled else None,
        message=message,
        parent_id=int_id(order.parentId),
        oca_group=str(getattr(order, "ocaGroup", "") or ""),
        trailing=trailing,
        created_at=created_at,
        updated_at=updated or now_utc(),
    )


def fill_model(fill: object, instrument: Instrument) -> Fill:
    execution = fill.execution  # type: ignore[attr-defined]
    report = getattr(fill, "commissionReport", None)
    has_report = report is not None and bool(getattr(report, "execId", ""))
    return Fill(
        exec_id=execution.execId,
        order_id=int(execution.orderId or 0),
        perm_id=int_id(execution.permId),
        account=execution.acctNumber,
        instrument=instrument,
        side=side_of(execution.side),
        quantity=dec(execution.shares) or Decimal(0),
        price=float(execution.price),
        time=utc(execution.time) or utc(getattr(fill, "time", None)) or now_utc(),
        commission=num(report.commission) if has_report else None,
        commission_currency=(report.currency or None) if has_report else None,
        realized_pnl=num(report.realizedPNL) if has_report else None,
    )


def position_from_portfolio(item: object, instrument: Instrument) -> Position:
    """A PortfolioItem (reqAccountUpdates): market price and the real market value, not cost basis."""
    quantity = dec(item.position) or Decimal(0)  # type: ignore[attr-defined]
    price = num(item.marketPrice)  # type: ignore[attr-defined]
    value = num(item.marketValue)  # type: ignore[attr-defined]
    if value is None and price is not None:
        value = float(quantity) * price
    return Position(
        account=item.account,  # type: ignore[attr-defined]
        instrument=instrument,
        quantity=quantity,
        avg_cost=num(item.averageCost),  # type: ignore[attr-defined]
        market_price=price,
        market_value=value,
        unrealized_pnl=num(item.unrealizedPNL),  # type: ignore[attr-defined]
        realized_pnl=num(item.realizedPNL),  # type: ignore[attr-defined]
    )


def position_from_position(pos: object, instrument: Instrument, price: float | None) -> Position:
    """A Position (reqPositions) has no prices; market value comes from our own quote when we have one."""
    quantity = dec(pos.position) or Decimal(0)  # type: ignore[attr-defined]
    avg_cost = num(pos.avgCost)  # type: ignore[attr-defined]
    value = float(quantity) * price if price is not None else None
    unrealized = value - float(quantity) * avg_cost if value is not None and avg_cost is not None else None
    return Position(
        account=pos.account,  # type: ignore[attr-defined]
        instrument=instrument,
        quantity=quantity,
        avg_cost=avg_cost,
        market_price=price,
        market_value=value,
        unrealized_pnl=unrealized,
    )


def _price(value: object) -> float | None:
    """A quote price: None for IB's "no price" markers (-1, 0, NaN, unset). Floats take a fast path (per tick)."""
    if value.__class__ is float:
        return value if 0.0 < value < _UNSET_FLOOR else None  # type: ignore[operator,return-value]  # NaN: False
    result = num(value)
    return None if result is None or result <= 0 else result


def _size(value: object) -> float | None:
    """A quote size: None when unset or negative. Floats take a fast path (per tick)."""
    if value.__class__ is float:
        return value if 0.0 <= value < _UNSET_FLOOR else None  # type: ignore[operator,return-value]
    result = num(value)
    return None if result is None or result < 0 else result


def trade_time(value: object) -> datetime | None:
    """Tick 45 / 88 (ib_async gives a datetime; TWS's own text is epoch seconds) as aware UTC; None when unset."""
    if value is None or value == "":
        return None
    if value.__class__ is datetime and value.tzinfo is timezone.utc:  # type: ignore[union-attr] - per tick: as is
        return value  # type: ignore[return-value]
    if isinstance(value, datetime):
        return utc(value)
    try:
        return datetime.fromtimestamp(int(value), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def quote_model(ticker: object, instrument: Instrument, data_type: MarketDataType, stale: bool) -> Quote:
    """Runs once per changed ticker per packet: no closures, a fast path for ib_async's float fields."""
    when = getattr(ticker, "time", None)
    if when.__class__ is not datetime or when.tzinfo is not timezone.utc:  # type: ignore[union-attr]
        when = utc(when) or now_utc()
    return Quote(
        instrument=instrument,
        bid=_price(ticker.bid),  # type: ignore[attr-defined]
        ask=_price(ticker.ask),  # type: ignore[attr-defined]
        last=_price(ticker.last),  # type: ignore[attr-defined]
        bid_size=_size(ticker.bidSize),  # type: ignore[attr-defined]
        ask_size=_size(ticker.askSize),  # type: ignore[attr-defined]
        last_size=_size(ticker.lastSize),  # type: ignore[attr-defined]
        open=_price(ticker.open),  # type: ignore[attr-defined]
        high=_price(ticker.high),  # type: ignore[attr-defined]
        low=_price(ticker.low),  # type: ignore[attr-defined]
        close=_price(ticker.close),  # type: ignore[attr-defined]
        volume=_size(ticker.volume),  # type: ignore[attr-defined]
        data_type=data_type,
        time=when,
        stale=stale,
        last_time=trade_time(getattr(ticker, "lastTimestamp", None) or getattr(ticker, "delayedLastTimestamp", None)),
    )


def bar_model(bar: object) -> Bar:
    when = bar.date  # type: ignore[attr-defined]
    if not isinstance(when, datetime):  # daily bars come as a date
        when = datetime(when.year, when.month, when.day, tzinfo=timezone.utc)
    return Bar(
        time=utc(when) or now_utc(),
        open=float(bar.open),  # type: ignore[attr-defined]
        high=float(bar.high),  # type: ignore[attr-defined]
        low=float(bar.low),  # type: ignore[attr-defined]
        close=float(bar.close),  # type: ignore[attr-defined]
        volume=float(num(bar.volume) or 0.0),  # type: ignore[attr-defined]
    )


def what_if_model(state: object) -> WhatIf:
    return WhatIf(
        commission=num(state.commission),  # type: ignore[attr-defined]
        min_commission=num(state.minCommission),  # type: ignore[attr-defined]
        max_commission=num(state.maxCommission),  # type: ignore[attr-defined]
        commission_currency=state.commissionCurrency or None,  # type: ignore[attr-defined]
        init_margin_change=num(state.initMarginChange),  # type: ignore[attr-defined]
        maint_margin_change=num(state.maintMarginChange),  # type: ignore[attr-defined]
        init_margin_after=num(state.initMarginAfter),  # type: ignore[attr-defined]
        maint_margin_after=num(state.maintMarginAfter),  # type: ignore[attr-defined]
        equity_with_loan_after=num(state.equityWithLoanAfter),  # type: ignore[attr-defined]
        warning=state.warningText or "",  # type: ignore[attr-defined]
    )


def account_value(value: object) -> AccountValue:
    return AccountValue(
        account=value.account,  # type: ignore[attr-defined]
        tag=value.tag,  # type: ignore[attr-defined]
        value=str(value.value),  # type: ignore[attr-defined]
        currency=value.currency or "",  # type: ignore[attr-defined]
    )


def account_summary(account: str, values: Iterable[AccountValue], daily_pnl: float | None) -> AccountSummary:
    """Fold TWS's (tag, currency) rows into the Account tab's numbers; BASE rows win for totals."""
    rows = tuple(values)
    base_currency = None
    by_key: dict[tuple[str, str], str] = {}
    for row in rows:
        by_key[(row.tag, row.currency)] = row.value
        if row.tag == "RealCurrency" and row.value and row.value != "BASE":
            base_currency = row.value  # TWS names the base currency here; its "Currency" BASE row says "BASE"
    for row in rows:
        if base_currency is None and row.tag == "Currency" and row.currency == "BASE" and row.value not in ("", "BASE"):
            base_currency = row.value
    if base_currency is None:
        for row in rows:
            if row.tag == "NetLiquidation" and row.currency not in ("", "BASE"):
                base_currency = row.currency
                break

    def total(tag: str) -> float | None:
        for currency in ("BASE", base_currency or "", ""):
            if (tag, currency) in by_key:
                return num(by_key[(tag, currency)])
        for (row_tag, _currency), value in by_key.items():
            if row_tag == tag:
                return num(value)
        return None

    cash = {}
    for row in rows:
        if row.tag == "CashBalance" and row.currency not in ("", "BASE"):
            amount = num(row.value)
            if amount is not None:
                cash[row.currency] = amount
    return AccountSummary(
        account=account,
        base_currency=base_currency,
        net_liquidation=total("NetLiquidation"),
        total_cash=total("TotalCashValue"),
        cash_by_currency=cash,
        buying_power=total("BuyingPower"),
        available_funds=total("AvailableFunds"),
        excess_liquidity=total("ExcessLiquidity"),
        init_margin=total("InitMarginReq"),
        maint_margin=total("MaintMarginReq"),
        gross_position_value=total("GrossPositionValue"),
        unrealized_pnl=total("UnrealizedPnL"),
        realized_pnl=total("RealizedPnL"),
        daily_pnl=daily_pnl,
        values=rows,
        updated_at=now_utc(),
    )
