"""Completed orders TWS reports after a restart, joined with what the journal and the executions know.

TWS's completed-order message carries no orderId, no clientId and no average fill price, and
ib_async keeps its completion time out of the Trade. Shown as they come, a panel restarted after a
trading day lists its finished orders as "Id 0, Avg fill 0.0000" with the restart time. This module
fills the gaps from what is known for sure, joined by permId (and orderRef for the panel's own):

- the orderId and clientId from the journal (written when the order was sent) or an execution;
- the average fill price from the executions (their volume-weighted price), else the journal;
- the time from the completion time TWS sent, else the last execution, else the journal;
- what was left of a cancelled order (the message has no remaining size).

A value nobody knows stays unknown (None): a known fill is never replaced by an unknown one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ib_async import util

from ibpanel.broker.convert import dec, int_id, known_price, utc
from ibpanel.broker.models import JournalEntry, OrderStatus, OrderView

log = logging.getLogger(__name__)


def parse_completed_time(text: str) -> datetime | None:
    """TWS's ``completedTime`` ("20261203 09:41:28 America/New_York") as aware UTC, or None if unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = util.parseIBDatetime(text)
    except (ValueError, KeyError, OSError):  # an unknown zone name (ZoneInfo) or another layout
        log.debug("unreadable completedTime %r", text)
        return None
    return utc(moment) if isinstance(moment, datetime) else None


class CompletionTimes:
    """Remembers the completion time of every completed-order message, by permId.

    ib_async drops the completed-order ``OrderState`` (where TWS puts ``completedTime``); this wraps
    its wrapper's handler on this one IB instance to keep the time before passing the message on.
    """

    def __init__(self, ib: Any) -> None:
        self._times: dict[int, datetime] = {}
        wrapper = ib.wrapper
        handler = wrapper.completedOrder

        def completed_order(contract: Any, order: Any, order_state: Any) -> None:
            try:
                perm_id = int_id(order.permId)
                moment = parse_completed_time(getattr(order_state, "completedTime", ""))
                if perm_id and moment is not None:
                    self._times[perm_id] = moment
            except Exception:  # noqa: BLE001 - a time we cannot read must never lose the order itself
                log.debug("completedTime not recorded", exc_info=True)
            handler(contract, order, order_state)

        wrapper.completedOrder = completed_order

    def get(self, perm_id: int | None) -> datetime | None:
        return self._times.get(perm_id) if perm_id else None

    def clear(self) -> None:
        self._times.clear()


def _executions_of(fills: Iterable[Any], perm_id: int) -> list[Any]:
    """ib_async Fills of one order (by permId, the one id an execution and a completed order share)."""
    return [f for f in fills if int_id(getattr(f.execution, "permId", None)) == perm_id]


def join_completed(view: OrderView, *, entry: JournalEntry | None, fills: Iterable[Any],
                   completed_at: datetime | None) -> OrderView:
    """``view`` (built from a completed-order message) with the ids, average price and time it lacks.

    ``entry``: the journal entry of the order (by orderRef or permId), if it is the panel's; ``fills``:
    the ib_async Fills of the session (executions); ``completed_at``: TWS's completion time, if sent.
    """
    executions = _executions_of(fills, view.perm_id) if view.perm_id else []
    changes: dict[str, Any] = {}
    if not view.order_id:
        from_execution = next((f.execution for f in executions if (f.execution.orderId or 0) > 0), None)
        order_id = (entry.order_id if entry is not None and entry.order_id else None) or (
            from_execution.orderId if from_execution is not None else None)
        if order_id:
            changes["order_id"] = int(order_id)
        if view.client_id is None and from_execution is not None:
            changes["client_id"] = int_id(from_execution.clientId)
    if view.filled > 0 and known_price(view.avg_fill_price) is None:
        shares = [(dec(f.execution.shares) or Decimal(0), known_price(f.execution.price)) for f in executions]
        priced = [(q, Decimal(str(p))) for q, p in shares if q > 0 and p is not None]
        total = sum((q for q, _p in priced), Decimal(0))
        if total > 0:  # in Decimal, so one fill at 229.98 averages 229.98, not 229.97999999999996
            changes["avg_fill_price"] = float(sum((q * p for q, p in priced), Decimal(0)) / total)
        elif entry is not None and known_price(entry.avg_fill_price) is not None:
            changes["avg_fill_price"] = entry.avg_fill_price
        else:
            changes["avg_fill_price"] = None  # unknown, never a made-up 0.0
    if view.status is not OrderStatus.FILLED and not view.remaining and view.quantity > view.filled:
        changes["remaining"] = view.quantity - view.filled  # what was left when it ended (the message says 0)
    last_execution = max((utc(f.execution.time) for f in executions if utc(f.execution.time)), default=None)
    when = completed_at or last_execution or (entry.updated_at if entry is not None else None)
    if when is not None:
        changes["updated_at"] = when
    if entry is not None and entry.created_at is not None:
        changes["created_at"] = entry.created_at
    return replace(view, **changes) if changes else view
