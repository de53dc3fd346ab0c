"""How the panel shows numbers: prices with the instrument's tick decimals, quantities, P&L, percentages.

Also the price-tick ladders the ticket uses to step prices (Decimal arithmetic). These are a display
and input aid only: the broker's validation (``Broker.check``) is the authority on what may be sent.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from ibpanel.broker.models import Instrument, Market

# (lowEdge, increment) rows, like IB's market rules: for a price use the row with the highest lowEdge <= price.
US_TICKS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("0"), Decimal("0.0001")),
    (Decimal("1"), Decimal("0.01")),
)
# HKEX spread table since the 2025-08-04 cut (docs/markets.md).
HK_TICKS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("0"), Decimal("0.001")),
    (Decimal("0.25"), Decimal("0.005")),
    (Decimal("0.50"), Decimal("0.01")),
    (Decimal("20"), Decimal("0.02")),
    (Decimal("50"), Decimal("0.05")),
    (Decimal("100"), Decimal("0.10")),
    (Decimal("200"), Decimal("0.20")),
    (Decimal("500"), Decimal("0.50")),
    (Decimal("1000"), Decimal("1")),
    (Decimal("2000"), Decimal("2")),
    (Decimal("5000"), Decimal("5")),
)


def tick_ladder(market: Market | None) -> tuple[tuple[Decimal, Decimal], ...]:
    return HK_TICKS if market is Market.HK else US_TICKS


def tick_at(market: Market | None, price: Decimal, *, below: bool = False) -> Decimal:
    """The tick that applies at ``price`` (``below=True``: the tick just under it, for stepping down)."""
    tick = tick_ladder(market)[0][1]
    for low_edge, increment in tick_ladder(market):
        if low_edge < price or (not below and low_edge == price):
            tick = increment
    return tick


def on_tick(market: Market | None, price: Decimal) -> bool:
    tick = tick_at(market, price)
    return price % tick == 0


def step_price(market: Market | None, price: Decimal, steps: int) -> Decimal:
    """Move ``price`` by ``steps`` ticks, snapping to the tick grid first; never below one tick."""
    value = Decimal(price)
    for _ in range(abs(steps)):
        if steps > 0:
            tick = tick_at(market, value)
            snapped = (value / tick).to_integral_value(ROUND_FLOOR) * tick
            value = snapped + tick
        else:
            tick = tick_at(market, value, below=True)
            snapped = (value / tick).to_integral_value(ROUND_CEILING) * tick
            value = snapped - tick
    floor = tick_ladder(market)[0][1]
    return max(value, floor)


def snap_price(market: Market | None, price: Decimal) -> Decimal:
    """Nearest on-tick price (half up); used for prefilling from a float quote."""
    tick = tick_at(market, price)
    return (price / tick).to_integral_value(ROUND_HALF_UP) * tick


def tick_decimals(tick: Decimal) -> int:
    exponent = tick.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 2


def price_decimals(instrument: Instrument | None, price: float | Decimal | None = None) -> int:
    """Decimals to show: the tick's decimals at this price, never fewer than 2."""
    market = instrument.market if instrument is not None else None
    if price is None:
        return 2
    try:
        tick = tick_at(market, Decimal(str(abs(price))))
    except ArithmeticError:
        return 2
    return max(2, tick_decimals(tick))


def format_price(value: float | Decimal | None, instrument: Instrument | None = None, extra: int = 0) -> str:
    if value is None:
        return ""
    decimals = price_decimals(instrument, value) + extra
    return f"{float(value):,.{decimals}f}" if isinstance(value, float) else f"{Decimal(value):,.{decimals}f}"


def format_change(value: float | Decimal | None, instrument: Instrument | None = None,
                  price: float | Decimal | None = None) -> str:
    """A signed price change with the decimals of the instrument's price (US: 2 at >= $1; HK: its spread band).

    ``price`` is the price the change is about (last, else close); a change that rounds to zero shows "+0.00".
    """
    if value is None:
        return ""
    decimals = price_decimals(instrument, price if price is not None else abs(Decimal(str(value))))
    return _unsigned_zero(f"{Decimal(str(value)):+,.{decimals}f}", signed=True)


def format_qty(value: float | Decimal | int | None) -> str:
    if value is None:
        return ""
    dec = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if dec == dec.to_integral_value():
        return f"{int(dec):,}"
    return f"{dec.normalize():,f}"


def _unsigned_zero(text: str, signed: bool) -> str:
    """A negative value that rounds to zero ("-0.00") is shown as zero: "0.00", or "+0.00" when signed."""
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        return ("+" if signed else "") + text[1:]
    return text


def format_money(value: float | None, decimals: int = 2) -> str:
    if value is None:
        return ""
    return _unsigned_zero(f"{value:,.{decimals}f}", signed=False)


def format_pnl(value: float | None) -> str:
    """Signed money: "+1,234.50" / "-12.00" (the sign matters more than anything else here)."""
    if value is None:
        return ""
    return _unsigned_zero(f"{value:+,.2f}", signed=True)


def format_percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return _unsigned_zero(f"{value:+.2f}%" if signed else f"{value:.2f}%", signed)


def format_int(value: int | float | None) -> str:
    if value is None:
        return ""
    return f"{int(value):,}"


def format_volume(value: float | None) -> str:
    """Compact volume: 12,345 / 1.23M / 4.5B."""
    if value is None:
        return ""
    if value >= 1e9:
        return f"{value / 1e9:.2f}B"
    if value >= 1e7:
        return f"{value / 1e6:.2f}M"
    return f"{int(value):,}"


def format_time(value: datetime | None) -> str:
    """Local wall-clock time; the date too when it is not today."""
    if value is None:
        return ""
    local = value.astimezone() if value.tzinfo else value.replace(tzinfo=timezone.utc).astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")
