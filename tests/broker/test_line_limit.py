"""IB's market-data line limit (error 101): a refused symbol says why instead of an empty "live" row,
is never cancelled (TWS never opened it), and fills in once a line frees up (QA F36)."""

from __future__ import annotations

from broker_helpers import make_broker, params, wait_for
from ibpanel.broker.quotes import NO_LINE_MESSAGE
from ibpanel.sim.server import SimServer

from tests.conftest import sim_test_config


async def test_line_limit_marks_the_refused_symbol_and_retries_when_a_line_frees(tmp_path):
    server = SimServer(sim_test_config(max_market_data_lines=2))
    await server.start()
    broker = make_broker(tmp_path)
    try:
        await broker.connect(params(server.port))
        aapl, msft, nvda = [await broker.resolve(s) for s in ("AAPL", "MSFT", "NVDA")]
        notices = []
        broker.notice.connect(notices.append)
        await broker.subscribe(aapl)
        await broker.subscribe(msft)
        third = await broker.subscribe(nvda)

        third = await wait_for(lambda: (q := broker.quote(nvda)) is not None and q.unavailable and q)
        assert third.unavailable == NO_LINE_MESSAGE and third.last is None
        assert any(n.code == 101 for n in notices)
        assert broker.quote(aapl).unavailable == "" and broker.quote(aapl).last is not None

        cancels_before = server.stats.count("CANCEL_MKT_DATA")
        broker.unsubscribe(aapl)  # frees a line: NVDA gets it
        nvda_quote = await wait_for(lambda: (q := broker.quote(nvda)) is not None and q.last is not None and q)
        assert nvda_quote.unavailable == ""
        assert server.stats.count("CANCEL_MKT_DATA") == cancels_before + 1  # only AAPL's real line
        assert not any(n.code == 300 for n in notices)  # no cancel of a line TWS never opened
    finally:
        await broker.close()
        await server.stop()
