"""build.py's Linux slimming: the empty ICU data library it builds is one ICU accepts, and stripping
shrinks libraries but leaves numpy's alone (stripping its OpenBLAS breaks it)."""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _build_module():
    spec = importlib.util.spec_from_file_location("ibpanel_build", ROOT / "packaging" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_empty_icu_data_replaces_the_data_library_with_an_icu_package_header(tmp_path):
    build = _build_module()
    lib = tmp_path / "PySide6" / "Qt" / "lib"
    lib.mkdir(parents=True)
    data = lib / "libicudata.so.73"
    data.write_bytes(b"\x7fELF" + b"\0" * 3_000_000)  # stands in for the 31 MB original
    saved = build.stub_icu_data(tmp_path)
    assert saved > 2_900_000 and data.stat().st_size < 100_000
    header = bytes((ctypes.c_uint8 * 36).in_dll(ctypes.CDLL(str(data)), "icudt73_dat"))
    assert int.from_bytes(header[0:2], "little") == 32 and header[2:4] == b"\xda\x27"  # header size, ICU's magic
    assert int.from_bytes(header[4:6], "little") == 20  # the data info block that follows
    assert header[12:16] == b"ToCP" and header[16] == 1  # a table-of-contents package, format 1
    assert header[32:36] == b"\0\0\0\0"  # no entries: ICU answers "missing resource", Qt uses its own tables


def test_strip_shrinks_libraries_but_leaves_numpys_alone(tmp_path):
    build = _build_module()
    source = tmp_path / "thing.c"
    source.write_text("int thing(int x) { return x * 2; }\n", encoding="utf-8")
    built = tmp_path / "libthing.so"
    subprocess.run([shutil.which("cc"), "-shared", "-fPIC", "-g", "-o", str(built), str(source)], check=True)
    bundle = tmp_path / "bundle"
    numpy_copy, other_copy = bundle / "numpy.libs" / "libopenblas.so", bundle / "_internal" / "libthing.so.1"
    for copy in (numpy_copy, other_copy):
        copy.parent.mkdir(parents=True)
        shutil.copyfile(built, copy)
    saved = build.strip_libraries(bundle)
    assert numpy_copy.read_bytes() == built.read_bytes()
    assert 0 < saved == built.stat().st_size - other_copy.stat().st_size
    assert ctypes.CDLL(str(other_copy)).thing(21) == 42  # still loads and runs


def test_smoke_fails_on_an_error_the_frozen_panel_logged_though_it_exited_0():
    build = _build_module()
    ok = subprocess.CompletedProcess([], 0, stdout="IBPANEL SCREENSHOT x.png\n",
                                     stderr="INFO ibpanel.sim: practice exchange listening\n")
    build._fail_on_reported_errors(ok, "--demo --screenshot")  # nothing logged as an error: passes
    failed = subprocess.CompletedProcess([], 0, stdout="IBPANEL SCREENSHOT x.png\n",
                                         stderr="ERROR ibpanel.app: Unexpected error: No module named 'PySide6.QtOpenGL'\n")
    with pytest.raises(SystemExit, match="reported errors"):
        build._fail_on_reported_errors(failed, "--demo --screenshot")
