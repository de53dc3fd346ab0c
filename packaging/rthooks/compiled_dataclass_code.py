"""Runtime hook of the frozen ``ibpanel``: dataclasses reuse the methods compiled when the bundle was built.

``dataclasses`` writes each class's ``__init__``, ``__repr__``, ``__eq__`` ... as source and compiles it with
``exec`` while the class is created: some 600 functions at every start of the panel, about 0.1 s of CPU. The
build recorded those sources with their compiled code (packaging/dataclass_code.py); here ``dataclasses``'
``exec`` gets the compiled code for a source it has, the very code ``exec`` would have compiled from it, and
compiles any other source as before. Without the file (or on any error reading it) nothing changes.
"""

import builtins
import dataclasses
import marshal
import os
import sys


def _install() -> None:
    try:
        with open(os.path.join(sys._MEIPASS, "frozen_start", "dataclass_code.marshal"), "rb") as handle:
            compiled = marshal.load(handle)
    except (OSError, ValueError, EOFError, TypeError):
        return
    if not isinstance(compiled, dict):
        return
    builtin_exec = builtins.exec

    def exec_compiled(source, *args, **kwargs):
        if type(source) is str:
            source = compiled.get(source, source)
        return builtin_exec(source, *args, **kwargs)

    dataclasses.exec = exec_compiled  # a module global shadows the builtin for dataclasses' own calls


_install()
del _install
