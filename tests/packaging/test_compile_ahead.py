"""What the bundle compiles ahead for a faster frozen start: shibokensupport and the dataclass methods.

The spec runs packaging/shiboken_support.py and packaging/dataclass_code.py at build time; these tests run
them for real on a small scale and check that the frozen app's loaders use what they wrote.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import importlib.util
import runpy
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from types import CodeType

from ibpanel import dataclass_cache

ROOT = Path(__file__).resolve().parents[2]


def _packaging_script(name: str) -> types.ModuleType:
    """Load packaging/<name>.py as a module (packaging/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"packaging_{name}", ROOT / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dataclass_code = _packaging_script("dataclass_code")
shiboken_support = _packaging_script("shiboken_support")

RTHOOK = ROOT / "packaging" / "rthooks" / "compiled_dataclass_code.py"

QUOTE_MODULE = textwrap.dedent('''
    from dataclasses import dataclass, field

    @dataclass(frozen=True, order=True)
    class Quote:
        symbol: str
        bid: float = 0.0
        tags: tuple = field(default_factory=tuple)
''')


def test_shiboken_imports_its_signature_package_from_the_compiled_files_dir(tmp_path):
    import shiboken6

    site = tmp_path / "site"
    shutil.copytree(Path(shiboken6.__file__).parent, site / "shiboken6", ignore=shutil.ignore_patterns("__pycache__"))
    count = shiboken_support.write_compiled_support(site / "shiboken6" / "files.dir")
    assert count >= 10
    assert (site / "shiboken6" / "files.dir" / "shibokensupport" / "signature" / "loader.pyc").is_file()
    assert not list((site / "shiboken6" / "files.dir").rglob("*.py"))  # compiled only, as in the bundle

    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import PySide6.QtCore\n"
             "print(sys.modules['shibokensupport.signature.loader'].__file__)\n"
             "try: PySide6.QtCore.QPoint().setX('a')\n"
             "except TypeError as exc: print(str(exc).replace(chr(10), ' '))")
    result = subprocess.run([sys.executable, "-B", "-c", probe, str(site)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loader_file, signature = result.stdout.splitlines()[:2]
    assert Path(loader_file).is_relative_to(site / "shiboken6" / "files.dir")
    assert "Supported signatures:" in signature and "setX(x: int" in signature  # shiboken's error handler works


def test_dataclass_methods_compiled_at_build_time_are_the_ones_the_frozen_app_runs(tmp_path, monkeypatch):
    (tmp_path / "quote_at_build.py").write_text(QUOTE_MODULE, encoding="utf-8")
    (tmp_path / "quote_at_start.py").write_text(QUOTE_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    compiled, failed = dataclass_code.record_dataclass_code(["quote_at_build", "no_such_module_here"])
    assert failed == ["no_such_module_here (ModuleNotFoundError)"]
    assert len(compiled) >= 4  # __init__, __repr__, __eq__, the order methods, __hash__ ...
    assert "exec" not in vars(dataclasses)  # the recorder leaves dataclasses as it found it

    (tmp_path / "frozen_start").mkdir()
    (tmp_path / "frozen_start" / "dataclass_code.marshal").write_bytes(dataclass_cache.dumps(compiled))
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(dataclasses, "exec", builtins.exec, raising=False)  # undone (removed) after the test
    runpy.run_path(str(RTHOOK))
    quote = importlib.import_module("quote_at_start").Quote

    assert isinstance(dataclasses.exec, dataclass_cache.MethodCache)
    loaded = dict(dataclasses.exec.compiled)
    assert loaded.keys() == compiled.keys()  # what the hook read from the bundle's file
    built_ahead = [const for code in loaded.values() for maker in code.co_consts if isinstance(maker, CodeType)
                   for const in maker.co_consts if isinstance(const, CodeType)]

    def compiled_ahead(function) -> bool:  # noqa: ANN001 - the very code object, not an equal one compiled again
        return any(code is function.__code__ for code in built_ahead)

    assert compiled_ahead(quote.__init__) and compiled_ahead(quote.__eq__) and compiled_ahead(quote.__lt__)
    reference = importlib.import_module("quote_at_build").Quote
    assert repr(quote("AAPL", 1.5)) == repr(reference("AAPL", 1.5))
    assert quote("AAPL", 1.5) == quote("AAPL", 1.5) and quote("AAPL", 1.0) < quote("AAPL", 1.5)
    assert hash(quote("MSFT")) == hash(quote("MSFT")) and quote("MSFT").tags == ()

    @dataclasses.dataclass
    class NotRecorded:  # a source the build never saw is compiled as before
        size: int = 7

    assert NotRecorded().size == 7 and not compiled_ahead(NotRecorded.__init__)
