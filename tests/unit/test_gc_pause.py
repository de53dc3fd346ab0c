"""The collector is paused for the start and comes back on by itself, with the start's objects frozen."""

from __future__ import annotations

import gc

from ibpanel.gc_pause import pause_collector_during_start


def test_collector_paused_then_resumed_with_the_start_frozen():
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    try:
        timer = pause_collector_during_start(0.5)
        assert timer is not None and not gc.isenabled()
        assert pause_collector_during_start(0.5) is None  # already off: left to whoever turned it off
        assert timer.daemon  # never holds up a program that is done sooner
        timer.join(5)
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()
        gc.enable()
