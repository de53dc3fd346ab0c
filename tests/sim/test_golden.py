"""Golden test: for every message kind recorded from a real TWS (tests/sim/golden, see its README), the
simulator's message of the same kind has the same field count and decodes with ib_async at server
version 176 into the same set of populated fields.

Where a recording is of a different instrument type (EUR.USD cash, BTC crypto) than the practice
exchange lists (stocks), the fields that only that type carries are named below, each with its reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from ib_async import IB, MarketOrder, Stock
from ib_async.decoder import Decoder
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from tests.helpers import wait_for

GOLDEN = Path(__file__).resolve().parent / "golden"

pytestmark = [pytest.mark.timeout(60)]

# populated-field differences explained by the instrument type of the recording, per file
EXPECTED_DIFFERENCES = {
    # EUR.USD (CASH) has no listing exchange, industry classification or stock type; every stock has them
    "contract_details_eurusd.txt": {"industry", "category", "subcategory", "stockType", "primaryExchange"},
}


def _load_golden(path: Path) -> list[str]:
    raw = path.read_text().encode().decode("unicode_escape").encode("latin-1")
    fields = raw.decode("latin-1").split("\0")
    return fields[:-1] if fields and fields[-1] == "" else fields


class _Recorder:
    """A stand-in ib_async wrapper that records the decoded callback arguments."""

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []
        self.ib = SimpleNamespace(TimezoneTWS=None)
        self.defaultTimezone = timezone.utc

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args):
            self.calls.append((name, args))

        return record


def _populated(value, prefix: str = "") -> set[str]:
    """Names of the fields that differ from their defaults (nested dataclasses flattened)."""
    out: set[str] = set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                out |= _populated(v, f"{prefix}{f.name}.")
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if not _is_unset(v) and v != default:
                out.add(prefix + f.name)
        return out
    return out


def _is_unset(v) -> bool:
    if v is None or v == "" or v == [] or v == UNSET_INTEGER:
        return True
    return isinstance(v, float) and (math.isnan(v) or v == UNSET_DOUBLE)


def _decode(fields: list[str]) -> list[tuple[str, set[str] | tuple]]:
    rec = _Recorder()
    Decoder(rec, 176).interpret(list(fields))
    out = []
    for name, args in rec.calls:
        shape = []
        for a in args:
            if dataclasses.is_dataclass(a) and not isinstance(a, type):
                shape.append(frozenset(_populated(a)))
            else:
                shape.append(not _is_unset(a) and a != 0)
        out.append((name, tuple(shape)))
    return out


@pytest.fixture(scope="module")
def captured():
    """Every message the simulator sends in a session that exercises each recorded kind."""
    from ibpanel.sim.server import SimConfig, SimThread

    messages: dict[int, list[list[str]]] = {}

    async def session(port: int):
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=2, timeout=5)
        original = ib.client.decoder.interpret

        def interpret(fields):
            messages.setdefault(int(fields[0]), []).append(list(fields))
            original(fields)

        ib.client.decoder.interpret = interpret
        try:
            spy = Stock("SPY", "SMART", "USD")
            await ib.qualifyContractsAsync(spy)
            trade = ib.placeOrder(spy, MarketOrder("BUY", 1000, account="DU111111", tif="IOC",
                                                   orderRef="golden"))
            await wait_for(lambda: trade.orderStatus.status == "Filled" and trade.fills)
            # a position closed today is still reported, with quantity 0 (golden/position_1.txt)
            qqq = Stock("QQQ", "SMART", "USD")
            await ib.qualifyContractsAsync(qqq)
            for action in ("BUY", "SELL"):
                flat = ib.placeOrder(qqq, MarketOrder(action, 10, account="DU111111"))
                await wait_for(lambda flat=flat: flat.orderStatus.status == "Filled")
            await ib.reqCurrentTimeAsync()  # everything the exchange sent about the fills has arrived
            await ib.reqPositionsAsync()
            await ib.accountSummaryAsync("DU111111")
            ticker = ib.reqTickByTickData(spy, "BidAsk")
            await wait_for(lambda: ticker.tickByTicks)
        finally:
            ib.disconnect()
        # the handshake replies arrive before the hook is in place: capture them on a second connection
        ib2 = IB()
        ib2.client.decoder.interpret = _capture_into(messages, ib2.client.decoder.interpret)
        await ib2.connectAsync("127.0.0.1", port, clientId=3, timeout=5)
        ib2.disconnect()

    with SimThread(SimConfig(port=0, quote_interval=0.05)) as sim:
        asyncio.run(session(sim.port))
    return messages


def _capture_into(messages, original):
    def interpret(fields):
        messages.setdefault(int(fields[0]), []).append(list(fields))
        original(fields)

    return interpret


def _golden_files():
    return sorted(p for p in GOLDEN.glob("*.txt"))


@pytest.mark.parametrize("path", _golden_files(), ids=lambda p: p.name)
def test_simulator_message_matches_recording(path: Path, captured):
    golden = _load_golden(path)
    msg_id = int(golden[0])
    ours = captured.get(msg_id)
    assert ours, f"the simulator never sent message {msg_id} ({path.name})"
    if msg_id == 4:  # pick an error of the same family (a farm notice with reqId -1)
        ours = [m for m in ours if m[2] == "-1" and m[3].startswith("21")]
    golden_shape = _decode(golden)
    allowed = EXPECTED_DIFFERENCES.get(path.name, set())
    # the simulator sends many messages of a kind (statuses as an order moves, one row per tag):
    # one of them must match the recording in field count and populated fields
    best: list[str] | None = None
    for sample in ours:
        problems = _differences(path.name, golden, golden_shape, sample, allowed)
        if not problems:
            return
        if best is None or len(problems) < len(best):
            best = problems
    raise AssertionError(f"{path.name}: no simulator message of kind {msg_id} matches: {best}")


def _differences(name: str, golden: list[str], golden_shape, sample: list[str], allowed: set[str]) -> list[str]:
    if len(sample) != len(golden):
        return [f"{len(sample)} fields, TWS sent {len(golden)}"]
    our_shape = _decode(sample)
    if [n for n, _ in golden_shape] != [n for n, _ in our_shape]:
        return [f"decodes to {[n for n, _ in our_shape]}, TWS's to {[n for n, _ in golden_shape]}"]
    problems = []
    for (call, g_args), (_, o_args) in zip(golden_shape, our_shape, strict=True):
        for i, (g, o) in enumerate(zip(g_args, o_args, strict=True)):
            if isinstance(g, frozenset):
                diff = {f for f in (g ^ o) if f.split(".")[-1] not in allowed}
                if diff:
                    problems.append(f"{call} populated fields differ: {sorted(diff)}")
            elif g != o:
                problems.append(f"{call} argument {i} is set in one and not the other")
    return problems
