"""Helpers shared by the broker tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from decimal import Decimal

from ibpanel.broker.models import ConnectionParams
from ibpanel.broker.service import Broker

from tests.helpers import wait_for  # noqa: F401 - re-exported for the broker tests


def make_broker(tmp_path, **kwargs) -> Broker:
    kwargs.setdefault("reconnect_backoff", (0.05, 0.3))
    kwargs.setdefault("max_order_value", {"USD": Decimal(2_000_000), "HKD": Decimal(20_000_000)})
    return Broker(tmp_path / "journal.sqlite3", **kwargs)


def params(port: int, **kwargs) -> ConnectionParams:
    kwargs.setdefault("client_id", 7)
    kwargs.setdefault("timeout", 4.0)
    return ConnectionParams(host="127.0.0.1", port=port, **kwargs)


