"""The order ticket's state, Qt-free: one ``OrderDraft`` that the ticket view shows and edits.

What the trader sees is what is sent: number fields are kept as the text on screen and read only
here (``parse_quantity`` / ``parse_price``), so no widget can hold a hidden value. Every way into the
ticket (typing, Quotes double-click, Positions "close", a request dict, Escape / Clear) builds a
whole draft with ``OrderDraft.from_mapping`` / ``OrderDraft.blank``; nothing is left over from the
previous order. The symbol is read by ``broker.symbols.parse_symbol``, the only symbol grammar.

``OrderDraft.problems()`` lists what stops the draft from being an order (empty or unreadable
fields, no side); ``to_request()`` refuses a draft with problems. The broker's ``check`` does the
rest (lots, ticks, sessions, accounts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from ibpanel.broker.exceptions import BrokerError, SymbolError
from ibpanel.broker.models import Instrument, Market, OrderRequest, OrderType, Side, TimeInForce
from ibpanel.broker.order_kinds import initial_trail_stop
from ibpanel.broker.rules import fallback_tick_table, is_hk_etf
from ibpanel.broker.symbols import SymbolSpec, parse_symbol

MAX_QUANTITY = Decimal(1_000_000_000)
MAX_PRICE = Decimal(10_000_000)
US_ROUND_LOT = 100  # a US "round lot": what a Quotes double-click offers for a US stock
MARKET_WORDS = {Market.US: "US", Market.HK: "Hong Kong"}  # the words the window uses, never the API's
PRICE_TYPES = {"limit_price": (OrderType.LMT, OrderType.STP_LMT, OrderType.LOC),
               "stop_price": (OrderType.STP, OrderType.STP_LMT)}
TRAIL_TYPES = (OrderType.TRAIL, OrderType.TRAIL_LIMIT)
#: The attached (bracket) fields: optional prices on the ticket, each a child order when filled in.
ATTACHED = {"take_profit": "take-profit", "stop_loss": "stop-loss", "stop_loss_trail": "trailing stop-loss"}


class DraftIncomplete(BrokerError):
    """``to_request`` on a draft that still has problems; ``problems`` maps field -> message."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(" ".join(self.problems.values()) or "The order is incomplete.")


@dataclass(frozen=True)
class NumberFormat:
    """The locale's decimal point and thousands separator (the view learns them from Qt's QLocale)."""

    decimal_point: str = "."
    group_separator: str = ","

    def show(self, value: Decimal) -> str:
        """``value`` as a trader types it in this locale, without separators and keeping its decimals."""
        return format(value, "f").replace(".", self.decimal_point)


class NumberError(ValueError):
    """Text that is not a number; the message says what to type."""


_SPACES = re.compile(r"[\s\u00a0\u202f]")


def parse_number(text: str, number_format: NumberFormat = NumberFormat()) -> Decimal:
    """The number ``text`` shows, exactly. Raises NumberError for anything that could be read two ways.

    Thousands separators are accepted only between groups of three digits ("12,500", "1.234,5" in a
    comma-decimal locale); "1,5" with "," as the separator is refused, never read as 15. A "." is
    also a decimal point where the locale's separator is something else.
    """
    point, group = number_format.decimal_point, number_format.group_separator
    raw = text.strip()
    if _SPACES.fullmatch(group or "x"):
        raw = _SPACES.sub(group, raw)  # a space-grouping locale: any kind of space separates thousands
    if not raw:
        raise NumberError("empty")
    if raw.startswith(("-", "+")):
        raise NumberError(f"“{text.strip()}” has a sign: type the number alone.")
    whole, dot, fraction = raw.partition(point)
    if not dot and point != "." and group != "." and "." in raw:
        whole, dot, fraction = raw.partition(".")
    if group and group in fraction:
        raise NumberError(f"“{text.strip()}” has a thousands separator after the decimal point.")
    if group and group in whole:
        groups = whole.split(group)
        if not groups[0].isdigit() or len(groups[0]) > 3 or any(len(g) != 3 or not g.isdigit() for g in groups[1:]):
            raise NumberError(f"“{text.strip()}” is not a number here: the decimal point is “{point}”"
                              f" and “{group}” separates thousands.")
        whole = "".join(groups)
    if not (whole or fraction) or not (whole.isdigit() or not whole) or not (fraction.isdigit() or not fraction):
        raise NumberError(f"“{text.strip()}” is not a number: use digits and “{point}” as the decimal point.")
    try:
        return Decimal(f"{whole or '0'}.{fraction}") if dot and fraction else Decimal(whole or "0")
    except InvalidOperation as exc:  # only digits get here; kept so a surprise fails closed
        raise NumberError(f"“{text.strip()}” is not a number.") from exc


def parse_quantity(text: str, number_format: NumberFormat = NumberFormat()) -> Decimal:
    """A positive whole number of shares. Raises NumberError with what to type (1.5 is refused, never 15)."""
    if not text.strip():
        raise NumberError("Type a quantity, e.g. 100.")
    value = parse_number(text, number_format)
    if value != value.to_integral_value():
        raise NumberError(f"“{text.strip()}” is not a whole number of shares: fractional shares cannot be "
                          "traded here; type a whole number, e.g. 100.")
    if value <= 0:
        raise NumberError("The quantity must be at least 1 share.")
    if value > MAX_QUANTITY:
        raise NumberError(f"“{text.strip()}” is more shares than any order can carry.")
    return Decimal(int(value))


def parse_price(text: str, number_format: NumberFormat = NumberFormat(), name: str = "limit") -> Decimal:
    """A positive price, with every decimal typed (the tick is checked by ``broker.check``)."""
    if not text.strip():
        raise NumberError(f"Type a {name} price.")
    try:
        value = parse_number(text, number_format)
    except NumberError as exc:
        raise NumberError(f"“{text.strip()}” is not a price: type the {name} price with "
                          f"“{number_format.decimal_point}” as the decimal point, e.g. "
                          f"{number_format.show(Decimal('221.37'))}.") from exc
    if value <= 0:
        raise NumberError(f"The {name} price must be above zero.")
    if value > MAX_PRICE:
        raise NumberError(f"“{text.strip()}” is not a plausible {name} price.")
    return value


def step_quantity(text: str, steps: int, lot: int, number_format: NumberFormat = NumberFormat()) -> str | None:
    """The quantity ``steps`` board lots away (an odd lot first lands on the lot grid); None to leave it."""
    lot = max(1, lot)
    try:
        current = int(parse_quantity(text, number_format)) if text.strip() else 0
    except NumberError:
        return None  # unreadable text is left for the trader to correct, never replaced
    if not current and steps <= 0:
        return None
    lots, odd = divmod(current, lot)
    if odd:
        lots, steps = (lots, steps + 1) if steps < 0 else (lots + 1, steps - 1)
    return str(max(lot, (lots + steps) * lot))


def step_price(text: str, steps: int, market: Market, symbol: str = "",
               number_format: NumberFormat = NumberFormat()) -> str | None:
    """The price ``steps`` ticks away on the market's tick table, shown with the tick's decimals; None to leave it."""
    table = fallback_tick_table(market, etf=market is Market.HK and bool(symbol) and is_hk_etf(symbol))
    try:
        current = parse_price(text, number_format) if text.strip() else Decimal(0)
    except NumberError:
        return None
    if current <= 0 and steps <= 0:
        return None
    try:
        new = table.step(current, steps)
    except ValueError:
        return None  # already the lowest valid price
    return price_text(new, table.decimals(new), number_format)


def price_text(price: Decimal, decimals: int, number_format: NumberFormat = NumberFormat()) -> str:
    """A price as the ticket shows it: at least the tick's decimals (and 2), all of its own, the locale's point."""
    exponent = price.as_tuple().exponent
    shown = max(2, decimals, -exponent if isinstance(exponent, int) else 0)
    return number_format.show(price.quantize(Decimal(1).scaleb(-shown)))


def default_quantity(instrument: Instrument) -> Decimal:
    """What a double-click offers: one board lot in Hong Kong, a round lot of 100 in the US."""
    return Decimal(max(1, instrument.board_lot) if instrument.market is Market.HK else US_ROUND_LOT)


def _price_field(value, instrument: Instrument | None, number_format: NumberFormat) -> str:
    """A given price as the field shows it: every decimal it has, and the tick's decimals when the stock is known."""
    if value is None:
        return ""
    price = Decimal(str(value))
    if instrument is None:
        return number_format.show(price)
    table = fallback_tick_table(instrument.market, etf=instrument.market is Market.HK and is_hk_etf(instrument.symbol))
    return price_text(price, table.decimals(price), number_format)


def _number_field(value, number_format: NumberFormat) -> str:
    return "" if value is None or value == "" else number_format.show(Decimal(str(value)))


def _enum(kind, value, default):
    if value is None or value == "":
        return default
    return value if isinstance(value, kind) else kind(value)


@dataclass(frozen=True)
class OrderDraft:
    """The ticket as the trader sees it. Number fields are the text on screen; ``market`` None is "Auto".

    ``instrument`` is the stock the symbol resolved to (None until IB answered); it is dropped as soon
    as the symbol or the market no longer name it. ``prices_for`` is the instrument key the prices
    were entered for: prices never carry over to another stock.
    """

    symbol: str = ""
    market: Market | None = None
    instrument: Instrument | None = None
    side: Side | None = None
    quantity: str = ""
    order_type: OrderType = OrderType.LMT
    limit_price: str = ""
    stop_price: str = ""
    tif: TimeInForce = TimeInForce.DAY
    outside_rth: bool = False
    account: str = ""
    prices_for: str | None = None
    trailing: str = ""  # TRAIL / TRAIL LIMIT: the trailing amount, or a percent when trail_percent
    trail_percent: bool = False
    limit_offset: str = ""  # TRAIL LIMIT: how far beyond the stop the limit goes
    good_till: str = ""  # GTD: "YYYYMMDD HH:MM:SS", exchange time
    take_profit: str = ""  # attached orders ("" for none)
    stop_loss: str = ""
    stop_loss_trail: str = ""
    number_format: NumberFormat = field(default=NumberFormat(), compare=False)

    # --- building -----------------------------------------------------------------------------
    @classmethod
    def blank(cls, *, side: Side | None = None, account: str = "",
              number_format: NumberFormat = NumberFormat()) -> OrderDraft:
        """An empty ticket: the user's default side (or none), market Auto, LMT, DAY."""
        return cls(side=side, account=account, number_format=number_format)

    @classmethod
    def from_mapping(cls, request: Mapping, *, default_side: Side | None = None, default_account: str = "",
                     number_format: NumberFormat = NumberFormat()) -> OrderDraft:
        """A whole draft from a request dict (Quotes, Positions, the demo). Missing keys get defaults,
        never the previous order's values.

        Keys: symbol, market, instrument, side, quantity, order_type, limit_price, stop_price, tif,
        outside_rth, account, trailing, trail_percent, limit_offset, good_till, take_profit, stop_loss,
        stop_loss_trail. With an ``instrument`` and no quantity, the quantity is one board lot
        (US: 100 shares); the symbol defaults to the instrument's display form and the market to Auto,
        since that form names the market by itself.
        """
        instrument: Instrument | None = request.get("instrument")
        symbol = str(request.get("symbol") or (instrument.display if instrument else "")).strip()
        quantity = request.get("quantity")
        if quantity is None and instrument is not None:
            quantity = default_quantity(instrument)
        limit, stop = request.get("limit_price"), request.get("stop_price")
        order_type = _enum(OrderType, request.get("order_type"),
                           OrderType.STP if stop is not None and limit is None else OrderType.LMT)
        draft = cls(
            symbol=symbol,
            market=_enum(Market, request.get("market"), None) if instrument is None else None,
            side=_enum(Side, request.get("side"), default_side),
            quantity="" if quantity is None else number_format.show(Decimal(str(quantity))),
            order_type=order_type,
            limit_price=_price_field(limit, instrument, number_format),
            stop_price=_price_field(stop, instrument, number_format),
            tif=_enum(TimeInForce, request.get("tif"), TimeInForce.DAY),
            outside_rth=bool(request.get("outside_rth", False)),
            account=str(request.get("account") or default_account),
            trailing=_number_field(request.get("trailing"), number_format),
            trail_percent=bool(request.get("trail_percent", False)),
            limit_offset=_number_field(request.get("limit_offset"), number_format),
            good_till=str(request.get("good_till") or ""),
            take_profit=_price_field(request.get("take_profit"), instrument, number_format),
            stop_loss=_price_field(request.get("stop_loss"), instrument, number_format),
            stop_loss_trail=_number_field(request.get("stop_loss_trail"), number_format),
            number_format=number_format,
        )
        if instrument is not None:
            draft = draft.with_instrument(instrument)
        return draft.with_prices_for(draft.instrument.key if draft.instrument and (limit or stop) else None)

    def with_symbol(self, symbol: str, market: Market | None | str = "keep") -> OrderDraft:
        """The symbol (and, if given, the market selector) edited; the instrument stays only if still named."""
        chosen = self.market if market == "keep" else market
        draft = replace(self, symbol=symbol, market=chosen)
        if self.instrument is not None and not draft.names(self.instrument):
            draft = replace(draft, instrument=None)
        return draft

    def with_instrument(self, instrument: Instrument | None) -> OrderDraft:
        """IB's answer for the symbol; ignored (the draft unchanged) when the symbol no longer names it."""
        if instrument is not None and not self.names(instrument):
            return self
        return replace(self, instrument=instrument)

    def with_prices_for(self, key: str | None) -> OrderDraft:
        return replace(self, prices_for=key)

    def names(self, instrument: Instrument) -> bool:
        """Whether the symbol text and market selector name this instrument."""
        spec = self.spec()
        return spec is not None and (spec.market, spec.symbol) == (instrument.market, instrument.symbol)

    # --- reading ------------------------------------------------------------------------------
    def spec(self) -> SymbolSpec | None:
        try:
            return parse_symbol(self.symbol, self.market)
        except SymbolError:
            return None

    def detected_market(self) -> Market | None:
        """The market the symbol names under the current selector (None if it names none)."""
        spec = self.spec()
        return spec.market if spec is not None else None

    def symbol_problem(self) -> str | None:
        """What is wrong with the symbol, in the window's words (never marketType names)."""
        if not self.symbol.strip():
            return "Type a symbol, e.g. AAPL or 0700.HK."
        try:
            parse_symbol(self.symbol, self.market)
            return None
        except SymbolError as exc:
            forced_error = exc
        try:
            auto = parse_symbol(self.symbol, None)
        except SymbolError as exc:
            return f"{exc.message} {exc.advice}".strip()
        if self.market is not None and auto.market is not self.market:
            return (f"“{self.symbol.strip()}” is a {MARKET_WORDS[auto.market]} symbol, but the market is set to "
                    f"{MARKET_WORDS[self.market]}: set the market to Auto or {auto.market.value}.")
        return forced_error.message

    def needs(self, price_field: str) -> bool:
        if price_field == "trailing":
            return self.order_type in TRAIL_TYPES
        if price_field == "limit_offset":
            return self.order_type is OrderType.TRAIL_LIMIT
        if price_field == "good_till":
            return self.tif is TimeInForce.GTD
        if price_field in ATTACHED:
            return True  # optional: used when filled in
        return self.order_type in PRICE_TYPES[price_field]

    def _distance(self, name: str) -> Decimal | None:
        """A trailing amount / percent, limit offset or trailing stop-loss as typed; None when empty or unreadable."""
        text = getattr(self, name)
        if not text.strip():
            return None
        try:
            return parse_number(text, self.number_format)
        except NumberError:
            return None

    def attached(self) -> bool:
        """Whether the ticket attaches a take-profit or stop-loss to the entry (a bracket)."""
        return any(getattr(self, name).strip() for name in ATTACHED)

    def quantity_value(self) -> Decimal | None:
        try:
            return parse_quantity(self.quantity, self.number_format)
        except NumberError:
            return None

    def price_value(self, price_field: str) -> Decimal | None:
        """The limit / stop price shown, or None when the order type does not use it or it is unreadable."""
        if not self.needs(price_field):
            return None
        try:
            return parse_price(getattr(self, price_field), self.number_format)
        except NumberError:
            return None

    def problems(self) -> dict[str, str]:
        """Field -> message for everything that stops this draft from being an order (empty = ready)."""
        found: dict[str, str] = {}
        symbol = self.symbol_problem()
        if symbol:
            found["symbol"] = symbol
        if self.side is None:
            found["side"] = "Choose BUY or SELL."
        try:
            parse_quantity(self.quantity, self.number_format)
        except NumberError as exc:
            found["quantity"] = str(exc)
        for price_field in PRICE_TYPES:
            if self.needs(price_field):
                name = "limit" if price_field == "limit_price" else "stop"
                try:
                    parse_price(getattr(self, price_field), self.number_format, name)
                except NumberError as exc:
                    found[price_field] = str(exc)
        if self.needs("trailing"):
            unit = "percent" if self.trail_percent else "amount"
            if not self.trailing.strip():
                found["trailing"] = f"Type the trailing {unit}, e.g. {'2' if self.trail_percent else '0.50'}."
            elif (value := self._distance("trailing")) is None or value <= 0:
                found["trailing"] = f"“{self.trailing.strip()}” is not a trailing {unit}: type a number above zero."
        if self.needs("limit_offset") and self._distance("limit_offset") is None:
            found["limit_offset"] = "Type the limit offset: how far beyond the stop the limit may go (0 or more)."
        if self.needs("good_till") and not self.good_till.strip():
            found["good_till"] = "Type the good-till date and time, e.g. 20261231 16:00:00 (exchange time)."
        for name, words in ATTACHED.items():
            text = getattr(self, name)
            if text.strip() and ((value := self._distance(name)) is None or value <= 0):
                found[name] = f"“{text.strip()}” is not a {words} price: type a number above zero, or clear it."
        if self.stop_loss.strip() and self.stop_loss_trail.strip():
            found["stop_loss_trail"] = "Choose a stop-loss price or a trailing stop-loss, not both."
        return found

    def to_request(self, source: str = "panel") -> OrderRequest:
        """The order exactly as the draft shows it. Raises DraftIncomplete when ``problems()`` is not empty."""
        problems = self.problems()
        if problems:
            raise DraftIncomplete(problems)
        assert self.side is not None  # problems() said so
        return OrderRequest(
            symbol=self.symbol.strip(),
            side=self.side,
            quantity=parse_quantity(self.quantity, self.number_format),
            order_type=self.order_type,
            limit_price=self.price_value("limit_price"),
            stop_price=self.price_value("stop_price"),
            tif=self.tif,
            outside_rth=self.outside_rth,
            account=self.account or None,
            market=self.market,
            trailing_amount=self._distance("trailing") if self.needs("trailing") and not self.trail_percent else None,
            trailing_percent=self._distance("trailing") if self.needs("trailing") and self.trail_percent else None,
            limit_offset=self._distance("limit_offset") if self.needs("limit_offset") else None,
            good_till=self.good_till.strip() if self.needs("good_till") else None,
            take_profit=self._distance("take_profit"),
            stop_loss=self._distance("stop_loss"),
            stop_loss_trail=self._distance("stop_loss_trail"),
            source=source,
        )

    def initial_stop(self, last: float | None) -> Decimal | None:
        """Where a TRAIL / TRAIL LIMIT order's stop starts from this last price (what the broker computes
        from its own reference when the order is checked); None when it cannot be told yet."""
        trailing = self._distance("trailing")
        if not self.needs("trailing") or trailing is None or trailing <= 0 or not last or self.side is None:
            return None
        market = self.instrument.market if self.instrument else self.detected_market() or Market.US
        table = fallback_tick_table(market, etf=market is Market.HK and is_hk_etf(self.symbol))
        amount, percent = (None, trailing) if self.trail_percent else (trailing, None)
        return initial_trail_stop(self.side, Decimal(str(last)), amount, percent, table)

    def reference_price(self, bid: float | None, ask: float | None, last: float | None) -> Decimal | None:
        """The price the estimate uses: the order's own price, else the side of the quote it would take."""
        own = self.price_value("limit_price") if self.needs("limit_price") else self.price_value("stop_price")
        if own is not None:
            return own
        if self.needs("trailing"):
            return self.initial_stop(last)
        if self.needs("limit_price") or self.needs("stop_price"):
            return None  # the order names a price, and it is not readable: no estimate from elsewhere
        value = (ask if self.side is Side.BUY else bid if self.side is Side.SELL else None) or last
        return Decimal(str(value)) if value else None

    def estimated_value(self, bid: float | None = None, ask: float | None = None,
                        last: float | None = None) -> Decimal | None:
        """Quantity x reference price; None (shown blank) when either is missing."""
        quantity, price = self.quantity_value(), self.reference_price(bid, ask, last)
        return None if quantity is None or price is None else quantity * price


def describe_request(request: OrderRequest, instrument: Instrument | None,
                     number_format: NumberFormat = NumberFormat()) -> str:
    """One line with exactly what is sent: "BUY 400 0005.HK LMT limit 98.50 DAY" (numbers in the trader's notation)."""
    symbol = instrument.display if instrument else request.symbol
    parts = [f"{request.side.value} {number_format.show(request.quantity)} {symbol}", request.order_type.value]
    for name, price in (("limit", request.limit_price), ("stop", request.stop_price)):
        if price is not None:
            parts.append(f"{name} {number_format.show(price)}")
    if request.trailing_amount is not None:
        parts.append(f"trailing {number_format.show(request.trailing_amount)}")
    if request.trailing_percent is not None:
        parts.append(f"trailing {number_format.show(request.trailing_percent)}%")
    if request.limit_offset is not None:
        parts.append(f"limit offset {number_format.show(request.limit_offset)}")
    parts.append(request.tif.value)
    if request.good_till:
        parts.append(f"till {request.good_till}")
    for name, price in (("take-profit", request.take_profit), ("stop-loss", request.stop_loss),
                        ("trailing stop-loss", request.stop_loss_trail)):
        if price is not None:
            parts.append(f"+ {name} {number_format.show(price)}")
    if request.outside_rth:
        parts.append("outside RTH")
    return " ".join(parts)
