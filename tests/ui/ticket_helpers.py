"""Helpers for the order-ticket tests: a shown TicketTab, typing like a trader, and a prefill that waits
until the ticket is ready."""

from __future__ import annotations

import asyncio

from ibpanel.ui.ticket_tab import TicketTab
from PySide6.QtCore import Qt

from tests.helpers import exchange_caught_up

CTRL = Qt.KeyboardModifier.ControlModifier


def open_ticket(qtbot, broker, settings) -> TicketTab:
    tab = TicketTab(broker, settings)
    qtbot.addWidget(tab)
    tab.show()
    return tab


def prefill_and_wait(qtbot, tab: TicketTab, request: dict, quote_field: str = "last") -> None:
    """Prefill, then wait for the instrument, a quote with ``quote_field`` set, and the seeded limit price.

    The quote can reach the tab (quotes_updated) before the subscribe task seeds the limit from it: wait for both.
    """
    tab.prefill(request)
    qtbot.waitUntil(lambda: tab.instrument is not None and tab.quote is not None
                    and getattr(tab.quote, quote_field) is not None and tab.limit_edit.text() != "", timeout=10000)


def idle_and_heard_by_the_exchange(qtbot, tab: TicketTab) -> None:
    """Wait until the ticket has nothing in flight (no submit, no check) and the exchange has answered a
    request sent after that: an order the ticket sent would be counted by the exchange by then."""
    qtbot.waitUntil(lambda: not tab.in_flight and len(tab.tasks) == 0, timeout=10000)
    answered = asyncio.ensure_future(exchange_caught_up(tab.broker))
    qtbot.waitUntil(answered.done, timeout=10000)
    answered.result()


def type_into(qtbot, edit, text: str) -> None:
    """Focus the field, select what it shows and type over it with key clicks; no Enter, no focus change."""
    window = edit.window()
    if not window.isActiveWindow():  # e.g. just after a confirmation dialog closed
        with qtbot.waitActive(window):
            window.activateWindow()
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=2000)
    qtbot.keyClick(edit, Qt.Key.Key_A, CTRL)
    if text:
        qtbot.keyClicks(edit, text)
    else:
        qtbot.keyClick(edit, Qt.Key.Key_Backspace)
