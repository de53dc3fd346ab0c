"""The local REST API of a session, started and stopped here, never by a widget.

The Connection tab's "Local REST API" group, ``ibpanel --api`` and ``ibpanel serve`` all ask a
``RestApi`` to serve; it owns the running ``ApiHandle``. aiohttp (through ``ibpanel.api``) is
imported only when the API starts, so a panel that never serves does not load it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ibpanel.api.server import DEFAULT_PORT, MIN_TOKEN_LENGTH, TOKEN_ENV  # constants only: no aiohttp yet

if TYPE_CHECKING:
    from ibpanel.api.server import ApiHandle
    from ibpanel.broker.service import Broker

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "MIN_TOKEN_LENGTH", "TOKEN_ENV", "ApiRefused", "RestApi"]


class ApiRefused(ValueError):
    """The API was asked to serve in an unsafe or impossible way; the message says how to fix it."""


class RestApi:
    """Serve /api/ibkr for one broker on the running loop, or not. One start / stop at a time.

    ``practice``: where /connect to the paper port goes in a practice session (a callable giving
    ``(host, port)`` or None); the session sets it.
    """

    def __init__(self, broker: Broker, *, practice: Callable[[], tuple[str, int] | None] | None = None) -> None:
        self.broker = broker
        self.practice = practice
        self.handle: ApiHandle | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def running(self) -> bool:
        return self.handle is not None

    def _guard(self) -> asyncio.Lock:
        # A quick on-off-on must not bind twice.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def start(
        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None, *, readonly: Any = None
    ) -> ApiHandle:
        """Serve at ``host:port``; the running handle when already serving.

        Raises ApiRefused (an unsafe address or token) or OSError (a busy port, with a plain message).
        ``readonly``: True, or a callable giving why the API's connections must be read-only (or None).
        """
        async with self._guard():
            if self.handle is not None:
                return self.handle
            from ibpanel.api.security import ApiConfigError
            from ibpanel.api.server import start_api

            try:
                self.handle = await start_api(self.broker, host=host, port=port, token=token,
                                              practice=self.practice, readonly=readonly)
            except ApiConfigError as exc:
                raise ApiRefused(str(exc)) from exc
            return self.handle

    async def stop(self) -> None:
        """Stop serving (idempotent): the port closes; requests in flight finish."""
        async with self._guard():
            handle, self.handle = self.handle, None
            if handle is not None:
                await handle.close()
                log.info("REST API stopped")
