"""Order presets and sizing, Qt-free and exact (``Decimal``).

Sizing turns "USD 10,000 of AAPL" (money) or "risk 0.5% of net liquidation to the stop" (risk) into a
share count, always rounded DOWN to whole shares and whole board lots, so the order never spends or risks
more than asked. ``TicketPreset`` is what the ticket fills in for a market (US / HK) or one symbol: a
default quantity, order type, time in force, offsets (percent of the reference price) for the limit, the
take-profit and the stop-loss, and which orders to attach. Presets are stored as plain dicts (JSON) in
the profile's settings; ``preset_for`` picks the symbol's preset over its market's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from ibpanel.broker.models import Market, OrderType, Side, TimeInForce
from ibpanel.broker.rules import TickTable

ATTACH_CHOICES = ("none", "take_profit", "stop_loss", "bracket", "trailing_stop")


class SizingError(ValueError):
    """Sizing that cannot give a quantity; the message says what to change."""


def _whole_lots(shares: Decimal, lot: int) -> int:
    lot = max(1, int(lot))
    lots = (shares / lot).to_integral_value(rounding=ROUND_FLOOR)
    return int(lots) * lot


def quantity_for_money(amount: Decimal, price: Decimal, lot: int = 1) -> int:
    """How many shares ``amount`` buys at ``price``, rounded down to whole board lots (0 when not one lot)."""
    if amount <= 0:
        raise SizingError("The amount must be above zero, e.g. 10000.")
    if price <= 0:
        raise SizingError("There is no price to size by: wait for a quote or type a limit price.")
    return _whole_lots(amount / price, lot)


def quantity_for_risk(net_liquidation: Decimal, risk_pct: Decimal, entry: Decimal, stop: Decimal,
                      lot: int = 1) -> int:
    """Shares so that a move from ``entry`` to ``stop`` loses at most ``risk_pct`` % of ``net_liquidation``
    (both in the instrument's currency), rounded down to whole board lots."""
    if not Decimal(0) < risk_pct <= Decimal(100):
        raise SizingError("The risk must be a percent above 0 and at most 100, e.g. 0.5.")
    if net_liquidation <= 0:
        raise SizingError("The account's net liquidation is not known yet: open the Account tab or wait a moment.")
    per_share = abs(entry - stop)
    if per_share == 0:
        raise SizingError("The stop is at the entry price: risk sizing needs a stop-loss away from the entry.")
    return _whole_lots(net_liquidation * risk_pct / 100 / per_share, lot)


def parse_decimal(text: str) -> Decimal:
    """A plain number as typed for sizing ("10,000", "0.5", "0.5%"); SizingError when it is not one."""
    cleaned = str(text).strip().rstrip("%").replace(",", "").replace("_", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise SizingError(f"“{text}” is not a number: type e.g. 10000 or 0.5.") from None
    if not value.is_finite():
        raise SizingError(f"“{text}” is not a number: type e.g. 10000 or 0.5.")
    return value


@dataclass(frozen=True)
class TicketPreset:
    """What a new ticket starts with for a market or a symbol. Offsets are percents of the reference price:
    the limit sits ``limit_offset_pct`` inside the market (below for a buy), the take-profit and stop-loss
    that far beyond / behind the entry."""

    quantity: int = 0  # 0: one board lot (US: 100)
    order_type: OrderType = OrderType.LMT
    tif: TimeInForce = TimeInForce.DAY
    limit_offset_pct: Decimal = Decimal(0)
    take_profit_pct: Decimal = Decimal(0)
    stop_loss_pct: Decimal = Decimal(0)
    attach: str = "none"  # one of ATTACH_CHOICES

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(order_type=self.order_type.value, tif=self.tif.value,
                    **{k: str(getattr(self, k)) for k in ("limit_offset_pct", "take_profit_pct", "stop_loss_pct")})
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> TicketPreset:
        """A preset from stored JSON; unknown or unreadable values fall back to the defaults."""
        default = cls()
        values = {}
        for key, kind in (("order_type", OrderType), ("tif", TimeInForce)):
            try:
                values[key] = kind(data.get(key, getattr(default, key).value))
            except ValueError:
                values[key] = getattr(default, key)
        for key in ("limit_offset_pct", "take_profit_pct", "stop_loss_pct"):
            try:
                value = parse_decimal(str(data.get(key, "0")))
                values[key] = value if Decimal(0) <= value < Decimal(100) else Decimal(0)
            except SizingError:
                values[key] = Decimal(0)
        try:
            values["quantity"] = max(0, int(data.get("quantity", 0)))
        except (TypeError, ValueError):
            values["quantity"] = 0
        attach = str(data.get("attach", "none"))
        values["attach"] = attach if attach in ATTACH_CHOICES else "none"
        return cls(**values)

    def prices(self, side: Side, reference: Decimal, table: TickTable) -> dict[str, Decimal]:
        """The limit, take-profit and stop-loss this preset puts on the ticket at ``reference``, on the tick
        and rounded away from the market (a buy's limit down, its take-profit up, its stop-loss down)."""
        buy = side is Side.BUY
        out: dict[str, Decimal] = {}

        def at(pct: Decimal, sign: int, direction: str) -> Decimal:
            return table.round(reference * (1 + sign * pct / 100), direction)

        if self.order_type in (OrderType.LMT, OrderType.LOC, OrderType.STP_LMT):
            out["limit_price"] = at(self.limit_offset_pct, -1 if buy else 1, "down" if buy else "up")
        entry = out.get("limit_price", reference)
        if self.attach in ("take_profit", "bracket") and self.take_profit_pct > 0:
            out["take_profit"] = table.round(entry * (1 + (1 if buy else -1) * self.take_profit_pct / 100),
                                             "up" if buy else "down")
        if self.attach in ("stop_loss", "bracket") and self.stop_loss_pct > 0:
            out["stop_loss"] = table.round(entry * (1 - (1 if buy else -1) * self.stop_loss_pct / 100),
                                           "down" if buy else "up")
        if self.attach == "trailing_stop" and self.stop_loss_pct > 0:
            distance = entry * self.stop_loss_pct / 100
            increment = table.increment(entry)
            out["stop_loss_trail"] = max(increment, (distance / increment).to_integral_value(ROUND_FLOOR) * increment)
        return out


def preset_for(presets: Mapping[str, Mapping], market: Market, symbol: str = "") -> TicketPreset:
    """The symbol's preset ("AAPL", "0700.HK"), else its market's ("US" / "HK"), else the defaults."""
    for key in (symbol.strip().upper(), market.value):
        if key and key in presets:
            return TicketPreset.from_dict(presets[key])
    return TicketPreset()
