"""The dataclass methods compiled at one start are the ones the next start runs; a changed class still works.

Each start is a real interpreter (``python -c``) with the cache installed as ``ibpanel.cli`` installs it, on
a cache file in the test's folder.
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ibpanel import dataclass_cache

START = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[2])
    from ibpanel import dataclass_cache
    cache = dataclass_cache.install(sys.argv[1])
    from quote_module import Quote
    q = Quote("AAPL", 1.5)
    print(json.dumps({
        "missed": cache.missed, "used": len(cache.used), "repr": repr(q), "default": Quote("MSFT").bid,
        "eq": q == Quote("AAPL", 1.5), "lt": Quote("AAPL", 1.0) < q, "hash": hash(q) == hash(Quote("AAPL", 1.5)),
        "again": dataclass_cache.install(sys.argv[1]) is None,
    }))
''')


def _quote_module(folder: Path, default: str = "0.0", extra: str = "") -> None:
    folder.mkdir(exist_ok=True)
    (folder / "quote_module.py").write_text(textwrap.dedent(f'''
        from dataclasses import dataclass, field

        @dataclass(frozen=True, order=True)
        class Quote:
            symbol: str
            bid: float = {default}
            tags: tuple = field(default_factory=tuple)
            {extra}
    '''), encoding="utf-8")


def _start(cache_file: Path, modules: Path, *flags: str) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the panel writes its cache where Python writes bytecode
    result = subprocess.run([sys.executable, *flags, "-c", START, str(cache_file), str(modules)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_second_start_runs_the_methods_compiled_by_the_first(tmp_path):
    _quote_module(tmp_path / "modules")
    cache_file = tmp_path / "cache" / "dataclass-code.marshal"
    first = _start(cache_file, tmp_path / "modules")
    assert first["missed"] >= 5 and cache_file.is_file()  # __init__, __repr__, __eq__, order, frozen setattr
    second = _start(cache_file, tmp_path / "modules")
    assert second["missed"] == 0 and second["used"] == first["used"]
    assert second["repr"] == first["repr"] == "Quote(symbol='AAPL', bid=1.5, tags=())"
    assert second["eq"] and second["lt"] and second["hash"] and second["default"] == 0.0
    assert second["again"]  # installed once: a second install changes nothing


def test_a_changed_class_is_compiled_as_now_written_and_added_to_the_cache(tmp_path):
    _quote_module(tmp_path / "modules")
    cache_file = tmp_path / "dataclass-code.marshal"
    _start(cache_file, tmp_path / "modules")
    before = dataclass_cache.loads(cache_file.read_bytes())
    _quote_module(tmp_path / "modules", default="9.25")  # defaults are bound at class creation, not in the source
    new_default = _start(cache_file, tmp_path / "modules")
    assert new_default["default"] == 9.25 and new_default["missed"] == 0
    _quote_module(tmp_path / "modules", default="9.25", extra='venue: str = "SMART"')
    new_field = _start(cache_file, tmp_path / "modules")
    assert new_field["missed"] >= 1 and new_field["repr"] == "Quote(symbol='AAPL', bid=1.5, tags=(), venue='SMART')"
    after = dataclass_cache.loads(cache_file.read_bytes())
    assert before.keys() < after.keys()


def test_an_unreadable_or_foreign_file_is_ignored_then_replaced(tmp_path):
    _quote_module(tmp_path / "modules")
    cache_file = tmp_path / "dataclass-code.marshal"
    for contents in (b"not marshal at all", marshal.dumps(("2.7.18 (other python)", {"x": 1})), b""):
        cache_file.write_bytes(contents)
        start = _start(cache_file, tmp_path / "modules")
        assert start["missed"] >= 5 and start["repr"] == "Quote(symbol='AAPL', bid=1.5, tags=())"
        assert dataclass_cache.loads(cache_file.read_bytes())  # replaced by a readable one


def test_nothing_is_written_where_python_writes_no_bytecode(tmp_path):
    _quote_module(tmp_path / "modules")
    cache_file = tmp_path / "dataclass-code.marshal"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-c", START, str(cache_file), str(tmp_path / "modules")],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["missed"] >= 5
    assert not cache_file.exists()


def test_a_read_only_folder_leaves_the_start_as_it_was(tmp_path):
    cache = dataclass_cache.MethodCache({})
    namespace: dict = {}
    cache("def f(x):\n return x + 1\n", {}, namespace)
    assert namespace["f"](1) == 2 and cache.missed == 1
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("", encoding="utf-8")
    assert not dataclass_cache.save(cache, str(blocked / "dataclass-code.marshal"))
    assert list(tmp_path.iterdir()) == [blocked]  # no temporary file left behind
