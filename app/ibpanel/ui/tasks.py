"""``TaskSet``: the background coroutines a widget started, cancelled together when it shuts down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    """Background coroutines a tab started; ``cancel()`` on shutdown so nothing outlives the widget.

    A failing task is logged (and reported via ``on_error``) instead of vanishing silently.
    """

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._tasks: set[Any] = set()
        self._on_error = on_error
        self._closed = False

    def spawn(self, coro) -> Any:
        """Start ``coro`` as a task; after ``cancel()`` (the tab shut down) nothing new starts: returns None."""
        if self._closed:
            coro.close()  # e.g. a focus-out signal while the widget is being torn down
            return None
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("UI task failed", exc_info=exc)
            if self._on_error is not None:
                self._on_error(exc)

    def __len__(self) -> int:
        return len(self._tasks)

    def cancel(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
