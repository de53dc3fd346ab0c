"""One trading session, without Qt: broker and journal, optional practice exchange, optional REST API.

The window (ui/app.py), ``ibpanel serve`` (runtime/serve.py), the smoke test and screenshots
(ui/headless.py) all start and stop a session here, so "how does a practice session start?" has
one answer. ``close()`` stops everything in order: the REST API, the broker (polite disconnect,
journal closed), the practice exchange, then a headless run's scratch journals.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from ibpanel.broker.journal import default_journal_path
from ibpanel.broker.service import Broker
from ibpanel.runtime.practice import PracticeExchange, PracticeUnavailable, start_practice
from ibpanel.runtime.rest_api import RestApi
from ibpanel.safety import load_safety_limits

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite3"
PRACTICE_JOURNAL_FILE = "journal-practice.sqlite3"
STEP_TIMEOUT = 10.0  # seconds each shutdown step may take

__all__ = ["PracticeUnavailable", "Session"]


class Session:
    """A profile's session: ``broker``, ``practice`` (once started) and ``api`` (a RestApi, off until asked).

    ``broker_options``: the safety limits (``max_order_value``, ``fat_finger_pct``, ``limits_source``);
    None reads the profile's ``[safety]`` settings (``ibpanel.safety``), so a session never runs without them.
    ``scratch_journals``: headless runs (screenshots, the smoke test) keep their journals in a
    temporary folder removed at ``close()``, never in the profile: sample orders there would turn
    "Unknown" at the next launch's reconcile.
    """

    def __init__(self, profile: str, *, broker_options: dict[str, Any] | None = None,
                 scratch_journals: bool = False) -> None:
        self.profile = profile
        self.scratch_journals = scratch_journals
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if broker_options is None:
            broker_options = load_safety_limits(profile).broker_options()
        self.broker = Broker(**self._journal_paths(), **broker_options)
        self.practice: PracticeExchange | None = None
        self.api = RestApi(self.broker, practice=self.practice_address)
        self._closed = False

    def _journal_paths(self) -> dict[str, Path]:
        if not self.scratch_journals:
            return {"journal_path": default_journal_path(self.profile)}
        self._scratch = tempfile.TemporaryDirectory(prefix="ibpanel-headless-", ignore_cleanup_errors=True)
        scratch = Path(self._scratch.name)
        log.info("headless run: order journals in %s (removed at exit)", scratch)
        return {"journal_path": scratch / JOURNAL_FILE, "practice_journal_path": scratch / PRACTICE_JOURNAL_FILE}

    # --- practice exchange -----------------------------------------------------------------
    async def start_practice(self, *, seed: int | None = None, persistent: bool = True,
                             on_thread: bool = False, replay: Any = None) -> PracticeExchange:
        """The profile's practice exchange: started (owned) or joined once per session; later calls return it.

        Raises PracticeUnavailable when another process owns it without saying where it listens.
        See ``runtime.practice.start_practice`` for ``persistent``, ``on_thread`` and ``replay`` (a recorded day).
        """
        if self.practice is None:
            self.practice = await start_practice(self.profile, seed=seed, persistent=persistent, on_thread=on_thread,
                                                 replay=replay)
            log.info("using the %s", self.practice.describe())
        return self.practice

    def practice_address(self) -> tuple[str, int] | None:
        """(host, port) of the session's practice exchange, or None without one (the API's /connect uses it)."""
        practice = self.practice
        return (practice.host, practice.port) if practice is not None else None

    async def stop_practice(self) -> None:
        if self.practice is not None:
            practice, self.practice = self.practice, None
            await practice.stop()  # joined: the owner's exchange runs on

    # --- shutdown --------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop the API, the broker, the practice exchange, in that order; every step runs (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for what, step in (("REST API", self.api.stop), ("broker", self.broker.close),
                           ("practice exchange", self.stop_practice), ("headless journals", self._remove_scratch)):
            try:
                result = step()
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await asyncio.wait_for(result, timeout=STEP_TIMEOUT)
            except Exception:  # noqa: BLE001 - keep going: the journal must still be closed
                log.exception("shutdown: %s failed", what)

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            scratch, self._scratch = self._scratch, None
            scratch.cleanup()
