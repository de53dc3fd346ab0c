"""The shared loop pattern: sync qasync UI tests and pytest-asyncio tests alternate in one session."""

from __future__ import annotations

import asyncio

import qasync


def test_sync_ui_test_sees_the_qasync_loop(run_async, qasync_loop):
    async def which_loop():
        await asyncio.sleep(0)  # the behaviour under test: a coroutine that yields to the loop
        return asyncio.get_running_loop()

    assert run_async(which_loop()) is qasync_loop
    assert isinstance(qasync_loop, qasync.QEventLoop)


async def test_pytest_asyncio_test_gets_a_plain_loop_between_ui_tests():
    loop = asyncio.get_running_loop()
    assert not isinstance(loop, qasync.QEventLoop)
    await asyncio.sleep(0.01)  # the behaviour under test: a timer on the plain loop fires


def test_sync_ui_test_after_an_async_test_still_works(run_async):
    async def sleepy():
        await asyncio.sleep(0.02)  # the behaviour under test: a timer on the qasync loop fires
        return "done"

    assert run_async(sleepy()) == "done"
