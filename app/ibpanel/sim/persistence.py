"""Persistence of the practice exchange (``--state``): restore at start, journal every change before
the reply that acknowledges it leaves, and snapshots written off the loop (the files: state_store.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime

from ibpanel.sim.calendars import UTC
from ibpanel.sim.exchange import (
    AccountTouched,
    Executed,
    WhatIfResult,
    _execution_to_json,
    _order_to_json,
)
from ibpanel.sim.state_store import STATE_FORMAT

log = logging.getLogger("ibpanel.sim")


STATE_SAVE_SECONDS = 0.5
MARKET_SAVE_SECONDS = 5.0  # price moves alone are saved less often: no disk churn while nothing trades


class StatePersistence:
    """SimServer's persistence part (mixed into SimServer; state lives on the server)."""

    # ----- persistence ------------------------------------------------------------------------------------
    def _load_state(self) -> None:
        data = self._store.load()
        if data is None:
            return
        self.market.load_dict(data.get("market", {}))
        self.accounts.load_dict(data.get("accounts", {}))
        self.exchange.load_dict(data.get("exchange", {}))
        log.info("practice exchange state restored from %s", self._state_path)

    def _journal(self, event: object) -> None:
        """Queue what an exchange event changed; ``sync_state`` writes it before any reply leaves."""
        store = self._store
        if isinstance(event, AccountTouched):
            state = self.accounts.to_dict()["accounts"].get(event.account)
            if state is not None:
                store.record("account", state, event.account)
            return
        if isinstance(event, WhatIfResult):
            return
        if isinstance(event, Executed):
            store.record("exec", _execution_to_json(event.execution))
        store.record("order", _order_to_json(event.order))  # type: ignore[attr-defined]
        # the counters Exchange.to_dict saves, so ids never repeat after a restart from the journal
        store.record("counters", {name: getattr(self.exchange, "_" + name)
                                  for name in ("next_perm_id", "exec_seq", "max_order_id")})

    def sync_state(self) -> None:
        """Write and fsync the journal of changes not yet on disk (cheap when there are none)."""
        store = self._store
        if store is not None and store.pending:
            try:
                store.sync()
            except OSError:
                log.exception("could not write the state journal of %s", self._state_path)

    def save_state(self) -> None:
        """Write the snapshot now (atomically) and drop the journals it contains."""
        if self._store is not None:
            seq = self._store.rotate()
            self._store.write_snapshot(self._snapshot_text(seq), seq)

    async def _state_writer(self) -> None:
        while True:
            await asyncio.sleep(STATE_SAVE_SECONDS / 5)  # a first change is in the snapshot within ~0.1 s
            now = time.monotonic()
            if now - self._last_state_save < STATE_SAVE_SECONDS:
                continue
            if self._state_dirty or (self._prices_dirty and now - self._last_state_save >= MARKET_SAVE_SECONDS):
                self._last_state_save = now
                try:
                    # serialised on the loop (consistent), written on a worker thread (fsync is slow)
                    seq = self._store.rotate()
                    await asyncio.to_thread(self._store.write_snapshot, self._snapshot_text(seq), seq)
                except Exception:
                    log.exception("could not write the state file %s", self._state_path)

    def _snapshot_text(self, journal_seq: int) -> str:
        self._state_dirty = False
        self._prices_dirty = False
        data = {
            "format": STATE_FORMAT, "saved": datetime.now(UTC).isoformat(), "journal_seq": journal_seq,
            "account_ids": list(self.config.accounts), "market": self.market.to_dict(),
            "accounts": self.accounts.to_dict(), "exchange": self.exchange.to_dict(),
        }
        return json.dumps(data, default=str, separators=(",", ":"))
