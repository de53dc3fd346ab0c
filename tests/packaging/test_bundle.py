"""The PyInstaller spec: it runs, it is sane, and it puts resources where the frozen app looks.

The spec is executed for real with PyInstaller's build objects replaced by recorders, so these
tests need neither PyInstaller nor minutes of building; CI's .ci/run builds and runs the bundle.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from ibpanel import __version__, paths

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "ibpanel.spec"
RESOURCES = ROOT / "resources"
# Qt modules the app needs at run time: excluding any of them breaks the bundle.
QT_NEEDED = ("QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtOpenGL", "QtOpenGLWidgets")


class Recorder:
    """Stands in for one of PyInstaller's spec classes and keeps its arguments."""

    made: list[Recorder] = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.pure, self.scripts, self.binaries = [], [], []
        self.datas = list(kwargs.get("datas", []))
        Recorder.made.append(self)


class VersionPart:
    """Stands in for a class of PyInstaller's Windows version-resource module."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.args!r}, {self.kwargs!r})"


def _kind(name: str) -> type:
    return type(name, (Recorder,), {})


def run_spec(platform: str) -> types.SimpleNamespace:
    """Run packaging/ibpanel.spec as if on ``platform``, with recorders instead of PyInstaller's classes."""
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package, **_: [package + ".cli"]
    stubs = {
        "PyInstaller": types.ModuleType("PyInstaller"),
        "PyInstaller.utils": types.ModuleType("PyInstaller.utils"),
        "PyInstaller.utils.hooks": hooks,
    }
    if platform == "win32":
        # The Windows version resource is built with PyInstaller's own (pure Python) classes.
        # The real module needs pywin32 / pefile; record the structure the spec builds instead.
        versioninfo = types.ModuleType("PyInstaller.utils.win32.versioninfo")
        for name in ("VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct",
                     "VarFileInfo", "VarStruct"):
            setattr(versioninfo, name, type(name, (VersionPart,), {}))
        stubs["PyInstaller.utils.win32"] = types.ModuleType("PyInstaller.utils.win32")
        stubs["PyInstaller.utils.win32"].versioninfo = versioninfo
        stubs["PyInstaller.utils.win32.versioninfo"] = versioninfo
    saved = {name: sys.modules.get(name) for name in stubs}
    saved_path, saved_platform = list(sys.path), sys.platform
    sys.modules.update(stubs)
    Recorder.made = []
    kinds = {name: _kind(name) for name in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    namespace = {"SPECPATH": str(SPEC.parent), "__file__": str(SPEC), **kinds}
    try:
        sys.platform = platform
        exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), namespace)
    finally:
        sys.platform = saved_platform
        sys.path[:] = saved_path
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    calls: dict[str, list[Recorder]] = {}
    for made in Recorder.made:
        calls.setdefault(type(made).__name__, []).append(made)
    return types.SimpleNamespace(calls=calls, namespace=namespace)


@pytest.fixture(scope="module")
def spec():
    return run_spec("linux")


def test_spec_builds_one_folder_windowed_panel_and_console_sim(spec):
    exes = {e.kwargs["name"]: e for e in spec.calls["EXE"]}
    assert set(exes) == {"ibpanel", "ibpanel-sim"}
    assert exes["ibpanel"].kwargs["console"] is False  # windowed: no terminal window on Windows / macOS
    assert exes["ibpanel-sim"].kwargs["console"] is True
    for exe in exes.values():
        assert exe.kwargs["exclude_binaries"] is True  # one-folder: binaries go to COLLECT
        assert exe.kwargs["strip"] is False  # --strip breaks numpy's OpenBLAS
        assert exe.kwargs["upx"] is False
    (collect,) = spec.calls["COLLECT"]
    assert collect.kwargs["name"] == "ibpanel" and collect.kwargs["strip"] is False
    assert spec.namespace["VERSION"] == __version__
    assert "BUNDLE" not in spec.calls  # only macOS wraps the folder in a .app


def test_spec_on_macos_makes_a_foreground_app_with_the_icns_icon():
    mac = run_spec("darwin")
    (bundle,) = mac.calls["BUNDLE"]
    assert bundle.kwargs["name"].endswith(".app") and bundle.kwargs["version"] == __version__
    assert bundle.args[0] is mac.calls["COLLECT"][0]
    plist = bundle.kwargs["info_plist"]
    assert plist["CFBundleShortVersionString"] == __version__
    # COLLECT inherits console=True from the sim; without this the panel would have no Dock icon.
    assert plist["LSBackgroundOnly"] is False
    assert Path(bundle.kwargs["icon"]).name == "ibpanel.icns" and Path(bundle.kwargs["icon"]).is_file()
    first_exe = mac.calls["COLLECT"][0].args[0]
    assert first_exe.kwargs["name"] == "ibpanel"  # BUNDLE's CFBundleExecutable is the first executable


def test_spec_on_windows_sets_the_ico_icon_and_a_version_resource():
    win = run_spec("win32")
    panel = next(e for e in win.calls["EXE"] if e.kwargs["name"] == "ibpanel")
    assert Path(panel.kwargs["icon"]).name == "ibpanel.ico" and Path(panel.kwargs["icon"]).is_file()
    resource = panel.kwargs["version"]
    assert type(resource).__name__ == "VSVersionInfo"
    text = repr(resource)
    assert f"('ProductVersion', '{__version__}')" in text and "('ProductName', 'IB Panel')" in text
    numbers = tuple(int(p) for p in __version__.split(".")) + (0,) * (4 - len(__version__.split(".")))
    assert resource.kwargs["ffi"].kwargs["filevers"] == numbers


def test_spec_excludes_unused_qt_but_keeps_what_the_panel_and_pyqtgraph_need(spec):
    excludes = set(spec.calls["Analysis"][0].kwargs["excludes"])
    for module in QT_NEEDED:
        assert f"PySide6.{module}" not in excludes, module
    for module in ("QtQml", "QtQuick", "QtWebEngineCore", "QtMultimedia", "QtDesigner", "QtSql"):
        assert f"PySide6.{module}" in excludes, module
    assert {"pytest", "hypothesis", "tkinter"} <= excludes


def test_app_modules_import_with_every_excluded_module_missing(spec):
    """What the bundle leaves out must not be imported by any ibpanel module (or what they import)."""
    excludes = sorted(spec.calls["Analysis"][0].kwargs["excludes"])
    code = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        excluded = set({excludes!r})
        class Block:
            def find_spec(self, name, path=None, target=None):
                if any(name == e or name.startswith(e + '.') for e in excluded):
                    raise ImportError('left out of the bundle: ' + name)
                return None
        sys.meta_path.insert(0, Block())
        import ibpanel
        names = [m.name for m in pkgutil.walk_packages(ibpanel.__path__, 'ibpanel.')
                 if not m.name.endswith('__main__')]  # importing those would start the app
        for name in names:
            importlib.import_module(name)
        import pyqtgraph, qasync  # the runtime libraries the spec also lists by name
        print('IMPORTED', len(names))
        """
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("IMPORTED")


def test_frozen_app_finds_every_resource_where_the_spec_puts_it(spec, tmp_path, monkeypatch):
    """Lay the spec's datas out like an unpacked bundle and look each file up as the frozen app does."""
    (analysis, *_), bundle = spec.calls["Analysis"], tmp_path / "_internal"
    datas = analysis.kwargs["datas"]
    sources = {Path(src) for src, _dest in datas}
    expected = {p for p in RESOURCES.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert sources == expected  # every data file under resources/ ships, nothing else
    for src, dest in datas:
        (bundle / dest).mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, bundle / dest)

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert paths.frozen_bundle_dir() == bundle
    for src in sources:
        relative = src.relative_to(RESOURCES).parts
        found = paths.resource_path(*relative)
        assert found.is_file(), relative
        assert found.read_bytes() == src.read_bytes()


def test_frozen_app_keeps_user_files_out_of_the_bundle(tmp_path, monkeypatch):
    """Settings, journal and logs go to the user's folders, never next to the (read-only) program."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setenv("IBPANEL_HOME", str(tmp_path / "home"))
    for folder in (paths.data_dir(), paths.config_dir(), paths.log_dir(), paths.log_dir("other")):
        assert folder.is_dir() and (tmp_path / "home") in folder.parents
    monkeypatch.delenv("IBPANEL_HOME")
    monkeypatch.setattr(paths.platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "platform-data"))
    assert paths.data_dir() == tmp_path / "platform-data"


def test_resource_lookup_unfrozen_comes_from_the_package():
    assert paths.frozen_bundle_dir() is None
    assert paths.resource_path("icons", "ibpanel-256.png").is_file()


def test_icons_are_valid_containers():
    icons = RESOURCES / "icons"
    png_signature = b"\x89PNG\r\n\x1a\n"
    ico = (icons / "ibpanel.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", ico)
    assert (reserved, kind) == (0, 1) and count >= 5
    for i in range(count):
        width, _h, _c, _r, _planes, _bits, size, offset = struct.unpack_from("<BBBBHHII", ico, 6 + 16 * i)
        assert ico[offset:offset + 8] == png_signature and offset + size <= len(ico)
    icns = (icons / "ibpanel.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack_from(">I", icns, 4)[0] == len(icns)
    position, kinds = 8, set()
    while position < len(icns):
        kind, length = icns[position:position + 4], struct.unpack_from(">I", icns, position + 4)[0]
        assert icns[position + 8:position + 16] == png_signature
        kinds.add(kind)
        position += length
    assert position == len(icns) and {b"ic07", b"ic08", b"ic09", b"ic10"} <= kinds
    for px in (16, 32, 256, 1024):
        assert (icons / f"ibpanel-{px}.png").read_bytes()[:8] == png_signature


def test_build_script_reports_the_bundle_it_finds(tmp_path):
    """build.py --skip-build on a fake bundle: prints path and size, fails clearly when it is missing."""
    build = ROOT / "packaging" / "build.py"
    missing = subprocess.run([sys.executable, str(build), "--skip-build", "--dist", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "no executable" in missing.stderr
    if sys.platform == "darwin":
        pytest.skip("macOS bundles are .app folders; this fake bundle has the Linux / Windows layout")
    bundle = tmp_path / "ibpanel"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / ("ibpanel.exe" if sys.platform == "win32" else "ibpanel")).write_bytes(b"x" * 1000)
    (bundle / "_internal" / "big.so").write_bytes(b"x" * 2_000_000)
    found = subprocess.run([sys.executable, str(build), "--skip-build", "--dist", str(tmp_path)],
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert f"bundle: {bundle}" in found.stdout
    assert "bundle size: 2.0 MB in 2 files" in found.stdout
    assert "_internal/big.so" in found.stdout.replace("\\", "/")


def test_qtgui_hook_leaves_out_the_gtk3_theme_but_keeps_the_other_plugins(spec, monkeypatch):
    hooks_dir = Path(spec.calls["Analysis"][0].kwargs["hookspath"][0])
    hook = hooks_dir / "hook-PySide6.QtGui.py"
    assert hook.is_file()
    collected = [
        ("/qt/plugins/platformthemes/libqgtk3.so", "PySide6/Qt/plugins/platformthemes"),
        ("/qt/plugins/platformthemes/libqxdgdesktopportal.so", "PySide6/Qt/plugins/platformthemes"),
        ("/qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms"),
        ("/qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms"),
    ]
    qt_hooks = types.ModuleType("PyInstaller.utils.hooks.qt")
    qt_hooks.add_qt6_dependencies = lambda hook_file: (["PySide6.QtCore"], list(collected), [])
    monkeypatch.setitem(sys.modules, "PyInstaller", types.ModuleType("PyInstaller"))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils", types.ModuleType("PyInstaller.utils"))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", types.ModuleType("PyInstaller.utils.hooks"))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks.qt", qt_hooks)
    namespace = {"__file__": str(hook)}
    exec(compile(hook.read_text(encoding="utf-8"), str(hook), "exec"), namespace)
    kept = [Path(src).name for src, _dest in namespace["binaries"]]
    assert kept == ["libqxdgdesktopportal.so", "libqxcb.so", "libqoffscreen.so"]
    assert namespace["hiddenimports"] == ["PySide6.QtCore"]
