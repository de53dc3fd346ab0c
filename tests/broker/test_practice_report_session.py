"""A scripted practice session: the report's realized P&L equals the practice exchange's own books and the
journal's fills to the cent, in each currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from broker_helpers import params, wait_for
from ibpanel.broker.models import OrderRequest, OrderType, Side
from ibpanel.practice_report import build_report, fills_from_executions, fills_from_journal

pytestmark = pytest.mark.timeout(60)
SCRIPT = [("AAPL", Side.BUY, 100), ("AAPL", Side.SELL, 60), ("700", Side.BUY, 300), ("AAPL", Side.SELL, 90),
          ("700", Side.SELL, 300), ("AAPL", Side.BUY, 50), ("MSFT", Side.SELL, 7), ("MSFT", Side.BUY, 7)]


async def test_report_pnl_equals_the_exchange_and_the_journal_to_the_cent(broker, sim_server):
    await broker.connect(params(sim_server.port, practice=True))
    for symbol, side, qty in SCRIPT:
        view = await broker.place(OrderRequest(symbol, side, Decimal(qty), OrderType.MKT))
        await wait_for(lambda v=view: (o := broker.order(v.order_id)) is not None and o.status.value == "Filled")
        sim_server.market.advance()  # the next order meets a moved market
    await wait_for(lambda: len(broker.fills()) >= len(SCRIPT) and all(f.commission for f in broker.fills()))
    await wait_for(lambda: len(fills_from_journal(broker.journal.path)) == len(SCRIPT)
                   and all(f.commission for f in fills_from_journal(broker.journal.path)))
    journal_fills = fills_from_journal(broker.journal.path)
    report = build_report(journal_fills)
    account = broker.status.account
    books = {}
    for pos in sim_server.accounts.positions(account):
        inst = sim_server.book.by_con_id(pos.con_id)
        books[inst.currency] = books.get(inst.currency, Decimal(0)) + pos.realized_pnl
    assert set(report.by_currency) == {"USD", "HKD"}
    for currency, realized in books.items():
        assert report.by_currency[currency].realized == realized.quantize(Decimal("0.01"))
    # the executions (with bracket children, if any) give the same figures as the journal
    same = build_report(fills_from_executions(broker.fills()))
    assert {c: r.realized for c, r in same.by_currency.items()} == {c: r.realized for c, r in report.by_currency.items()}
    # every journal fill is a trade of the report, at the journal's price
    assert sorted((f.exec_id, f.price) for f in report.fills) == sorted((f.exec_id, f.price) for f in journal_fills)
    assert report.by_currency["HKD"].round_trips[0].quantity == 300
    # AAPL: the long closed by the sale that flipped it short, the short covered; MSFT: a short covered
    assert [(t.symbol, t.direction) for t in report.by_currency["USD"].round_trips] == [
        ("AAPL", "long"), ("AAPL", "short"), ("MSFT", "short")]
