"""Orders and Positions on multi-account logins (QA F26): an Account column, hidden when only one account is
managed; an open order placed on an earlier day shows its date, not just a time that reads like today's."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from ibpanel.broker.models import OrderRequest, OrderType, Side, TimeInForce
from ibpanel.sim.server import SimThread
from ibpanel.ui.formatting import tick_at
from ibpanel.ui.orders_tab import OrdersTab
from ibpanel.ui.positions_tab import PositionsTab

from tests.conftest import sim_test_config


def _column(model, key: str) -> int:
    return next(i for i, c in enumerate(model.columns) if c.key == key)


def _working_buy(run_async, broker, symbol: str, account: str):
    instrument = run_async(broker.resolve(symbol))
    quote = run_async(broker.snapshot(instrument))
    target = Decimal(str(quote.last or quote.bid or quote.close)) * Decimal("0.95")
    tick = tick_at(instrument.market, target)
    price = (target / tick).to_integral_value() * tick
    return run_async(broker.place(OrderRequest(symbol, Side.BUY, Decimal(1), OrderType.LMT, limit_price=price,
                                               tif=TimeInForce.GTC, account=account)))


def test_account_column_shown_for_two_accounts_and_an_old_order_shows_its_date(
        qtbot, broker, run_async, ui_settings):
    assert len(broker.status.accounts) == 2
    order = _working_buy(run_async, broker, "AAPL", "DU222222")
    assert order.journal_id
    # the order was placed yesterday (as a GTC order still working from an earlier session would be)
    yesterday = datetime.now(timezone.utc) - timedelta(days=1, hours=1)
    with sqlite3.connect(str(broker.journal.path)) as conn:
        conn.execute("UPDATE orders SET created_at = ? WHERE journal_id = ?",
                     (yesterday.isoformat(timespec="microseconds"), order.journal_id))
    tab = OrdersTab(broker, ui_settings)
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitUntil(lambda: tab.open_model.position_of(("order", order.client_id, order.order_id)) is not None,
                    timeout=10000)
    tab.open_model.flush()
    position = tab.open_model.position_of(("order", order.client_id, order.order_id))
    model = tab.open_model
    assert not tab.open_view.isColumnHidden(_column(model, "account"))
    assert model.data(model.index(position, _column(model, "account"))) == "DU222222"
    shown_time = model.data(model.index(position, _column(model, "time")))
    assert shown_time.startswith(yesterday.astimezone().strftime("%Y-%m-%d")), shown_time

    positions = PositionsTab(broker, ui_settings)
    qtbot.addWidget(positions)
    assert not positions.view.isColumnHidden(_column(positions.model, "account"))
    run_async(broker.cancel(order.order_id), timeout=10)
    positions.shutdown()
    tab.shutdown()


def test_account_column_hidden_when_one_account_is_managed(
        qtbot, make_broker, connect_params, run_async, ui_settings):
    with SimThread(sim_test_config(accounts=("DU111111",))) as sim:
        broker = make_broker()
        run_async(broker.connect(connect_params(sim)), timeout=15)
        assert broker.status.accounts == ("DU111111",)
        orders = OrdersTab(broker, ui_settings)
        positions = PositionsTab(broker, ui_settings)
        qtbot.addWidget(orders)
        qtbot.addWidget(positions)
        assert orders.open_view.isColumnHidden(_column(orders.open_model, "account"))
        assert orders.fills_view.isColumnHidden(_column(orders.fills_model, "account"))
        assert positions.view.isColumnHidden(_column(positions.model, "account"))
        orders.shutdown()
        positions.shutdown()
        run_async(broker.close(), timeout=10)
