"""Runtime hook of the frozen ``ibpanel``: Python's cyclic garbage collector stays off while the panel starts.

PyInstaller runs this before its own runtime hooks and the launcher. The start (Qt, ib_async and the panel
imported, the window built, the practice exchange connected) makes some 60,000 objects that live until the
panel exits, and hardly any cyclic garbage (about a thousand objects by ten seconds in). With the collector
on, it walks the young objects again and again while they are being made: about a tenth of the start's CPU.

A daemon timer turns the collector back on START_S seconds in, first freezing what exists then
(``gc.freeze``: later collections never walk those long-lived objects again, so a full collection in a long
session is cheaper too; the little garbage the start made is kept, not collected). A program that is done
sooner (``--version``, ``--smoke-test``, a CLI command) just exits; the daemon timer never holds it up.
"""

import gc
import threading

START_S = 10.0


def _resume_gc() -> None:
    gc.freeze()
    gc.enable()


gc.disable()
_timer = threading.Timer(START_S, _resume_gc)
_timer.daemon = True
_timer.start()
