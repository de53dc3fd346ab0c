"""House rules that keep the layers apart: broker/ and sim/ run without Qt; only broker/ imports ib_async."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

PKG = pathlib.Path(__file__).resolve().parents[2] / "app" / "ibpanel"


def _imported_modules(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_broker_imports_ib_async():
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if "ib_async" in _imported_modules(p) and p.relative_to(PKG).parts[0] != "broker"
    ]
    assert offenders == []


def test_broker_and_sim_import_without_qt():
    """Import every broker/ and sim/ module with PySide6, qasync and pyqtgraph made unimportable."""
    modules = sorted(
        "ibpanel." + ".".join(p.relative_to(PKG).with_suffix("").parts)
        for sub in ("broker", "sim")
        for p in (PKG / sub).rglob("*.py")
    )
    assert modules, "no broker/sim modules found"
    code = textwrap.dedent(
        f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'qasync', 'pyqtgraph', 'shiboken6'):
                    raise ImportError('Qt is blocked in this test: ' + name)
                return None
        sys.meta_path.insert(0, Block())
        for m in {modules!r}:
            importlib.import_module(m)
        assert not any(k.split('.')[0] in ('PySide6', 'qasync', 'pyqtgraph') for k in sys.modules)
        print('OK', len({modules!r}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK")


def test_no_module_starts_processes_through_multiprocessing():
    """The bundle leaves out PyInstaller's multiprocessing runtime hooks (packaging/ibpanel.spec), which child
    processes that re-run the executable would need: nothing here may start such a child."""
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if "multiprocessing" in _imported_modules(p) or "ProcessPoolExecutor" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []
