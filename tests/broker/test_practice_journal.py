"""Practice-exchange orders are journaled apart from real ones (QA F32): the real record stays clean."""

from __future__ import annotations

from decimal import Decimal

from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.journal import OrderJournal, practice_journal_path
from ibpanel.broker.models import OrderRequest, OrderType, Side


async def _buy(broker) -> str:
    aapl = await broker.resolve("AAPL")
    quote = await broker.snapshot(aapl)
    view = await broker.place(
        OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=Decimal(str(quote.bid)))
    )
    await wait_for(lambda: broker.order(view.order_id) and broker.order(view.order_id).perm_id)
    return view.journal_id


def _ids(path) -> set[str]:
    journal = OrderJournal(path)
    try:
        return {entry.journal_id for entry in journal.entries()}
    finally:
        journal.close()


async def test_practice_and_real_connections_write_to_their_own_journals(tmp_path, sim_server):
    real = tmp_path / "journal.sqlite3"
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(sim_server.port, practice=True))
        practice_id = await _buy(broker)
        assert broker.journal.path == practice_journal_path(real)
        await broker.disconnect()

        # Same exchange, now treated as a real TWS: the next order goes to the real journal.
        await broker.connect(params(sim_server.port))
        real_id = await _buy(broker)
        assert broker.journal.path == real
    finally:
        await broker.close()

    assert _ids(practice_journal_path(real)) == {practice_id}
    assert _ids(real) == {real_id}
    assert practice_journal_path(real).name == "journal-practice.sqlite3"


def test_reopen_keeps_the_old_file_when_the_new_one_cannot_be_opened(tmp_path):
    journal = OrderJournal(tmp_path / "journal.sqlite3")
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"this is not a database" * 100)
    try:
        try:
            journal.reopen(broken)
        except Exception as exc:  # JournalError with advice
            assert "cannot be opened" in str(exc)
        else:
            raise AssertionError("a damaged file must not be taken as the journal")
        assert journal.path == tmp_path / "journal.sqlite3"
        assert journal.entries() == []  # still usable
    finally:
        journal.close()
