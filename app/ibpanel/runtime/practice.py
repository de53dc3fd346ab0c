"""The practice exchange of a profile: one owner per profile; every other process joins it.

A profile's practice account lives in ``practice-state.json``. When ``ibpanel --demo`` and
``ibpanel serve --demo`` each ran a copy of the exchange on one profile, each saved its own copy
over the other's, and an order placed through one vanished. Now the first process to start
practice on a profile *owns* the exchange: it holds an OS file lock (``practice.lock``, which the
OS releases if the process dies) and, while holding it, writes where the exchange listens
(``practice-exchange.json``). A later process finds the lock taken, reads that address and
connects to the running exchange as one more API client, as a second program connects to one
TWS. It never runs a copy, so it never writes the state.

The owner removes the address file as soon as it has the lock and writes it again once
listening: whenever the lock is held, an address file present is the current owner's.

Headless panel runs (screenshots, the smoke test) use a private exchange without a state file
(``persistent=False``): they neither read nor touch the profile's practice account.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibpanel import paths

if TYPE_CHECKING:
    from filelock import FileLock

log = logging.getLogger(__name__)

LOCK_FILE = "practice.lock"
ADDRESS_FILE = "practice-exchange.json"
JOIN_WAIT = 10.0  # seconds a joining process waits for the owner to write its address

# The practice exchange (like SEHK) refuses naked HK short sales, so a new practice account starts
# with a holding of Tencent: the trading module's README example "limit sell 100 0700.HK at 300"
# then sells shares it owns.
DEMO_STARTER_HOLDINGS: tuple[tuple[str, str, int], ...] = (("700", "SEHK", 1000),)  # IB symbol, exchange, shares


class PracticeUnavailable(RuntimeError):
    """The profile's practice exchange is owned by another process that does not say where it listens."""


def seed_practice_holdings(sim: Any, holdings: tuple[tuple[str, str, int], ...] = DEMO_STARTER_HOLDINGS) -> None:
    """Give every practice account a starter holding, bought at the practice price without commission.

    Call before any client connects (the positions then arrive with the connection like any other).
    """
    for symbol, exchange, shares in holdings:
        found = sim.book.find(symbol, exchange=exchange)
        if not found:
            log.warning("practice starter holding %s not in the instrument data; skipped", symbol)
            continue
        instrument = found[0]
        price = sim.market.top(instrument.con_id).last
        for account in sim.config.accounts:
            sim.accounts.apply_fill(account, instrument, "BUY", Decimal(shares), price, Decimal(0))


@dataclass
class PracticeExchange:
    """The practice exchange this session uses: its own (``owner``) or the one another process runs."""

    host: str
    port: int
    owner: bool
    owner_pid: int
    profile: str | None = None
    #: The running exchange when this process owns it: a SimServer (on this loop) or a SimThread.
    sim: Any = field(default=None, repr=False)
    _lock: FileLock | None = field(default=None, repr=False)
    _address_path: Path | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def joined(self) -> bool:
        return not self.owner

    def describe(self) -> str:
        """One phrase for logs and ready lines."""
        if self.owner:
            return f"practice exchange on port {self.port}"
        return f"the practice exchange of process {self.owner_pid} on port {self.port} (joined: one per profile)"

    async def stop(self) -> None:
        """Stop the exchange this process owns (saving the account) and give up ownership; joined: nothing to stop."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.sim is not None:
                sim, self.sim = self.sim, None
                await _stop_sim(sim)
        finally:
            if self._address_path is not None:
                self._address_path.unlink(missing_ok=True)
            if self._lock is not None:
                self._lock.release()


def practice_files(profile: str) -> tuple[Path, Path, Path]:
    """(state, lock, address) files of a profile's practice exchange."""
    state = paths.practice_state_path(profile)
    return state, state.with_name(LOCK_FILE), state.with_name(ADDRESS_FILE)


def practice_owner(profile: str) -> int | None:
    """The process id owning the profile's practice exchange now (0 when it has not said), or None when free."""
    from filelock import FileLock, Timeout  # here: a start without the practice exchange never loads it

    _, lock_path, address_path = practice_files(profile)
    lock = FileLock(str(lock_path), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        address = _read_address(address_path)
        return address[2] if address is not None else 0
    lock.release()
    return None


def _read_address(path: Path) -> tuple[str, int, int] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        host, port, pid = str(data["host"]), int(data["port"]), int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (host, port, pid) if 0 < port < 65536 else None


def _write_address(path: Path, host: str, port: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}), encoding="utf-8")
    os.replace(tmp, path)


async def _stop_sim(sim: Any) -> None:
    """Stop a SimServer (on this loop) or a SimThread (its stop blocks while the thread saves and ends)."""
    if hasattr(sim, "server"):
        await asyncio.get_running_loop().run_in_executor(None, sim.stop)
    else:
        await sim.stop()


_SERVER_MODULE = "ibpanel.sim.server"
# The import started by prefetch_exchange_code(), on a worker thread of the loop that asked.
_prefetch: asyncio.Future[Any] | None = None


def prefetch_exchange_code() -> None:
    """Start importing the practice exchange's code on a worker thread now.

    ``--demo`` calls it right after the window is shown: the window's first layout and paint run in Qt's C++
    code, which lets go of the interpreter, so the import proceeds on the other core meanwhile instead of
    after the paint.
    """
    global _prefetch
    if _SERVER_MODULE in sys.modules or _prefetch is not None:
        return
    _prefetch = asyncio.get_running_loop().run_in_executor(None, _import_exchange_code)


def _import_exchange_code() -> None:
    importlib.import_module("filelock")  # the profile's practice lock
    importlib.import_module(_SERVER_MODULE)


async def _sim_server_module(on_thread: bool) -> Any:
    """``ibpanel.sim.server``. With ``on_thread`` (the caller's loop drives a window) its first import runs on
    a worker thread, so the window keeps painting and handling events meanwhile."""
    if on_thread and _SERVER_MODULE not in sys.modules:
        loop = asyncio.get_running_loop()
        prefetch = _prefetch if _prefetch is not None and _prefetch.get_loop() is loop else None
        if prefetch is not None and prefetch.done() and (prefetch.cancelled() or prefetch.exception() is not None):
            prefetch = None  # a failed prefetch is tried again as a plain import, which then says why it fails
        await (prefetch or loop.run_in_executor(None, _import_exchange_code))
    return importlib.import_module(_SERVER_MODULE)


async def _start_sim(config: Any, on_thread: bool, seed_new: bool) -> Any:
    server_module = await _sim_server_module(on_thread)
    if on_thread:
        sim = server_module.SimThread(config)
        loop = asyncio.get_running_loop()
        # Starting a thread and binding is quick, but keep the caller's loop (the window) running meanwhile.
        await loop.run_in_executor(None, sim.start)
        if seed_new:
            try:  # on the exchange's own loop: nothing there runs concurrently with the seeding
                await loop.run_in_executor(None, sim.call, seed_practice_holdings, sim.server)
            except BaseException:
                await loop.run_in_executor(None, sim.stop)
                raise
        return sim
    sim = server_module.SimServer(config)
    if seed_new:
        seed_practice_holdings(sim)
    await sim.start()
    return sim


async def start_practice(
    profile: str,
    *,
    seed: int | None = None,
    persistent: bool = True,
    on_thread: bool = False,
    join_wait: float = JOIN_WAIT,
    replay: Any = None,
) -> PracticeExchange:
    """Own the profile's practice exchange (start it) or join the one another process owns.

    ``persistent``: the profile's practice account (state file, one owner per profile); False runs a
    private, fresh exchange (headless runs). ``on_thread``: run an owned exchange on its own thread
    (the window keeps painting) instead of the running loop. ``seed``: the price seed of an exchange
    this call starts. ``replay``: a sim/replay.py ReplaySession: a private exchange on that recorded day
    (like ``persistent=False``: the profile's practice account is not touched). Raises PracticeUnavailable when another process owns the exchange but has not
    said where it listens within ``join_wait`` seconds.
    """
    SimConfig = (await _sim_server_module(on_thread)).SimConfig  # noqa: N806 - the class, under its own name

    kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": 0}
    if seed is not None:
        kwargs["seed"] = seed
    if replay is not None:  # replay hook
        kwargs["replay"], persistent = replay, False
    if not persistent:
        sim = await _start_sim(SimConfig(**kwargs), on_thread, seed_new=False)
        return PracticeExchange(host="127.0.0.1", port=sim.port, owner=True, owner_pid=os.getpid(), sim=sim)

    from filelock import FileLock, Timeout  # imported by prefetch_exchange_code's worker when there was one

    state, lock_path, address_path = practice_files(profile)
    lock = FileLock(str(lock_path), thread_local=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + join_wait
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            address = _read_address(address_path)
            if address is not None:
                host, port, pid = address
                log.info("practice exchange of profile %r is owned by process %s: joining it on %s:%s",
                         profile, pid, host, port)
                return PracticeExchange(host=host, port=port, owner=False, owner_pid=pid, profile=profile)
            if loop.time() >= deadline:
                raise PracticeUnavailable(
                    f"Another IB Panel process runs the practice exchange of profile {profile!r} but has not said "
                    f"where it listens ({address_path}). Close the other IB Panel (or ibpanel serve) using this "
                    "profile and try again, or use another --profile."
                ) from None
            await asyncio.sleep(0.1)
    sim = None
    try:
        address_path.unlink(missing_ok=True)  # a crashed owner's address is not ours
        new_account = not state.exists()
        sim = await _start_sim(SimConfig(state_file=state, **kwargs), on_thread, seed_new=new_account)
        _write_address(address_path, "127.0.0.1", sim.port)
    except BaseException:
        try:
            if sim is not None:
                await _stop_sim(sim)
        finally:
            lock.release()
        raise
    log.info("practice exchange of profile %r owned by this process, on port %s", profile, sim.port)
    return PracticeExchange(host="127.0.0.1", port=sim.port, owner=True, owner_pid=os.getpid(), profile=profile,
                            sim=sim, _lock=lock, _address_path=address_path)
