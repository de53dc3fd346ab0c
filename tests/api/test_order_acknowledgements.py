"""POST /order answers no more than happened (issue 10): 200 only for an order TWS acknowledged, 202 with a
fate to follow while it is in flight, 503 with Retry-After when orders are backlogged, NotSent (never an open
order) when it did not leave; a missing market price and a frozen TWS refuse at the broker."""

from __future__ import annotations

import asyncio
import re
from argparse import Namespace
from decimal import Decimal

import aiohttp
from ibpanel.api.routes import STATE_KEY
from ibpanel.api.server import start_api
from ibpanel.broker.journal import OrderJournal
from ibpanel.broker.models import OrderRequest, OrderStatus, OrderType, Side
from ibpanel.broker.service import Broker
from ibpanel.runtime.serve import serve

from tests.api.conftest import Api
from tests.helpers import exchange_caught_up, wait_for


async def _aapl_last(api: Api) -> float:
    status, body = await api.get("quote", params={"symbol": "AAPL"})
    assert status == 200, body
    return body["data"]["last"]


def _resting_buy(last: float) -> dict:
    return {"symbol": "AAPL", "side": "buy", "quantity": 1, "orderType": "limit", "price": round(last * 0.95, 2)}


async def test_an_order_still_in_flight_answers_202_and_its_fate_follows(connected_api):
    last = await _aapl_last(connected_api)
    assert (await connected_api.post("order", _resting_buy(last)))[0] == 200  # rules and price at hand
    connected_api.sim.faults.freeze()  # TWS reads the order only after POST's 2 s wait
    status, body = await connected_api.post("order", _resting_buy(last))
    assert status == 202, body
    data = body["data"]
    assert data["status"] in (OrderStatus.UNCONFIRMED.value, OrderStatus.PENDING_SUBMIT.value)
    assert data["fate"] == f"/api/ibkr/orders/{data['journalId']}" == connected_api.last_headers["Location"]
    assert "not yet acknowledged" in body["message"]
    fate_status, fate = await connected_api.get(data["fate"])
    assert fate_status == 200 and fate["data"]["acknowledged"] is False and fate["data"]["sent"] is True
    connected_api.sim.faults.thaw()

    async def acknowledged() -> dict:
        _status, answer = await connected_api.get(data["fate"])
        return answer["data"]

    deadline = asyncio.get_running_loop().time() + 8
    while not (fate := await acknowledged())["acknowledged"]:
        assert asyncio.get_running_loop().time() < deadline, fate
        await asyncio.sleep(0.1)  # poll interval of this condition wait
    assert fate["status"] == fate["journalStatus"] == OrderStatus.SUBMITTED.value and fate["final"] is False
    assert fate["order"]["journalId"] == data["journalId"]


async def test_an_acknowledged_order_answers_200(connected_api):
    status, body = await connected_api.post("order", _resting_buy(await _aapl_last(connected_api)))
    assert status == 200 and body["data"]["status"] == OrderStatus.SUBMITTED.value, body


async def test_fate_of_an_unknown_or_malformed_journal_id_is_404(connected_api):
    for journal_id in ("251203-00000000", "12", "２５１２０３-1a2b3c4d"):
        status, body = await connected_api.get(f"orders/{journal_id}")
        assert status == 404 and body["success"] is False and body["code"] == "not_found", (journal_id, body)


async def test_limit_order_without_a_market_price_is_refused_with_what_to_do(connected_api):
    last = await _aapl_last(connected_api)
    before = connected_api.sim.stats.count("PLACE_ORDER")
    # the behaviour under test: time passing makes the quote above too old (5 s) to judge a price by
    await asyncio.sleep(5.1)
    connected_api.sim.faults.delay_market_data(6.0)
    status, body = await connected_api.post("order", {**_resting_buy(last), "price": round(last * 1.4, 2)})
    assert status == 400 and body["code"] == "order_rejected", body
    assert [i["code"] for i in body["issues"]] == ["no_reference_price"]
    assert "subscribe to its quote" in body["error"]
    assert connected_api.sim.stats.count("PLACE_ORDER") == before


async def test_backlogged_orders_answer_503_with_retry_after_and_are_not_sent(tmp_path, sim_server):
    broker = Broker(tmp_path / "journal.sqlite3", max_order_wait=0.3)
    handle = await start_api(broker, port=0, practice=sim_server)
    session = aiohttp.ClientSession()
    try:
        api = Api(handle, session)
        status, body = await api.post("connect", {"port": 7497, "clientId": 61})
        assert status == 200, body
        last = await _aapl_last(api)

        async def place() -> tuple[int, dict, str | None]:
            async with session.post(api.base + "/api/ibkr/order", json=_resting_buy(last)) as response:
                return response.status, await response.json(), response.headers.get("Retry-After")

        answers = await asyncio.gather(*(place() for _ in range(40)))
        busy = [a for a in answers if a[0] == 503]
        sent = [a for a in answers if a[0] in (200, 202)]
        assert busy and sent and len(busy) + len(sent) == 40, [a[0] for a in answers]
        for _status, body, retry_after in busy:
            assert body["code"] == "orders_backlogged" and re.fullmatch(r"[1-9][0-9]*", retry_after or "")
            assert "not sent" in body["error"]
        await wait_for(lambda: sim_server.stats.count("PLACE_ORDER") == len(sent))
        await exchange_caught_up(broker)  # a refused order sent after all would be counted by now
        assert sim_server.stats.count("PLACE_ORDER") == len(sent) == len(broker.journal.entries())
    finally:
        await session.close()
        await handle.close()
        await broker.close()


async def test_orders_that_never_left_are_not_sent_in_the_api_and_cannot_be_cancelled(connected_api, broker):
    sim = connected_api.sim
    last = await _aapl_last(connected_api)
    sim.faults.freeze()  # hold everything: the drop below loses what TWS has not read
    answers = await asyncio.gather(*(connected_api.post("order", _resting_buy(last)) for _ in range(12)))
    assert all(status == 202 for status, _ in answers), answers
    sim.faults.drop_all()
    sim.faults.thaw()
    await wait_for(lambda: not broker.status.connected, timeout=5)
    await wait_for(lambda: broker.status.connected, timeout=10)  # reconnected and reconciled
    assert sim.stats.count("PLACE_ORDER") == 0
    for _status, body in answers:
        status, fate = await connected_api.get(body["data"]["fate"])
        assert status == 200 and fate["data"]["status"] == fate["data"]["journalStatus"] == "NotSent", fate
        assert fate["data"]["sent"] is False and fate["data"]["final"] is True
    status, listed = await connected_api.get("orders", params={"status": "open"})
    assert status == 200 and listed["data"] == []
    status, refused = await connected_api.delete(f"order/{answers[0][1]['data']['orderId']}")
    assert status == 409 and "never sent" in refused["error"] and "another program" not in refused["error"]


async def test_status_shows_a_frozen_tws_as_stale_and_orders_are_refused(tmp_path, sim_server):
    broker = Broker(tmp_path / "journal.sqlite3", heartbeat=(0.2, 0.5))
    handle = await start_api(broker, port=0, practice=sim_server)
    session = aiohttp.ClientSession()
    try:
        api = Api(handle, session)
        assert (await api.post("connect", {"port": 7497, "clientId": 62}))[0] == 200
        last = await _aapl_last(api)
        sim_server.faults.freeze()
        await wait_for(lambda: broker.status.stale, timeout=10)
        status, body = await api.get("status")
        assert status == 200 and body["data"]["stale"] is True and body["data"]["connected"] is True
        assert "stopped answering" in body["data"]["staleReason"]
        status, refused = await api.post("order", _resting_buy(last))
        assert status == 400 and [i["code"] for i in refused["issues"]] == ["connection_stale"], refused
        sim_server.faults.thaw()
        await wait_for(lambda: not broker.status.stale, timeout=5)
        assert sim_server.stats.count("PLACE_ORDER") == 0
    finally:
        await session.close()
        await handle.close()
        await broker.close()


async def test_serve_shutdown_settles_queued_orders_as_not_sent_and_says_how_many(capsys):
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    args = Namespace(demo=True, api_port=0, profile="shutdown", seed=3)
    serving = asyncio.ensure_future(serve(args, ready=ready, stop=stop))
    api = await asyncio.wait_for(ready, 30)
    broker = api.app[STATE_KEY].broker
    aapl = await broker.resolve("AAPL")
    await broker.tick_table(aapl)
    await broker.subscribe(aapl)
    await wait_for(lambda: broker.quote(aapl) is not None and broker.quote(aapl).bid is not None)
    price = (Decimal(repr(broker.quote(aapl).bid)) * Decimal("0.95")).quantize(Decimal("0.01"))
    views = [await broker.place(OrderRequest("AAPL", Side.BUY, Decimal(1), OrderType.LMT, limit_price=price))
             for _ in range(60)]  # 1.5 s of pacing: most are still queued when the stop comes
    stop.set()
    assert await asyncio.wait_for(serving, 30) == 0
    unsent = broker.not_sent_at_shutdown
    assert 0 < unsent <= 60
    assert f"{unsent} queued order(s) not sent (NotSent in the journal)" in capsys.readouterr().out
    with OrderJournal(broker.journal.path) as journal:
        statuses = [journal.entry(v.journal_id).status for v in views]
    assert statuses.count(OrderStatus.NOT_SENT.value) == unsent
