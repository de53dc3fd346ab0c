"""Import eventkit (ib_async's event library) without loading numpy at start.

eventkit's ``ops/array.py`` imports numpy when eventkit is imported, for its ``Event.array()``
operators, which neither ib_async nor the panel use. numpy (with OpenBLAS) is about a tenth of a
second of every start and ~15 MB of memory. ``import_eventkit()`` imports eventkit with a stand-in
for numpy in ``sys.modules`` and takes it out again at once: eventkit keeps the stand-in, which
imports the real numpy (an ordinary, thread-safe import) the first time an attribute is asked of it.
Every other ``import numpy`` (charts, the practice exchange's history) is the real one, as before.

Called from ``ibpanel/broker/__init__.py``, so it runs before anything imports ib_async.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class NumpyOnFirstUse(types.ModuleType):
    """Stands in for numpy in eventkit.ops.array; the first attribute asked imports numpy itself."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or sys.modules.get("numpy") is self:
            # Introspection (import hooks, inspect) loads nothing, nor does anything asked while
            # eventkit is being imported (the real numpy cannot be imported while this stands in).
            raise AttributeError(name)
        return getattr(importlib.import_module("numpy"), name)


def import_eventkit() -> None:
    """Import eventkit with numpy deferred; nothing to do when either is already imported."""
    if "eventkit" in sys.modules or "numpy" in sys.modules:
        return
    stand_in = NumpyOnFirstUse("numpy")
    sys.modules["numpy"] = stand_in
    try:
        importlib.import_module("eventkit")
    finally:
        if sys.modules.get("numpy") is stand_in:
            del sys.modules["numpy"]
