"""The broker imports ib_async without loading numpy (start-up time and memory), and eventkit's numpy
operators still work when something uses them."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import ibpanel.broker.service
assert "numpy" not in sys.modules, "numpy was loaded by importing the broker"
import eventkit
event = eventkit.Event()
arrays = []
event.array(3).connect(arrays.append)
for value in (1, 2, 3, 4):
    event.emit(value)
import numpy
assert isinstance(arrays[-1], numpy.ndarray) and arrays[-1].tolist() == [2, 3, 4], arrays[-1]
print("ok")
"""


def test_broker_import_leaves_numpy_unloaded_until_an_eventkit_array_needs_it():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
