"""One practice exchange per profile: the first start owns it, later starts join it, and only the owner saves."""

from __future__ import annotations

import json

import pytest
from ibpanel.broker.models import ConnectionParams, OrderRequest, OrderType, Side
from ibpanel.broker.service import Broker
from ibpanel.runtime.practice import PracticeUnavailable, practice_files, start_practice

from tests.helpers import wait_for


def _saved_positions(state_path) -> dict[int, float]:
    """{conId: shares} summed over the accounts of the saved practice state."""
    held: dict[int, float] = {}
    for account in json.loads(state_path.read_text(encoding="utf-8"))["accounts"]["accounts"].values():
        for position in account["positions"]:
            held[position["con_id"]] = held.get(position["con_id"], 0) + float(position["quantity"])
    return held


async def _buy_aapl(port: int, journal, client_id: int, held_after: int) -> None:
    """Buy 3 AAPL at market through the exchange on ``port``; return once the account holds ``held_after``."""
    broker = Broker(journal)

    def held():
        return sum(p.quantity for p in broker.positions() if p.instrument.symbol == "AAPL")

    try:
        await broker.connect(ConnectionParams(host="127.0.0.1", port=port, client_id=client_id, practice=True))
        await broker.place(OrderRequest(symbol="AAPL", side=Side.BUY, quantity=3, order_type=OrderType.MKT))
        await wait_for(lambda: held() == held_after, timeout=10)
    finally:
        await broker.close()


async def test_the_second_start_joins_the_first_and_never_runs_a_copy(tmp_path):
    state, lock_path, address_path = practice_files("default")
    owner = await start_practice("default", seed=5)
    try:
        assert owner.owner and address_path.exists()
        joined = await start_practice("default", seed=5)
        assert joined.joined and joined.port == owner.port and joined.owner_pid == owner.owner_pid
        assert joined.sim is None  # nothing of its own to save
        aapl, tencent = (owner.sim.book.find(symbol)[0].con_id for symbol in ("AAPL", "700"))
        await _buy_aapl(joined.port, tmp_path / "journal.sqlite3", client_id=21, held_after=3)  # an order through the joiner
        await joined.stop()
        await _buy_aapl(owner.port, tmp_path / "journal.sqlite3", client_id=22, held_after=6)  # the owner's exchange runs on
    finally:
        await owner.stop()
    assert not address_path.exists()
    saved = _saved_positions(state)  # by the owner, once: the starter holdings and both buys
    assert saved[aapl] == 6 and saved[tencent] == 2000, saved

    again = await start_practice("default", seed=5)  # ownership is free again; the account continues
    try:
        assert again.owner
        # Exactly the saved account: the starter holding is not given twice.
        assert again.sim.accounts.to_dict() == json.loads(state.read_text(encoding="utf-8"))["accounts"]
    finally:
        await again.stop()


async def test_owner_on_its_own_thread_is_joined_the_same_way():
    owner = await start_practice("work", on_thread=True)
    try:
        joined = await start_practice("work")
        assert joined.joined and joined.port == owner.port
        other_profile = await start_practice("other")
        assert other_profile.owner and other_profile.port != owner.port  # profiles are separate
        await other_profile.stop()
    finally:
        await owner.stop()


async def test_a_private_exchange_neither_locks_nor_saves():
    state, lock_path, address_path = practice_files("default")
    private = await start_practice("default", persistent=False)
    try:
        owner = await start_practice("default")  # the profile's exchange is still free
        assert owner.owner and owner.port != private.port
        await owner.stop()
    finally:
        await private.stop()
    assert not address_path.exists()


async def test_an_owner_that_never_says_where_it_listens_is_refused_plainly():
    from filelock import FileLock

    state, lock_path, address_path = practice_files("default")
    squatter = FileLock(str(lock_path), thread_local=False)
    squatter.acquire()  # holds the lock but writes no address (an owner stuck while starting)
    try:
        with pytest.raises(PracticeUnavailable, match="Close the other IB Panel"):
            await start_practice("default", join_wait=0.3)
    finally:
        squatter.release()


async def test_reset_practice_is_refused_while_the_exchange_runs(capsys, tmp_path):
    import os

    from ibpanel.cli import main

    state, _, _ = practice_files("default")
    owner = await start_practice("default")
    try:
        owner.sim.save_state()
        assert main(["--reset-practice", "journal", "export", str(tmp_path / "x.csv")]) == 1
        assert f"in use by process {os.getpid()}" in capsys.readouterr().err
        assert state.exists()  # the running exchange's account is untouched
    finally:
        await owner.stop()
