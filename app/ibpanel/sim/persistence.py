"""The practice exchange's ``--state``: a snapshot file plus an append-only journal, durable before replies leave.

``StateStore`` owns the files; ``StatePersistence`` (part of SimServer) restores them at start, journals every
change the exchange reports and writes snapshots off the loop.

- ``state.json`` is a full snapshot (accounts, orders, fills, prices), replaced atomically (temporary file,
  fsync, rename, fsync of the folder), so it is readable after a kill at any moment.
- ``state.json.journal-NNNNNN`` files hold what changed since: one JSON line per order, fill, account and
  counter change. The server calls ``sync()`` before it writes replies to any client, so an order or a fill
  a client has seen acknowledged is on disk (fsync'd) first; one fsync covers every change of a loop turn.
- Compaction: before a snapshot is taken the journal is rotated; the snapshot names the first journal it
  does not contain, and once the snapshot is on disk the older journals are deleted. Loading reads the
  snapshot, then replays the newer journals in order (a torn last line of a killed writer is ignored).
- Temporary files: one fixed name per state file, cleaned up when the store opens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path

from ibpanel.sim.calendars import UTC
from ibpanel.sim.exchange import (
    AccountTouched,
    Executed,
    WhatIfResult,
    _execution_to_json,
    _order_to_json,
)

log = logging.getLogger("ibpanel.sim")
STATE_FORMAT = 1


class StateStore:
    """Snapshot + journal of one ``--state`` file. ``record``/``sync``/``rotate`` run on the server's loop;
    ``write_snapshot`` may run on a worker thread (writes are serialised)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._seq = 1
        self._fh = None
        self._pending: list[str] = []
        self._snapshot_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clean_temp_files()

    # ----- names ------------------------------------------------------------------------------------------
    @property
    def _tmp(self) -> Path:
        return self.path.with_name(f".{self.path.name}.tmp")

    def journal_path(self, seq: int) -> Path:
        return self.path.with_name(f"{self.path.name}.journal-{seq:06d}")

    def _journals(self) -> list[tuple[int, Path]]:
        prefix = f"{self.path.name}.journal-"
        out = []
        for p in self.path.parent.glob(prefix + "*"):
            tail = p.name[len(prefix):]
            if tail.isdigit():
                out.append((int(tail), p))
        return sorted(out)

    def clean_temp_files(self) -> None:
        """Remove temporary files a killed writer left (this name and the older per-process names)."""
        for p in self.path.parent.glob(f".{self.path.name}*.tmp"):
            try:
                p.unlink()
            except OSError as exc:
                log.warning("could not remove the abandoned temporary file %s: %s", p, exc)

    # ----- loading ----------------------------------------------------------------------------------------
    def load(self) -> dict | None:
        """The saved state with every journal replayed, or None when nothing was saved. ValueError when the
        snapshot cannot be read."""
        data = None
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"state file {self.path} cannot be read ({exc}); move it away to start fresh") \
                    from exc
            if data.get("format") != STATE_FORMAT:
                raise ValueError(f"state file {self.path} has format {data.get('format')!r}, expected "
                                 f"{STATE_FORMAT}; move it away to start fresh")
        first = int(data.get("journal_seq", 0)) if data else 0
        journals = self._journals()
        replay = [(seq, p) for seq, p in journals if seq >= first]
        # new changes go to a journal the next load replays: after the snapshot's first and every existing one
        self._seq = max(first, journals[-1][0] + 1 if journals else 1, self._seq)
        if data is None and not replay:
            return None
        data = data or {"format": STATE_FORMAT, "market": {}, "accounts": {}, "exchange": {}}
        merger = _Merger(data)
        for _seq, p in replay:
            for line in p.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # the torn last line of a writer killed mid-write: never acknowledged
                    log.warning("state journal %s ends with a partial line; ignored", p.name)
                    break
                merger.apply(record)
        return data

    # ----- journal ----------------------------------------------------------------------------------------
    def record(self, kind: str, value: object, key: object = None) -> None:
        """Queue one change; it is written and fsync'd by the next ``sync``."""
        self._pending.append(json.dumps({"k": kind, "id": key, "v": value}, default=str, separators=(",", ":")))

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def sync(self) -> None:
        """Append the queued changes to the journal and fsync it (before any reply leaves)."""
        if not self._pending:
            return
        new_file = self._fh is None
        if new_file:
            self._fh = open(self.journal_path(self._seq), "a", encoding="utf-8")
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        self._fh.write(text)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        if new_file:
            _fsync_dir(self.path.parent)

    def rotate(self) -> int:
        """Start a new journal; returns its number, which a snapshot taken now records as its first."""
        self.sync()
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._seq += 1
        return self._seq

    def close(self) -> None:
        self.sync()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # ----- snapshot ---------------------------------------------------------------------------------------
    def write_snapshot(self, text: str, journal_seq: int) -> None:
        """Replace the snapshot atomically, then delete the journals it contains (those below journal_seq)."""
        with self._snapshot_lock:
            tmp = self._tmp
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            finally:
                if tmp.exists():
                    tmp.unlink()
            _fsync_dir(self.path.parent)
            for seq, p in self._journals():
                if seq < journal_seq:
                    p.unlink(missing_ok=True)


class _Merger:
    """Applies journal records to a snapshot dict in the shapes Exchange/Accounts.to_dict use."""

    def __init__(self, data: dict):
        self.exchange = data.setdefault("exchange", {})
        self.accounts = data.setdefault("accounts", {}).setdefault("accounts", {})
        self.orders = {(o.get("client_id"), o.get("order_id")): i
                       for i, o in enumerate(self.exchange.setdefault("orders", []))}
        self.exec_ids = {e.get("exec_id") for e in self.exchange.setdefault("executions", [])}

    def apply(self, record: dict) -> None:
        kind, value = record.get("k"), record.get("v")
        if kind == "order":
            key = (value.get("client_id"), value.get("order_id"))
            at = self.orders.get(key)
            if at is None:
                self.orders[key] = len(self.exchange["orders"])
                self.exchange["orders"].append(value)
            else:
                self.exchange["orders"][at] = value
        elif kind == "exec":
            if value.get("exec_id") not in self.exec_ids:
                self.exec_ids.add(value.get("exec_id"))
                self.exchange["executions"].append(value)
        elif kind == "account":
            self.accounts[record.get("id")] = value
        elif kind == "counters":
            for name, number in value.items():
                self.exchange[name] = max(int(self.exchange.get(name, 0) or 0), int(number))


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new file's entry durable (POSIX; Windows has no directory handles to fsync)."""
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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

    def _state_changed(self) -> None:
        """Orders, fills or accounts changed (on the exchange's loop): the snapshot is due within STATE_SAVE_SECONDS."""
        self._state_dirty = True
        self._state_wake.set()

    def _state_save_due_in(self) -> float | None:
        """Seconds until the snapshot is due (0: now); None when nothing changed since the last one."""
        since = time.monotonic() - self._last_state_save
        if self._state_dirty:
            return max(STATE_SAVE_SECONDS - since, 0.0)
        if self._prices_dirty:
            return max(MARKET_SAVE_SECONDS - since, 0.0)
        return None

    async def _state_writer(self) -> None:
        # Sleeps until a snapshot is due instead of polling: a change of state wakes it at once (saved at
        # most every STATE_SAVE_SECONDS), price moves alone every MARKET_SAVE_SECONDS. An idle exchange
        # wakes for it every few seconds, not ten times a second.
        while True:
            due = self._state_save_due_in()
            if due is None or due > 0:
                self._state_wake.clear()
                # A timer sets the same event (not wait_for: on Python < 3.12 it can swallow the cancel of
                # stop() when the event is set at the same moment, and this loop then never ends).
                alarm = asyncio.get_running_loop().call_later(
                    MARKET_SAVE_SECONDS if due is None else due, self._state_wake.set)
                try:
                    await self._state_wake.wait()
                finally:
                    alarm.cancel()
                continue
            self._last_state_save = time.monotonic()
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
