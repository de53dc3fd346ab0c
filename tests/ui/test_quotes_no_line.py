"""Quotes tab and ticket when IB gives no market-data line (error 101): rows say "no data" (greyed, IB's reason
as tooltip) rather than "live"; and a "not connected" message does not outlive the connection."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ibpanel.sim.server import SimThread
from ibpanel.ui.quotes_tab import QuotesTab
from ibpanel.ui.table_model import STALE_COLOUR
from ibpanel.ui.ticket_tab import TicketTab
from PySide6.QtCore import Qt

from tests.conftest import sim_test_config


@pytest.fixture
def two_line_sim():
    with SimThread(sim_test_config(max_market_data_lines=2)) as running:
        yield running


def _data_column(tab: QuotesTab) -> int:
    return next(i for i, c in enumerate(tab.model.columns) if c.key == "data_type")


def test_rows_without_a_market_data_line_say_no_data_with_the_reason(
        qtbot, two_line_sim, make_broker, connect_params, run_async, ui_settings):
    broker = make_broker()
    ui_settings.set_json("quotes/watchlist", ["AAPL", "MSFT", "NVDA", "700"])
    tab = QuotesTab(broker, ui_settings)  # built before connecting: adding a symbol says "Not connected"
    qtbot.addWidget(tab)
    tab.show()
    tab.add_symbol("TSLA")
    qtbot.waitUntil(lambda: "Not connected" in tab.message.text(), timeout=5000)

    run_async(broker.connect(connect_params(two_line_sim)), timeout=15)
    qtbot.waitUntil(lambda: len(tab.model) == 5, timeout=15000)
    qtbot.waitUntil(lambda: sum(1 for q in tab.model.rows() if q.unavailable) == 3, timeout=10000)
    tab.model.flush()
    column = _data_column(tab)
    for position, quote in enumerate(tab.model.rows()):
        index = tab.model.index(position, column)
        shown = tab.model.data(index)
        if quote.unavailable:
            assert shown == "no data"  # never "live" for a row nothing will stream into
            assert "101" in tab.model.data(index, Qt.ItemDataRole.ToolTipRole)
            assert tab.model.data(tab.model.index(position, 0), Qt.ItemDataRole.ForegroundRole) == STALE_COLOUR
        else:
            assert shown == "live"
    assert "Not connected" not in tab.message.text()  # the stale message went with the connection
    assert "101" in tab.message.text()  # and the window says why rows are empty

    # the ticket's quote strip says the same for an instrument without a line
    no_line = next(q for q in tab.model.rows() if q.unavailable)
    ticket = TicketTab(broker, ui_settings)
    qtbot.addWidget(ticket)
    ticket.prefill({"symbol": no_line.instrument.display, "market": no_line.instrument.market,
                    "quantity": Decimal(no_line.instrument.board_lot or 1), "limit_price": Decimal("1")})
    qtbot.waitUntil(lambda: "NO DATA" in ticket.quote_strip.text(), timeout=10000)
    assert "101" in ticket.quote_strip.toolTip()
    ticket.shutdown()
    tab.shutdown()
