"""The order types and times in force beyond MKT / LMT / STP / STP LMT with DAY / GTC / IOC, Qt-free.

TRAIL / TRAIL LIMIT trail the market by an amount or a percent; the initial stop is computed here
(``initial_trail_stop``) so the ticket can show it and the broker sends exactly that stop
(``trailStopPrice``). MOC / LOC and the OPG time in force are US auction orders; GTD carries a
good-till moment in the exchange's time zone. ``special_issues`` lists what such an order breaks and
returns the effective prices (the initial stop, the limit after the stop) that the fat-finger, the
resting band and the order value limit judge. ``apply_to_order`` writes the extra ib_async Order fields.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from ibpanel.broker.models import (
    Instrument,
    Market,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    ValidationIssue,
)
from ibpanel.broker.rules import TickTable

TRAIL_TYPES = (OrderType.TRAIL, OrderType.TRAIL_LIMIT)
CLOSE_TYPES = (OrderType.MOC, OrderType.LOC)
#: How each type's prices are judged against the market once its effective prices are known.
PRICED_AS = {OrderType.TRAIL: OrderType.STP, OrderType.TRAIL_LIMIT: OrderType.STP_LMT,
             OrderType.LOC: OrderType.LMT, OrderType.MOC: OrderType.MKT}
_ZONES = {Market.US: "US/Eastern", Market.HK: "Asia/Hong_Kong"}
GOOD_TILL_FORMAT = "%Y%m%d %H:%M:%S"


def initial_trail_stop(side: Side, market: Decimal, amount: Decimal | None, percent: Decimal | None,
                       table: TickTable) -> Decimal:
    """Where a trailing stop starts: ``amount`` (or ``percent`` of ``market``) below it for a sell, above
    for a buy, rounded onto the tick away from the market (never closer than asked)."""
    distance = amount if amount is not None else market * (percent or Decimal(0)) / 100
    if side is Side.SELL:
        return table.round(market - distance, "down")
    return table.round(market + distance, "up")


def trail_limit(side: Side, stop: Decimal, offset: Decimal) -> Decimal:
    """A TRAIL LIMIT's limit once it triggers: the stop less the offset (sell), plus it (buy)."""
    return stop - offset if side is Side.SELL else stop + offset


def zone_of(instrument: Instrument) -> str:
    return instrument.time_zone or _ZONES[instrument.market]


def parse_good_till(text: str, zone: str) -> datetime | None:
    """"YYYYMMDD HH:MM:SS" (or "YYYYMMDD HH:MM", or "YYYYMMDD" = end of that day) in ``zone``; None if unreadable."""
    text = " ".join(str(text or "").split())
    parts = text.split(" ")
    if len(parts) == 3:  # "YYYYMMDD HH:MM:SS zone", as sent to IB
        text, zone = " ".join(parts[:2]), parts[2]
        try:
            ZoneInfo(zone)
        except (KeyError, ValueError, OSError):
            return None
    for fmt in (GOOD_TILL_FORMAT, "%Y%m%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=ZoneInfo(zone))
        except ValueError:
            continue
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(hour=23, minute=59, second=59, tzinfo=ZoneInfo(zone))
        except ValueError:
            continue
    return None


def _on_tick(distance: Decimal, table: TickTable, market: Decimal) -> bool:
    increment = table.increment(market)
    return distance % increment == 0


def special_issues(request: OrderRequest, order_type: OrderType | None, tif: TimeInForce | None,
                   instrument: Instrument, table: TickTable, reference: Decimal | None,
                   now: datetime | None = None) -> tuple[list[ValidationIssue], dict[str, Decimal]]:
    """What a TRAIL / TRAIL LIMIT / MOC / LOC order or a GTD / OPG time in force breaks, and its effective
    prices ({"stop_price": initial stop, "limit_price": limit after the stop}) for the market checks."""
    issues: list[ValidationIssue] = []
    effective: dict[str, Decimal] = {}
    us = instrument.market is Market.US
    if order_type in CLOSE_TYPES and not us:
        issues.append(ValidationIssue(
            "order_type", "close_type_market",
            f"{order_type.value} (on the close) is for US stocks only; SEHK's closing auction is not offered "  # type: ignore[union-attr]
            f"here: use LMT or MKT for {instrument.display}."))
    if order_type in CLOSE_TYPES and tif not in (TimeInForce.DAY, None):
        issues.append(ValidationIssue("tif", "close_type_tif", f"A {order_type.value} order is DAY only: set DAY."))  # type: ignore[union-attr]
    if order_type in CLOSE_TYPES and request.outside_rth:
        issues.append(ValidationIssue("outside_rth", "close_type_rth",
                                      f"A {order_type.value} order trades at the close: untick outside RTH."))  # type: ignore[union-attr]
    if tif is TimeInForce.OPG and (not us or order_type not in (OrderType.MKT, OrderType.LMT)):
        issues.append(ValidationIssue(
            "tif", "opg_not_allowed",
            "OPG (at the opening auction) is for US stocks with MKT or LMT orders: "
            + ("use DAY for a Hong Kong stock." if not us else "use MKT or LMT, or another time in force.")))
    if tif is TimeInForce.GTD:
        until = parse_good_till(request.good_till or "", zone_of(instrument))
        if until is None:
            issues.append(ValidationIssue(
                "good_till", "good_till_missing",
                "A GTD order needs its good-till date and time, e.g. 20261231 16:00:00 (exchange time)."))
        elif until <= (now or datetime.now(timezone.utc)):
            issues.append(ValidationIssue(
                "good_till", "good_till_past", f"The good-till moment {request.good_till} has already passed: "
                "choose a later date or time."))
    elif request.good_till:
        issues.append(ValidationIssue("good_till", "good_till_not_used",
                                      "A good-till date is set but the time in force is not GTD: clear it or use GTD."))
    if order_type in TRAIL_TYPES:
        issues.extend(_trail_issues(request, order_type, instrument, table, reference, effective))  # type: ignore[arg-type]
    else:
        for name, value in (("trailing_amount", request.trailing_amount), ("trailing_percent", request.trailing_percent),
                            ("limit_offset", request.limit_offset)):
            if value is not None:
                issues.append(ValidationIssue(name, "price_not_used", f"{name.replace('_', ' ').capitalize()} is set "
                                              "but only a TRAIL or TRAIL LIMIT order uses it: clear it."))
    return issues, effective


def _trail_issues(request: OrderRequest, order_type: OrderType, instrument: Instrument, table: TickTable,
                  reference: Decimal | None, effective: dict[str, Decimal]) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    amount, percent = request.trailing_amount, request.trailing_percent
    if (amount is None) == (percent is None):
        issues.append(ValidationIssue(
            "trailing_amount", "trail_missing",
            "A trailing stop needs either a trailing amount (e.g. 0.50) or a trailing percent (e.g. 2), not both."))
        return issues
    if percent is not None and not Decimal(0) < percent < Decimal(100):
        issues.append(ValidationIssue("trailing_percent", "bad_trail", "The trailing percent must be above 0 and below 100."))
        return issues
    if amount is not None and amount <= 0:
        issues.append(ValidationIssue("trailing_amount", "bad_trail", "The trailing amount must be above zero."))
        return issues
    if reference is None or reference <= 0:
        issues.append(ValidationIssue(
            "trailing_amount", "no_reference_price",
            f"There is no market price for {instrument.display} right now, so the trailing stop's initial stop "
            "cannot be set or checked and nothing was sent: try again once a quote arrived."))
        return issues
    if amount is not None and not _on_tick(amount, table, reference):
        increment = table.increment(reference)
        issues.append(ValidationIssue(
            "trailing_amount", "off_tick",
            f"A trailing amount of {amount} is not a whole number of ticks ({increment} at {reference}): "
            f"use {(amount // increment) * increment or increment} or {(amount // increment + 1) * increment}."))
        return issues
    side = request.side if isinstance(request.side, Side) else Side(str(request.side).upper())
    stop = request.stop_price
    if stop is None:
        stop = initial_trail_stop(side, reference, amount, percent, table)
    effective["stop_price"] = stop
    if order_type is OrderType.TRAIL_LIMIT:
        offset = request.limit_offset
        if offset is None or offset < 0:
            issues.append(ValidationIssue(
                "limit_offset", "limit_offset_missing",
                "A TRAIL LIMIT order needs a limit offset: how far beyond the stop the limit may go (0 or more)."))
        elif not _on_tick(offset, table, reference):
            issues.append(ValidationIssue("limit_offset", "off_tick",
                                          f"A limit offset of {offset} is not a whole number of ticks "
                                          f"({table.increment(reference)})."))
        else:
            effective["limit_price"] = trail_limit(side, stop, offset)
    return issues


def apply_to_order(order, request: OrderRequest, order_type: OrderType, effective: dict[str, Decimal],
                   instrument: Instrument) -> None:
    """The ib_async ``Order`` fields of a TRAIL / TRAIL LIMIT / LOC order and a GTD time in force."""
    if order_type in TRAIL_TYPES:
        if request.trailing_percent is not None:
            order.trailingPercent = float(request.trailing_percent)
        else:
            order.auxPrice = float(request.trailing_amount)  # type: ignore[arg-type]
        order.trailStopPrice = float(effective["stop_price"])
        if order_type is OrderType.TRAIL_LIMIT:
            order.lmtPriceOffset = float(request.limit_offset)  # type: ignore[arg-type]
    if order_type is OrderType.LOC:
        order.lmtPrice = float(request.limit_price)  # type: ignore[arg-type]
    if str(order.tif) == TimeInForce.GTD.value:
        until = parse_good_till(request.good_till or "", zone_of(instrument))
        assert until is not None  # checked
        order.goodTillDate = f"{until.strftime(GOOD_TILL_FORMAT)} {zone_of(instrument)}"
