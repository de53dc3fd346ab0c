"""A completed order's missing facts: TWS's completion time is read as UTC, and an unknown (0) fill price
never replaces the journal's known one."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from ibpanel.broker.completed import parse_completed_time
from ibpanel.broker.journal import OrderJournal, SeenOrder
from ibpanel.broker.models import Instrument, Market, OrderRequest, OrderType, Side


def test_completed_time_in_the_exchange_zone_is_read_as_utc():
    assert parse_completed_time("20261203 09:41:28 America/New_York") == datetime(
        2026, 12, 3, 14, 41, 28, tzinfo=timezone.utc)
    assert parse_completed_time("") is None
    assert parse_completed_time("20261203 09:41:28 Nowhere/Atlantis") is None


def test_reconcile_with_an_unknown_fill_price_keeps_the_known_one(tmp_path):
    journal = OrderJournal(tmp_path / "journal.sqlite3")
    aapl = Instrument(symbol="AAPL", market=Market.US, con_id=265598, exchange="SMART", currency="USD")
    journal_id = journal.record_intent(OrderRequest("AAPL", Side.BUY, Decimal(5), OrderType.MKT), aapl, "DU1")
    journal.update(journal_id, status="Filled", perm_id=77, filled=Decimal(5), avg_fill_price=229.98)
    # what a completed-order message says after a restart: filled, but no average price (ib_async's 0.0)
    journal.reconcile([SeenOrder(journal_id=journal_id, order_id=None, perm_id=77, status="Filled",
                                 filled=Decimal(5), avg_fill_price=0.0)])
    assert journal.entry(journal_id).avg_fill_price == 229.98
    journal.close()
