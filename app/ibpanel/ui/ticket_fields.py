"""Small Qt pieces of the order ticket: number line edits that step with the arrow keys, the locale's
number format for the Qt-free draft, and the ticket's result line for an order's status.

Number fields are plain line edits, never spin boxes: a spin box keeps a value of its own behind its
text (an emptied QSpinBox refills with its last value; "1.5" typed into one becomes 15 because it
refuses the "."). Here the text is the value; ``broker.draft`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QLocale, Qt, QTimer
from PySide6.QtGui import QFocusEvent, QKeyEvent, QWheelEvent
from PySide6.QtWidgets import QLineEdit

from ibpanel.broker.draft import NumberFormat
from ibpanel.broker.models import OrderStatus, OrderView
from ibpanel.ui import formatting as fmt

BUY_COLOUR = "#1a7f37"
SELL_COLOUR = "#cf222e"
WORKING_COLOUR = "#0969da"


def number_format_of(locale: QLocale) -> NumberFormat:
    """The decimal point and thousands separator the trader's locale uses."""
    return NumberFormat(decimal_point=locale.decimalPoint() or ".", group_separator=locale.groupSeparator() or ",")


class SteppingLineEdit(QLineEdit):
    """A line edit whose Up / Down keys (and wheel, when focused) replace the text with ``stepper(text, steps)``.

    ``stepper`` returns the new text, or None to leave the text alone (e.g. unreadable text). The
    change goes through ``setText``, so ``textChanged`` carries it like any typed edit.

    Clicked into, the field selects its whole text, as Tab does, so a price typed over a suggested one
    replaces it ("231" over "230.04", not "230.04231"); a click in a field that already has focus places
    the cursor as usual.
    """

    def __init__(self, stepper: Callable[[str, int], str | None], parent=None) -> None:
        super().__init__(parent)
        self._stepper = stepper

    def step_by(self, steps: int) -> None:
        new = self._stepper(self.text(), steps)
        if new is not None and new != self.text():
            self.setText(new)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        steps = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}
        step = steps.get(Qt.Key(event.key()))
        if step is not None and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.step_by(step)
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt API
        super().focusInEvent(event)
        if event.reason() == Qt.FocusReason.MouseFocusReason:
            QTimer.singleShot(0, self.selectAll)  # after the click's own cursor placement

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        if not self.hasFocus():  # a wheel over an unfocused field scrolls the page, never the price
            event.ignore()
            return
        delta = event.angleDelta().y()
        if delta:
            self.step_by(1 if delta > 0 else -1)
        event.accept()


def order_result_text(order: OrderView) -> tuple[str, str]:
    """The ticket's line for an order's latest status, and its colour ("" = normal text).

    Rejected / Inactive carry IB's reason (``OrderView.message``) in red, as TWS's order-rejected box does.
    """
    head = f"Order {order.order_id} {order.side.value} {fmt.format_qty(order.quantity)} {order.instrument.display}"
    status = order.status
    reason = order.message.strip()
    price = fmt.format_price(order.avg_fill_price, order.instrument) if order.avg_fill_price else ""
    if status is OrderStatus.FILLED:
        return f"{head}: Filled {fmt.format_qty(order.filled or order.quantity)} @ {price}.", BUY_COLOUR
    if status in (OrderStatus.REJECTED, OrderStatus.INACTIVE, OrderStatus.NOT_SENT):
        return f"{head}: {status.value}. {reason or 'IB gave no reason.'}", SELL_COLOUR
    if status in (OrderStatus.CANCELLED, OrderStatus.API_CANCELLED):
        filled = f" after {fmt.format_qty(order.filled)} filled @ {price}" if order.filled else ""
        return f"{head}: Cancelled{filled}." + (f" {reason}" if reason else ""), "#57606a"
    if order.filled and order.filled > 0:
        return (f"{head}: partially filled {fmt.format_qty(order.filled)} of {fmt.format_qty(order.quantity)}"
                f" @ {price}, {fmt.format_qty(order.remaining)} working ({status.value})."), WORKING_COLOUR
    if status in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED):
        note = f" {reason}" if reason else ""
        return f"{head}: {status.value} — working.{note}", WORKING_COLOUR
    return f"{head} sent: {status.value}.", ""
