"""The order journal survives a kill -9 of the process mid-order, and the next connect settles it.

A child process connects to the practice exchange (its own thread, so it outlives the child),
sends one order whose acknowledgement the exchange holds back, writes a second intent it never
sends, and is SIGKILLed. A fresh Broker on the same journal then reconnects: the sent order is
found at TWS (working, same permId, not sent again), the unsent one becomes NotSent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from decimal import Decimal

from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.models import OrderStatus

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from decimal import Decimal
    from pathlib import Path
    from ibpanel.broker.models import ConnectionParams, OrderRequest, OrderType, Side
    from ibpanel.broker.service import Broker

    async def main():
        journal, port = Path(sys.argv[1]), int(sys.argv[2])
        broker = Broker(journal)
        await broker.connect(ConnectionParams(port=port, client_id=31, timeout=5))
        aapl = await broker.resolve("AAPL")
        quote = await broker.snapshot(aapl)
        price = (Decimal(str(quote.bid)) * Decimal("0.97")).quantize(Decimal("0.01"))
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        view = await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(7), OrderType.LMT, limit_price=price))
        # a second intent that the crash stops before it is sent
        lost = broker.journal.record_intent(
            OrderRequest("AAPL", Side.BUY, Decimal(9), OrderType.LMT, limit_price=price), aapl, "DU111111")
        print("SENT", view.journal_id, lost, flush=True)
        await asyncio.sleep(60)  # killed long before this ends

    asyncio.run(main())
    """
)


async def test_kill_minus_nine_mid_order_then_reconcile(tmp_path, sim):
    journal_path = tmp_path / "journal.sqlite3"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(journal_path), str(sim.port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode()
        if line.strip() != "READY":
            raise AssertionError(f"child did not get ready: {line!r} {(await child.stderr.read()).decode()[-2000:]}")
        sim.faults.delay_replies(30)  # TWS gets the order but its acknowledgement never reaches the child
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode()
        _, sent_id, lost_id = line.split()
        await wait_for(lambda: sim.stats.count("PLACE_ORDER") == 1)
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    sim.faults.delay_replies(0)

    broker = make_broker(tmp_path)  # same journal file
    try:
        before = {e.journal_id: e.status for e in broker.journal.unsettled()}
        assert before[sent_id] == OrderStatus.UNCONFIRMED.value  # the crash left it unconfirmed
        assert before[lost_id] == OrderStatus.UNCONFIRMED.value
        await broker.connect(params(sim.port, client_id=31))
        sent = await wait_for(lambda: (e := broker.journal.entry(sent_id)) and e.status != "Unconfirmed" and e)
        assert sent.status in ("Submitted", "PreSubmitted") and sent.perm_id and sent.order_id
        lost = broker.journal.entry(lost_id)
        assert lost.status == OrderStatus.NOT_SENT.value and "never reached TWS" in lost.message
        view = next(v for v in broker.open_orders() if v.journal_id == sent_id)
        assert view.quantity == Decimal(7)
        assert sim.stats.count("PLACE_ORDER") == 1  # reconnecting sent nothing again
    finally:
        await broker.close()
