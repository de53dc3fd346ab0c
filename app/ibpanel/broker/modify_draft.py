"""A change to a working order, Qt-free: the modify dialog's whole state in one ``ModifyDraft``.

The dialog shows the draft and writes every field back on each edit (never a part of it); the numbers
are kept as the text on screen and read here by the ticket's own parsers (``parse_quantity`` /
``parse_price``), so what the boxes show is what is sent and a typo is refused, never re-read as
another number. ``changes()`` is what goes to ``Broker.modify``; the broker checks lots and ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from ibpanel.broker.draft import NumberError, NumberFormat, parse_price, parse_quantity, price_text
from ibpanel.broker.models import OrderView

#: the fields a modify may change, with the word a message uses for them
FIELDS = {"quantity": "Quantity", "limit_price": "limit", "stop_price": "stop"}


@dataclass(frozen=True)
class ModifyDraft:
    """The order being changed and the text of each box; a price box exists only if the order has that price."""

    order: OrderView
    quantity: str
    limit_price: str = ""
    stop_price: str = ""
    number_format: NumberFormat = NumberFormat()

    @classmethod
    def of(cls, order: OrderView, number_format: NumberFormat = NumberFormat(),
           price_decimals=lambda price: max(2, -price.as_tuple().exponent)) -> ModifyDraft:
        """The draft of an unchanged order: every box shows the order's current value."""
        def shown(price: Decimal | None) -> str:
            return "" if price is None else price_text(price, price_decimals(price), number_format)

        return cls(order=order, quantity=number_format.show(order.quantity.normalize()),
                   limit_price=shown(order.limit_price), stop_price=shown(order.stop_price),
                   number_format=number_format)

    def with_text(self, quantity: str, limit_price: str, stop_price: str) -> ModifyDraft:
        """The whole draft as the boxes show it now."""
        return replace(self, quantity=quantity, limit_price=limit_price, stop_price=stop_price)

    def editable(self) -> tuple[str, ...]:
        """The fields this order has: quantity always, a price only where the order carries one."""
        return ("quantity",) + tuple(name for name in ("limit_price", "stop_price")
                                     if getattr(self.order, name) is not None)

    def _read(self) -> tuple[dict[str, Decimal], list[str]]:
        values: dict[str, Decimal] = {}
        problems: list[str] = []
        for name in self.editable():
            text = getattr(self, name)
            try:
                if name == "quantity":
                    values[name] = parse_quantity(text, self.number_format)
                else:
                    values[name] = parse_price(text, self.number_format, FIELDS[name])
            except NumberError as exc:
                problems.append(f"Quantity: {exc}" if name == "quantity" else str(exc))
        return values, problems

    def problems(self) -> list[str]:
        """Why the boxes are not an order change: unreadable numbers (refused, never re-read)."""
        return self._read()[1]

    def changes(self) -> dict[str, Decimal]:
        """field -> new value, only for fields whose value differs from the working order's."""
        values, problems = self._read()
        if problems:
            return {}
        return {name: value for name, value in values.items() if value != getattr(self.order, name)}


__all__ = ["ModifyDraft"]
