"""A small synchronous event: the broker's way to tell the UI and the API that something changed.

Handlers run on the asyncio loop thread, in subscription order. A handler that raises is
logged and reported through ``Event.on_handler_error`` (the app's one exception path);
the remaining handlers still run, so one failing view never stops event delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Event:
    """One named event. ``connect(fn)`` / ``disconnect(fn)`` / ``emit(*args)``."""

    #: Called as ``on_handler_error(event_name, exc)`` when a handler raises; the app installs its dialog here.
    on_handler_error: Callable[[str, BaseException], None] | None = None

    __slots__ = ("name", "_handlers")

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[Callable[..., Any]] = []

    def connect(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        if handler not in self._handlers:
            self._handlers.append(handler)
        return handler

    def disconnect(self, handler: Callable[..., Any]) -> None:
        try:
            self._handlers.remove(handler)
        except ValueError:
            pass

    def __len__(self) -> int:
        return len(self._handlers)

    def emit(self, *args: Any) -> None:
        for handler in list(self._handlers):
            try:
                handler(*args)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                log.exception("handler %r of event %s failed", handler, self.name)
                hook = Event.on_handler_error
                if hook is not None:
                    try:
                        hook(self.name, exc)
                    except Exception:  # noqa: BLE001
                        log.exception("error hook failed")
