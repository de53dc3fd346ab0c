"""Helpers for the order-ticket tests: a shown TicketTab, and a prefill that waits until the ticket is ready."""

from __future__ import annotations

from ibpanel.ui.ticket_tab import TicketTab


def open_ticket(qtbot, broker, settings) -> TicketTab:
    tab = TicketTab(broker, settings)
    qtbot.addWidget(tab)
    tab.show()
    return tab


def prefill_and_wait(qtbot, tab: TicketTab, request: dict, quote_field: str = "last") -> None:
    """Prefill, then wait for the instrument, a quote with ``quote_field`` set, and the seeded limit price.

    The quote can reach the tab (quotes_updated) before the resolve task seeds the limit from it: wait for both.
    """
    tab.prefill(request)
    qtbot.waitUntil(lambda: tab.instrument is not None and tab.quote is not None
                    and getattr(tab.quote, quote_field) is not None and tab.limit_spin.value() > 0, timeout=10000)
