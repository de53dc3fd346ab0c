"""Through the API of a practice server, orders land in the practice journal, not the real one (QA F32)."""

from __future__ import annotations

from ibpanel.broker.journal import OrderJournal


async def test_orders_on_the_practice_exchange_use_the_practice_journal(broker, connected_api, tmp_path):
    assert broker.journal.path == tmp_path / "journal-practice.sqlite3"
    status, body = await connected_api.post("order", {"symbol": "AAPL", "side": "buy", "quantity": 1})
    assert status == 200, body
    journal_id = body["data"]["journalId"]

    real = OrderJournal(tmp_path / "journal.sqlite3")
    try:
        assert real.entries() == []
    finally:
        real.close()
    assert broker.journal.entry(journal_id) is not None
