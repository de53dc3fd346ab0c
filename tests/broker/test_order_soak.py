"""Soak (issue 10): 30 faults with orders in flight - connection drops, exchange crashes that restart with
their book, and fresh exchanges whose order ids start again - then the journal is held against every
exchange that ever ran: 0 orders lost, 0 sent twice, 0 fills lost, duplicated or attributed to another
order, and each order's fill and status as the exchange has them."""

from __future__ import annotations

from decimal import Decimal

from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.exceptions import OrderRejected
from ibpanel.broker.journal import GONE
from ibpanel.broker.models import ConnectionState, OrderRequest, OrderStatus, OrderType, Side
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config

CYCLES = 30
CLIENT_ID = 7
_IN_FLIGHT = (OrderStatus.PENDING_SUBMIT, OrderStatus.UNCONFIRMED)


async def test_thirty_faults_with_orders_in_flight_lose_duplicate_and_misattribute_nothing(tmp_path):
    exchanges: list[SimServer] = []

    async def start_exchange(port: int, state_name: str) -> SimServer:
        server = SimServer(sim_test_config(port=port, state_file=tmp_path / state_name))
        await server.start()
        exchanges.append(server)
        return server

    current = await start_exchange(0, "exchange-0.json")
    port = current.port
    broker = make_broker(tmp_path)
    connects: list[ConnectionState] = []  # one entry per move into CONNECTED (a connect or a reconnect)
    states = [ConnectionState.DISCONNECTED]

    def on_state(status) -> None:
        if status.state is ConnectionState.CONNECTED and states[-1] is not ConnectionState.CONNECTED:
            connects.append(status.state)
        states.append(status.state)

    broker.state_changed.connect(on_state)
    placed = []
    try:
        await broker.connect(params(port, client_id=CLIENT_ID))
        aapl = await broker.resolve("AAPL")
        await broker.tick_table(aapl)
        await broker.subscribe(aapl)

        def settled() -> bool:
            return all(broker.order_for_journal(v.journal_id).status not in _IN_FLIGHT for v in placed)

        for cycle in range(CYCLES):
            await wait_for(lambda: broker.status.state is ConnectionState.CONNECTED and not broker.status.stale,
                           timeout=15)
            await wait_for(lambda: broker.quote(aapl) is not None and broker.quote(aapl).last is not None)
            last = current.market.top(aapl.con_id).last
            arrived_before = current.stats.count("PLACE_ORDER")
            for request in (OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.MKT),
                            OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT,
                                         limit_price=(last * Decimal("0.95")).quantize(Decimal("0.01")))):
                try:
                    placed.append(await broker.place(request))
                except OrderRejected as refused:  # only a refusal that sends nothing is acceptable here
                    assert {i.code for i in refused.issues} <= {"no_reference_price", "connection_stale"}
            # the first order has reached the exchange; the second is in flight when the fault strikes
            await wait_for(lambda sim=current, n=arrived_before: sim.stats.count("PLACE_ORDER") > n, timeout=5)
            before = len(connects)
            if cycle % 3 == 0:  # the connection drops
                current.faults.drop_all()
            elif cycle % 3 == 1:  # the exchange crashes and restarts with its book (as TWS keeps its orders)
                current.faults.drop_all()
                await current.stop()
                current = await start_exchange(port, current.config.state_file.name)
            else:  # a fresh exchange with no memory: its order ids start again
                await wait_for(settled, timeout=10)
                await current.stop()
                current = await start_exchange(port, f"exchange-{len(exchanges)}.json")
            await wait_for(lambda before=before: len(connects) > before, timeout=15)  # reconnected, reconciled

        await wait_for(lambda: broker.status.state is ConnectionState.CONNECTED, timeout=15)
        await wait_for(settled, timeout=15)
        assert len(placed) >= CYCLES  # most orders got through validation: the soak had orders in flight

        # what every exchange that ever ran knows, by orderRef (later runs of a restarted book know more)
        orders_at: dict[str, object] = {}
        fills_at: dict[str, set[str]] = {}
        duplicated = 0
        for exchange in exchanges:
            refs = [o.order_ref for o in exchange.exchange.orders_of(CLIENT_ID)]
            duplicated += len(refs) - len(set(refs))
            for order in exchange.exchange.orders_of(CLIENT_ID):
                orders_at[order.order_ref] = (exchange, order)
            for execution in exchange.exchange.executions(CLIENT_ID):
                fills_at.setdefault(execution.order_ref, set()).add(execution.exec_id)

        lost = misattributed = missing_fills = disagree = 0
        for view in placed:
            entry = broker.journal.entry(view.journal_id)
            ref = f"ibp:{view.journal_id}"
            journal_fills = {f[0] for f in broker.journal.fills(view.journal_id)}
            if ref not in orders_at:
                lost += entry.status != OrderStatus.NOT_SENT.value  # never reached: must say so
                misattributed += len(journal_fills)
                continue
            lost += entry.status == OrderStatus.NOT_SENT.value  # reached, yet called never sent
            exchange, order = orders_at[ref]
            misattributed += len(journal_fills - fills_at.get(ref, set()))
            missing_fills += len(fills_at.get(ref, set()) - journal_fills)
            # an order working at an exchange that was replaced by a fresh one is unknown now, not working
            status_ok = entry.status == order.status or (exchange is not current and entry.status == GONE)
            if Decimal(entry.filled) != order.filled or not status_ok:
                disagree += 1
                print("journal", entry, "exchange", order.status, order.filled)
        not_sent = sum(broker.journal.entry(v.journal_id).status == OrderStatus.NOT_SENT.value for v in placed)
        print(f"soak: {CYCLES} faults, {len(placed)} orders, {len(orders_at)} reached an exchange, {not_sent} NotSent, "
              f"{sum(map(len, fills_at.values()))} fills, {len(exchanges)} exchange runs")
        assert (lost, duplicated, misattributed, missing_fills, disagree) == (0, 0, 0, 0, 0)
        assert all(Decimal(broker.journal.entry(v.journal_id).filled) <= 1 for v in placed)
    finally:
        await broker.close()
        await current.stop()
