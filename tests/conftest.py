"""Shared test setup: headless Qt, an isolated user directory, and the practice exchange fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own settings / journal / log directories."""
    monkeypatch.setenv("IBPANEL_HOME", str(tmp_path / "ibpanel-home"))
    yield


# ----- the practice exchange (owned by the sim wire engineer) ------------------------------------------------
import pytest_asyncio  # noqa: E402


def sim_test_config(**overrides):
    """A SimConfig for tests: ephemeral port, always-open session, quick quotes, default two accounts."""
    from ibpanel.sim.server import SimConfig

    values = {"host": "127.0.0.1", "port": 0, "accounts": ("DU111111", "DU222222"), "seed": 1,
              "session_mode": "always", "quote_interval": 0.05}
    values.update(overrides)
    return SimConfig(**values)


@pytest.fixture
def sim():
    """A started practice exchange on its own thread (works in sync and async tests); stopped afterwards."""
    from ibpanel.sim.server import SimThread

    with SimThread(sim_test_config()) as running:
        yield running


@pytest_asyncio.fixture
async def sim_server():
    """A started SimServer on the test's own event loop; stopped afterwards."""
    from ibpanel.sim.server import SimServer

    server = SimServer(sim_test_config())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
