"""The methods ``dataclasses`` writes, compiled once and kept between starts, as Python keeps ``.pyc`` files.

For every dataclass, ``dataclasses`` writes ``__init__``, ``__repr__``, ``__eq__`` (more for frozen or ordered
classes) as Python source and compiles it with ``exec`` while the class is created. The panel, ib_async and
the practice exchange define some 150 dataclasses, so every start compiled ~560 small functions: ~50 ms of
the CPU a ``--demo`` start spends before its window is populated (bench/ui_cold_start.py).

``install`` gives ``dataclasses`` an ``exec`` that looks the source up in a cache first and runs the code
compiled from that very source; any other source is compiled as before and, at exit, added to the cache
file. The key is the whole source text, so a class that changed simply misses: the cache can make a start
faster, never different. The file lives beside the package's ``.pyc`` files and names the interpreter
(``sys.implementation.cache_tag``); it is written only where Python itself would write bytecode, and a file
that cannot be read, or was written by another Python, is ignored and replaced.

The frozen bundle installs a cache compiled at build time (packaging/dataclass_code.py,
packaging/rthooks/compiled_dataclass_code.py) and never writes one.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import marshal
import os
import sys
from types import CodeType
from typing import Any

#: Above this many sources (edits of the classes pile up stale ones) a rewrite keeps only this run's.
MAX_ENTRIES = 4000


def default_path() -> str | None:
    """Where the installed package keeps its cache, or None when Python keeps no bytecode beside it."""
    tag = sys.implementation.cache_tag
    if tag is None or sys.pycache_prefix is not None:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__", f"dataclass-code.{tag}.marshal")


def compile_method(source: str) -> CodeType:
    """What ``exec(source)`` compiles when ``dataclasses`` calls it: file ``<string>``, no ``__future__`` flags."""
    return compile(source, "<string>", "exec", dont_inherit=True)


def dumps(compiled: dict[str, CodeType]) -> bytes:
    """The cache file's bytes: the interpreter that compiled the code, then {source: code}."""
    return marshal.dumps((sys.version, compiled))


def loads(data: bytes) -> dict[str, CodeType]:
    """{source: code} from a cache file's bytes; empty when they are unreadable or from another interpreter."""
    try:
        version, compiled = marshal.loads(data)  # from bytes: marshal.load on a file object is ~10x slower
    except (ValueError, EOFError, TypeError):
        return {}
    if version != sys.version or not isinstance(compiled, dict):
        return {}
    return {source: code for source, code in compiled.items() if type(source) is str and type(code) is CodeType}


class MethodCache:
    """The ``exec`` given to ``dataclasses``: compiled code for a known source, a compile (remembered) otherwise."""

    def __init__(self, compiled: dict[str, CodeType]) -> None:
        self.compiled = compiled
        self.used: dict[str, CodeType] = {}
        self.missed = 0

    def __call__(self, source: Any, *args: Any, **kwargs: Any) -> Any:
        if type(source) is str:
            code = self.compiled.get(source)
            if code is None:
                code = self.compiled[source] = compile_method(source)
                self.missed += 1
            self.used[source] = code
            source = code
        return builtins.exec(source, *args, **kwargs)

    def contents_to_keep(self) -> dict[str, CodeType]:
        return self.compiled if len(self.compiled) <= MAX_ENTRIES else self.used


def install(path: str | None = None, *, keep: bool = True) -> MethodCache | None:
    """Give ``dataclasses`` the cached ``exec``; returns it, or None when one is installed already.

    ``path`` defaults to :func:`default_path`. With ``keep``, what this process compiled is written back at exit
    (atomically, so two panels starting at once cannot leave half a file), unless bytecode writing is off.
    """
    if isinstance(vars(dataclasses).get("exec"), MethodCache):
        return None
    path = path if path is not None else default_path()
    compiled: dict[str, CodeType] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                compiled = loads(handle.read())
        except OSError:
            pass
    cache = MethodCache(compiled)
    dataclasses.exec = cache  # a module global shadows the builtin for dataclasses' own calls
    if keep and path is not None and not sys.dont_write_bytecode:
        atexit.register(save, cache, path)
    return cache


def save(cache: MethodCache, path: str) -> bool:
    """Write the cache when this process compiled something it did not have; True when a file was written."""
    if not cache.missed:
        return False
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(dumps(dict(cache.contents_to_keep())))
        os.replace(temporary, path)
    except OSError:  # a read-only install: Python keeps no .pyc there either
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
    return True
