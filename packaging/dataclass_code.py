"""Compile, at build time, the methods ``dataclasses`` writes for the panel's classes; the spec runs this.

    python packaging/dataclass_code.py OUT_FILE MODULE [MODULE ...]   # prints how many sources it recorded

The panel keeps these compiled methods between starts (``ibpanel.dataclass_cache``, which says why); a
bundle cannot write beside its own files, so the build imports the given modules with the cache's ``exec``
recording every source with its compiled code, and writes the lot to OUT_FILE in the cache's format
(``marshal``, readable only by this same Python, which is the one PyInstaller bundles). The frozen panel's
runtime hook (rthooks/compiled_dataclass_code.py) installs it read-only.

Runs in its own process: importing the panel's modules loads Qt, which the PyInstaller process has no need of.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path
from types import CodeType

from ibpanel.dataclass_cache import MethodCache, dumps


def record_dataclass_code(modules: list[str]) -> tuple[dict[str, CodeType], list[str]]:
    """Import ``modules``; returns {source: code} of every method dataclasses wrote, and the imports that failed."""
    recorder = MethodCache({})
    dataclasses.exec = recorder  # a module global shadows the builtin for the module's own calls
    failed = []
    try:
        for name in modules:
            if name.endswith(".__main__"):
                continue  # runs the program
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - a module that cannot import here only loses its entries
                failed.append(f"{name} ({exc.__class__.__name__})")
    finally:
        del dataclasses.exec
    return recorder.compiled, failed


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python packaging/dataclass_code.py OUT_FILE MODULE [MODULE ...]", file=sys.stderr)
        return 2
    compiled, failed = record_dataclass_code(argv[1:])
    Path(argv[0]).write_bytes(dumps(compiled))
    if failed:
        print("not imported: " + ", ".join(failed), file=sys.stderr)
    print(len(compiled))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
