"""Helpers shared by the async tests of several areas (import as ``tests.helpers``)."""

from __future__ import annotations

import asyncio
import time


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll ``predicate`` on the loop until it is truthy; return its value or fail the test."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(interval)


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01):
    """``wait_for`` for threads with no event loop of their own (IB's official client runs a reader thread):
    poll ``predicate`` until it is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)  # poll interval, not a wait for something to finish


class FakeClock:
    """A clock the test sets by hand: ``clock.now = ...``; calling it returns that time."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


async def exchange_caught_up(broker) -> None:
    """Return once the exchange has answered a request the broker sent after everything it had queued.

    TWS and the practice exchange handle one connection's messages in order, and the broker's pacer sends
    CURRENT_TIME in the order lane with orders and cancels: by the answer, every order the broker sent
    before has been received and counted. A test proving that nothing was sent waits on this, not a sleep.
    """
    await broker._ib.reqCurrentTimeAsync()
