"""Broker test fixtures: a Broker with its own journal and short reconnect backoff, connected to
the practice exchange (``sim_server`` from tests/conftest.py) on the test's own loop."""

from __future__ import annotations

import pytest
from broker_helpers import make_broker, params


@pytest.fixture
async def broker(tmp_path):
    b = make_broker(tmp_path)
    yield b
    await b.close()


@pytest.fixture
async def connected(broker, sim_server):
    """A Broker connected (read-write) to a fresh practice exchange."""
    await broker.connect(params(sim_server.port))
    return broker
