"""Python's cyclic garbage collector paused while the panel starts, then what the start built is frozen.

The start (Qt, ib_async and the panel imported, the window built, the first connection read) makes tens of
thousands of objects that live as long as the process, and hardly any cyclic garbage. With the collector on,
every 700 allocations it walks the young objects again while they are still being made: about 7% of the
CPU a ``--demo`` start spends up to a populated window (bench/ui_cold_start.py; alternated runs).

After ``seconds`` a daemon timer freezes what exists (``gc.freeze``: later collections never walk those
long-lived objects again, which also makes a full collection in a long session cheaper) and turns the
collector back on. A program done sooner (``--version``, ``--smoke-test``, a CLI command) simply exits.
"""

from __future__ import annotations

import gc
import threading

#: How long the collector stays off: the start, with room for a slow machine.
START_S = 10.0


def pause_collector_during_start(seconds: float = START_S) -> threading.Timer | None:
    """Pause the collector for ``seconds`` and return the timer that resumes it; None (nothing done) when the
    collector is already off (someone else manages it)."""
    if not gc.isenabled():
        return None
    gc.disable()
    timer = threading.Timer(seconds, _resume)
    timer.name = "gc-resume"
    timer.daemon = True
    timer.start()
    return timer


def _resume() -> None:
    gc.freeze()
    gc.enable()
