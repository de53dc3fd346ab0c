"""Fixtures of the practice-exchange unit tests: the bundled instrument book and market rules (read once per module)."""

from __future__ import annotations

import pytest
from ibpanel.sim.market import InstrumentBook, MarketRules


@pytest.fixture(scope="module")
def book() -> InstrumentBook:
    return InstrumentBook.load()


@pytest.fixture(scope="module")
def rules() -> MarketRules:
    return MarketRules.load()
