"""Price and order alerts: Qt-free rules fed by the quotes and order updates the panel already streams.

Kinds:
    above       the price crosses up through the threshold (a price seen below it, then at or above it)
    below       the price crosses down through the threshold
    change_pct  the day's change reaches the threshold in percent (positive: up by at least; negative: down)
    filled      an order is filled (one order id, or any order when ``order_id`` is None)

The price is the last trade, else the bid/ask midpoint. A price alert fires once and is then spent
(``triggered`` holds when); re-arm it to use it again. A first price already beyond the threshold does not
fire "above" / "below": only a crossing seen by the panel does. "Any order filled" stays armed and fires once
per order. ``AlertBook.to_json`` / ``from_json`` keep the list across restarts.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import Enum

from ibpanel.broker.models import OrderStatus, OrderView, Quote


class AlertKind(str, Enum):
    ABOVE = "above"
    BELOW = "below"
    CHANGE_PCT = "change_pct"
    FILLED = "filled"

    @property
    def label(self) -> str:
        return {"above": "crosses above", "below": "crosses below", "change_pct": "change % reaches",
                "filled": "order filled"}[self.value]


@dataclass(frozen=True)
class Alert:
    id: str
    kind: AlertKind
    symbol: str = ""  # the panel's spelling ("AAPL", "0005.HK"); empty for order alerts
    threshold: Decimal | None = None
    order_id: int | None = None
    triggered: float | None = None  # epoch seconds of the firing; None while armed

    @property
    def armed(self) -> bool:
        return self.triggered is None

    def describe(self) -> str:
        if self.kind is AlertKind.FILLED:
            return f"Order {self.order_id} filled" if self.order_id is not None else "Any order filled"
        unit = " %" if self.kind is AlertKind.CHANGE_PCT else ""
        return f"{self.symbol} {self.kind.label} {self.threshold}{unit}"


@dataclass(frozen=True)
class AlertHit:
    alert: Alert
    message: str
    time: float


def quote_price(quote: Quote) -> float | None:
    """The price alerts watch: the last trade, else the midpoint of a two-sided quote."""
    if quote.last is not None and quote.last > 0:
        return quote.last
    if quote.bid and quote.ask and quote.bid > 0 and quote.ask > 0:
        return (quote.bid + quote.ask) / 2
    return None


def parse_threshold(text: str, kind: AlertKind) -> Decimal:
    """A threshold typed by the trader; ValueError with what to type when it is not a usable number."""
    try:
        value = Decimal(text.strip().replace(",", "").rstrip("%"))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number: type a price such as 230.50"
                         + (" or a percent such as -2.5" if kind is AlertKind.CHANGE_PCT else "")) from None
    if not value.is_finite():
        raise ValueError("type a finite number")
    if kind in (AlertKind.ABOVE, AlertKind.BELOW) and value <= 0:
        raise ValueError("a price alert needs a price above 0")
    if kind is AlertKind.CHANGE_PCT and value == 0:
        raise ValueError("a change alert needs a percent other than 0, e.g. 3 (up 3%) or -3 (down 3%)")
    return value


class AlertBook:
    """The trader's alerts; ``on_quote`` / ``on_order`` return the alerts that fired (each once)."""

    def __init__(self, alerts: Iterable[Alert] = (), clock: Callable[[], float] = time.time) -> None:
        self._alerts: dict[str, Alert] = {a.id: a for a in alerts}
        self._clock = clock
        self._last: dict[str, float] = {}  # symbol -> previous price seen
        self._filled_seen: set[int] = set()
        start = max((int(a.id) for a in self._alerts.values() if a.id.isdigit()), default=0)
        self._ids = itertools.count(start + 1)

    def alerts(self) -> tuple[Alert, ...]:
        return tuple(self._alerts.values())

    def last_price(self, symbol: str) -> float | None:
        """The latest price seen for ``symbol`` (None before its first quote)."""
        return self._last.get(symbol)

    def symbols(self) -> set[str]:
        """Symbols with an armed price alert (the quotes the panel must stream)."""
        return {a.symbol for a in self._alerts.values() if a.armed and a.kind is not AlertKind.FILLED}

    def add(self, kind: AlertKind | str, symbol: str = "", threshold: Decimal | None = None,
            order_id: int | None = None) -> Alert:
        kind = AlertKind(kind)
        if kind is AlertKind.FILLED:
            symbol, threshold = "", None
        elif not symbol or threshold is None:
            raise ValueError("a price alert needs a symbol and a threshold")
        alert = Alert(str(next(self._ids)), kind, symbol, threshold, order_id)
        self._alerts[alert.id] = alert
        return alert

    def remove(self, alert_id: str) -> None:
        self._alerts.pop(alert_id, None)

    def rearm(self, alert_id: str) -> None:
        alert = self._alerts.get(alert_id)
        if alert is not None:
            self._alerts[alert_id] = replace(alert, triggered=None)

    def _fire(self, alert: Alert, message: str) -> AlertHit:
        now = self._clock()
        if alert.kind is not AlertKind.FILLED or alert.order_id is not None:
            alert = replace(alert, triggered=now)
            self._alerts[alert.id] = alert
        return AlertHit(alert, message, now)

    def on_quote(self, quote: Quote) -> list[AlertHit]:
        if quote.stale:
            return []  # an old price must not fire an alert
        symbol = quote.instrument.display
        price = quote_price(quote)
        if price is None:
            return []
        previous = self._last.get(symbol)
        self._last[symbol] = price
        hits = []
        for alert in list(self._alerts.values()):
            if not alert.armed or alert.symbol != symbol or alert.threshold is None:
                continue
            level = float(alert.threshold)
            if alert.kind is AlertKind.ABOVE and previous is not None and previous < level <= price:
                hits.append(self._fire(alert, f"{symbol} crossed above {alert.threshold}: {price:g}"))
            elif alert.kind is AlertKind.BELOW and previous is not None and previous > level >= price:
                hits.append(self._fire(alert, f"{symbol} crossed below {alert.threshold}: {price:g}"))
            elif alert.kind is AlertKind.CHANGE_PCT and quote.change_pct is not None:
                change = quote.change_pct
                if (level > 0 and change >= level) or (level < 0 and change <= level):
                    hits.append(self._fire(alert, f"{symbol} changed {change:+.2f}% (alert at {alert.threshold}%)"))
        return hits

    def on_order(self, order: OrderView) -> list[AlertHit]:
        if order.status is not OrderStatus.FILLED or order.order_id in self._filled_seen:
            return []
        self._filled_seen.add(order.order_id)
        text = (f"Order {order.order_id} filled: {order.side.value} {order.filled} {order.instrument.display}"
                + (f" at {order.avg_fill_price:g}" if order.avg_fill_price else ""))
        return [self._fire(a, text) for a in list(self._alerts.values())
                if a.armed and a.kind is AlertKind.FILLED and a.order_id in (None, order.order_id)]

    # --- persistence ------------------------------------------------------------------------------
    def to_json(self) -> list[dict]:
        out = []
        for alert in self._alerts.values():
            row = asdict(alert)
            row["kind"] = alert.kind.value
            row["threshold"] = None if alert.threshold is None else str(alert.threshold)
            out.append(row)
        return out

    @classmethod
    def from_json(cls, rows: object, clock: Callable[[], float] = time.time) -> AlertBook:
        """Alerts saved by ``to_json``; a row that cannot be read is skipped (the rest are kept)."""
        alerts = []
        for row in rows if isinstance(rows, list) else []:
            try:
                threshold = row.get("threshold")
                alerts.append(Alert(str(row["id"]), AlertKind(row["kind"]), str(row.get("symbol") or ""),
                                    None if threshold is None else Decimal(str(threshold)),
                                    None if row.get("order_id") is None else int(row["order_id"]),
                                    None if row.get("triggered") is None else float(row["triggered"])))
            except (KeyError, ValueError, TypeError, AttributeError, InvalidOperation):
                continue
        return cls(alerts, clock)
