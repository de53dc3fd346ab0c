"""Compile, at build time, the methods ``dataclasses`` writes for the panel's classes; the spec runs this.

    python packaging/dataclass_code.py OUT_FILE MODULE [MODULE ...]   # prints how many sources it recorded

For every dataclass, ``dataclasses`` writes ``__init__``, ``__repr__``, ``__eq__`` (and more for frozen or
ordered classes) as Python source and compiles it with ``exec`` as the class is created. The panel and
ib_async define well over a hundred dataclasses, so a start compiles some 600 small functions: about 0.1 s of
CPU, the largest single cost of the start that does not depend on what the panel does. This imports the given
modules with ``dataclasses``' ``exec`` recording each source with its compiled code, and writes the lot to
OUT_FILE (``marshal``, readable only by this same Python, which is the one PyInstaller bundles). The frozen
panel's runtime hook (rthooks/compiled_dataclass_code.py) hands ``exec`` the compiled code when it gets the
same source, and compiles anything else as before.

Runs in its own process: importing the panel's modules loads Qt, which the PyInstaller process has no need of.
"""

from __future__ import annotations

import builtins
import importlib
import marshal
import sys
from pathlib import Path
from types import CodeType


def record_dataclass_code(modules: list[str]) -> tuple[dict[str, CodeType], list[str]]:
    """Import ``modules``; returns {source: code} of every method dataclasses wrote, and the imports that failed."""
    import dataclasses

    compiled: dict[str, CodeType] = {}
    builtin_exec = builtins.exec

    def recording_exec(source, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - exec's own signature
        if type(source) is str:
            code = compiled.get(source)
            if code is None:
                # What exec(source) compiles: file "<string>", no __future__ flags (dataclasses has none).
                code = compiled[source] = compile(source, "<string>", "exec", dont_inherit=True)
            source = code
        return builtin_exec(source, *args, **kwargs)

    dataclasses.exec = recording_exec  # a module global shadows the builtin for the module's own calls
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
    return compiled, failed


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python packaging/dataclass_code.py OUT_FILE MODULE [MODULE ...]", file=sys.stderr)
        return 2
    compiled, failed = record_dataclass_code(argv[1:])
    Path(argv[0]).write_bytes(marshal.dumps(compiled))
    if failed:
        print("not imported: " + ", ".join(failed), file=sys.stderr)
    print(len(compiled))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
