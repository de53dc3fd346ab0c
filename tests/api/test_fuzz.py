"""Generated requests (schemathesis, from the API's own openapi.json) against a connected practice session.

Checks: no 5xx, every answer in the documented shape and status codes, and no order reaching
the exchange from a request the API refused. Bounded (few examples per operation) to stay fast.
/connect and /disconnect are left out: they would point the broker at generated hosts.

The server runs on its own thread here only because schemathesis calls it synchronously; in the
product the API, broker and practice exchange share one loop, as they do inside that thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from decimal import Decimal

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from ibpanel.api.openapi import openapi_document
from ibpanel.api.server import start_api
from ibpanel.broker.models import ConnectionParams
from ibpanel.broker.service import Broker
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("IBPANEL_FUZZ_EXAMPLES", "25"))  # per operation and mode; raise it for a deep run
SKIPPED = ("POST /api/ibkr/connect", "POST /api/ibkr/disconnect")


class ServerThread:
    """Practice exchange + Broker + API on one loop in a helper thread."""

    def __init__(self, journal_path) -> None:
        self.journal_path = journal_path
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="api-fuzz-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from ibpanel.sim.server import SimConfig, SimServer

        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.sim = SimServer(SimConfig(host="127.0.0.1", port=0, seed=3))
        await self.sim.start()
        broker = Broker(self.journal_path)
        try:
            await broker.connect(ConnectionParams(port=self.sim.port, client_id=5, timeout=5.0))
            self.handle = await start_api(broker, port=0, practice=self.sim)
            self.ready.set()
            await self.stop.wait()
            await self.handle.close()
        finally:
            await broker.close()
            await self.sim.stop()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        assert self.ready.wait(30), "fuzz server did not start"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)


@pytest.fixture
def fuzz_server(tmp_path):
    with ServerThread(tmp_path / "journal.sqlite3") as server:
        yield server


def _fuzz(operation, mode, base_url: str) -> tuple[int, int]:
    """Run generated cases of one operation; returns (cases tried, orders reported as sent)."""
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    is_order = operation.label == "POST /api/ibkr/order"
    is_document = operation.label == "GET /api/ibkr/openapi.json"
    counts = {"tried": 0, "sent": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call_and_validate(base_url=base_url, checks=checks, timeout=15)
        body = response.json()
        if is_document and response.status_code == 200:
            assert body["openapi"].startswith("3.1")  # the one answer that is not the success envelope
            return
        assert isinstance(body.get("success"), bool)
        if response.status_code >= 400:
            assert body["success"] is False and isinstance(body["error"], str) and body["error"]
            assert "Traceback" not in body["error"]
        counts["tried"] += 1
        # 200, or 422 (refused by the exchange itself), means the order went out.
        if is_order and response.status_code in (200, 422):
            counts["sent"] += 1

    try:
        run()
    except Unsatisfiable:
        # Operations without parameters or body have no invalid input to generate.
        assert mode is GenerationMode.NEGATIVE, operation.label
    return counts["tried"], counts["sent"]


def test_generated_requests_never_500_and_refused_orders_never_reach_the_exchange(fuzz_server):
    schema = schemathesis.openapi.from_dict(openapi_document())
    tried = sent_orders = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in SKIPPED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases, sent = _fuzz(operation, mode, fuzz_server.handle.url)
            tried += cases
            sent_orders += sent
    print(f"fuzz: {tried} generated requests, {sent_orders} orders sent, "
          f"{fuzz_server.sim.stats.count('PLACE_ORDER')} PLACE_ORDER at the exchange")
    assert tried > 100
    # Every PLACE_ORDER the exchange saw belongs to an order the API reported as sent.
    assert fuzz_server.sim.stats.count("PLACE_ORDER") == sent_orders


_SYMBOLS = st.sampled_from(["AAPL", "MSFT", "BRK.B", "700", "0700.HK", "00005", "9618", "PNNY", "NOPE"])
_PRICES = st.one_of(
    st.none(),
    st.decimals(min_value=Decimal("0.5"), max_value=Decimal("800"), places=2).map(float),
    st.integers(min_value=-5, max_value=2000),
)
_ORDER_BODIES = st.fixed_dictionaries(
    {"symbol": _SYMBOLS, "side": st.sampled_from(["buy", "sell", "BUY", "short"]),
     "quantity": st.one_of(st.sampled_from([1, 10, 50, 100, 150, 400, 1000, 0, -1, 2.5, 10**7]),
                           st.integers(min_value=-10, max_value=2000), st.floats(allow_nan=False, allow_infinity=False, width=32))},
    optional={
        "orderType": st.sampled_from(["market", "limit", "stop", "stop_limit", "MKT", "trail"]),
        "price": _PRICES,
        "stopPrice": _PRICES,
        "tif": st.sampled_from(["DAY", "GTC", "IOC", "GTD"]),
        "outsideRth": st.booleans(),
        "marketType": st.sampled_from(["USStock", "HShare", "Forex"]),
    },
)


def test_near_valid_orders_reach_the_exchange_only_when_accepted(fuzz_server):
    """Orders close to valid (real symbols, odd lots, off-tick and far prices): only 200/422 are sent."""
    url = f"{fuzz_server.handle.url}/api/ibkr/order"
    counts = {"sent": 0, "refused": 0}
    before = fuzz_server.sim.stats.count("PLACE_ORDER")

    @settings(max_examples=EXAMPLES * 2, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(body=_ORDER_BODIES)
    def run(body):
        response = requests.post(url, json=body, timeout=15)
        answer = response.json()
        assert response.status_code in (200, 400, 422), (body, answer)
        if response.status_code == 400:
            assert answer["success"] is False and answer["error"]
            counts["refused"] += 1
        else:
            counts["sent"] += 1

    run()
    print(f"near-valid orders: {counts}")
    assert counts["refused"] > 0
    assert fuzz_server.sim.stats.count("PLACE_ORDER") - before == counts["sent"]
