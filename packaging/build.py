"""Build the IB Panel bundle with PyInstaller on Linux, Windows or macOS.

    python packaging/build.py             # dist/ibpanel/ (or dist/IB Panel.app on macOS)
    python packaging/build.py --smoke     # ... then run the frozen app's --smoke-test offscreen
    python packaging/build.py --archive   # ... and pack it: .tar.gz (Linux), .zip (Windows), .dmg (macOS)

Needs the build extra: pip install -e ".[build]". Prints the bundle path, its size and the biggest
parts; with --smoke, the smoke test's output and wall time. Exit status is non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "ibpanel.spec"
SMOKE_MARKER = "IBPANEL SMOKE OK"
SIZE_LIMIT_MB = 150
# An empty ICU common-data package (header, data info "ToCP" version 1, a table of contents with no entries),
# exported under ICU's entry-point name. Qt links ICU, but the panel uses nothing that needs ICU's 31 MB of
# data (collation, legacy codecs, IDNA): without it ICU answers "no data" and Qt falls back to its own tables.
ICU_STUB_C = """
#include <stdint.h>
struct empty_package {
    uint16_t header_size; uint8_t magic1, magic2;
    uint16_t info_size, info_reserved; uint8_t big_endian, charset_family, sizeof_uchar, info_reserved_byte;
    uint8_t data_format[4], format_version[4], data_version[4];
    uint8_t padding[8];
    uint32_t entry_count, reserved;
    uint32_t no_entries[4];
};
__attribute__((visibility("default"))) const struct empty_package ENTRY_POINT = {
    32, 0xda, 0x27,
    20, 0, 0, 0, 2, 0,
    {'T', 'o', 'C', 'P'}, {1, 0, 0, 0}, {0, 0, 0, 0},
    {0}, 0, 0, {0, 0, 0, 0},
};
"""
# auditwheel-patched libraries that break when stripped (numpy's OpenBLAS and its own extensions).
NO_STRIP_DIRS = ("numpy.libs", "numpy")


def package_version() -> str:
    sys.path.insert(0, str(ROOT / "app"))
    try:
        from ibpanel import __version__
    finally:
        sys.path.pop(0)
    return __version__


def bundle_path(dist: Path) -> Path:
    """The folder a user gets: the .app on macOS, the one-folder build elsewhere."""
    return dist / "IB Panel.app" if sys.platform == "darwin" else dist / "ibpanel"


def executable_path(dist: Path, name: str = "ibpanel") -> Path:
    if sys.platform == "darwin":
        return bundle_path(dist) / "Contents" / "MacOS" / name
    return bundle_path(dist) / (name + ".exe" if sys.platform == "win32" else name)


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under path, symlinks counted once as links (macOS bundles are full of them)."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            file = Path(dirpath, name)
            total += file.lstat().st_size
            files += 1
    return total, files


def biggest_parts(path: Path, count: int) -> list[tuple[int, str]]:
    """The largest files and folders two levels down, to show what dominates the size."""
    parts = []
    for level1 in path.iterdir():
        children = list(level1.iterdir()) if level1.is_dir() and not level1.is_symlink() else []
        for item in children or [level1]:
            size = tree_size(item)[0] if item.is_dir() and not item.is_symlink() else item.lstat().st_size
            parts.append((size, str(item.relative_to(path))))
    return sorted(parts, reverse=True)[:count]


def run_pyinstaller(dist: Path, work: Path, clean: bool, version: str) -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise SystemExit('build: PyInstaller is not installed; run: pip install -e ".[build]"') from None
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work)]
    if clean:
        cmd.append("--clean")
    cmd.append(str(SPEC))
    print("build:", " ".join(cmd), flush=True)
    # PYTHONNODEBUGRANGES: PyInstaller byte-compiles every module in its own process; without the column
    # ranges of each instruction (only tracebacks' ^^^ markers use them) the code is about a quarter smaller
    # compressed, so the bundle is smaller and the frozen start has less to inflate and unmarshal.
    env = dict(os.environ, IBPANEL_VERSION=version, PYTHONNODEBUGRANGES="1")
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"build: PyInstaller failed with exit status {result.returncode}")
    print(f"build: PyInstaller took {time.perf_counter() - started:.0f} s", flush=True)


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def stub_icu_data(bundle: Path) -> int:
    """Replace Qt's ICU data library with an empty package (Linux, needs a C compiler). Returns bytes saved."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    saved = 0
    for data in sorted(bundle.rglob("libicudata.so.*")):
        if data.is_symlink() or not _is_elf(data):
            continue
        major = data.name.split(".so.", 1)[1].split(".")[0]
        if not compiler:
            print(f"slim: kept {data.name} ({data.stat().st_size / 1e6:.0f} MB): no C compiler to build the empty one")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            source, built = Path(tmp, "icudata.c"), Path(tmp, data.name)
            source.write_text(ICU_STUB_C.replace("ENTRY_POINT", f"icudt{major}_dat"), encoding="utf-8")
            result = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-s", f"-Wl,-soname,{data.name}",
                                     "-o", str(built), str(source)], capture_output=True, text=True)
            if result.returncode != 0:
                print(f"slim: kept {data.name}: the empty ICU data did not build: {result.stderr.strip()[:300]}")
                continue
            before = data.stat().st_size
            shutil.copyfile(built, data)
            saved += before - data.stat().st_size
    if saved:
        print(f"slim: ICU data replaced by an empty package: {saved / 1e6:.1f} MB saved")
    return saved


def strip_libraries(bundle: Path) -> int:
    """strip --strip-unneeded every shared library but numpy's (Linux, binutils). Returns bytes saved."""
    strip = shutil.which("strip")
    if not strip:
        print("slim: no strip tool: libraries left as they are")
        return 0
    saved = count = 0
    for path in sorted(bundle.rglob("*.so*")):
        relative = path.relative_to(bundle).parts
        if path.is_symlink() or not path.is_file() or any(part in NO_STRIP_DIRS for part in relative) \
                or not (path.name.endswith(".so") or ".so." in path.name) or not _is_elf(path):
            continue
        before = path.stat().st_size
        if subprocess.run([strip, "--strip-unneeded", str(path)], capture_output=True).returncode == 0:
            saved += before - path.stat().st_size
            count += before != path.stat().st_size
    print(f"slim: stripped {count} libraries: {saved / 1e6:.1f} MB saved (numpy's left alone)")
    return saved


def slim_bundle(bundle: Path) -> None:
    """What PyInstaller cannot do safely itself: on Linux, strip debug symbols and drop ICU's data."""
    if not sys.platform.startswith("linux"):
        print(f"slim: nothing to do on {sys.platform}")
        return
    stub_icu_data(bundle)
    strip_libraries(bundle)


def _user_home_env(home: Path) -> dict[str, str]:
    """Run the frozen app as a user whose home is ``home``, so we can see where it writes.

    On Linux that is platformdirs' real lookup ($HOME, XDG folders unset); elsewhere the user
    folders come from the OS, so IBPANEL_HOME redirects them instead.
    """
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for name in ("IBPANEL_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env.pop(name, None)
    if sys.platform.startswith("linux"):
        env["HOME"] = str(home)
    else:
        env["IBPANEL_HOME"] = str(home)
    return env


def _run_frozen(args: list[str], env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    try:
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        print(out[-4000:])
        raise SystemExit(f"smoke: FAILED: {' '.join(args)} did not exit within {timeout:.0f} s") from None
    return result, time.perf_counter() - started


#: How an error logged by the panel starts on stderr (its reporter logs every exception it catches there): a
#: frozen run can still exit 0 and write its screenshot with, say, a module the bundle lacks (the chart's
#: pyqtgraph needs PySide6.QtOpenGL), so the smoke runs also fail on any such line.
LOGGED_ERROR = "ERROR "


def _fail_on_reported_errors(result: subprocess.CompletedProcess[str], what: str) -> None:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(LOGGED_ERROR)]
    if lines:
        sys.stderr.write("\n".join(lines[:10]) + "\n")
        raise SystemExit(f"smoke: FAILED: the frozen {what} run reported errors (above)")


def smoke_test(dist: Path, timeout: float) -> None:
    """Run the frozen app as a user would, offscreen; fail on anything unexpected.

    1. ``ibpanel --smoke-test``: must print the marker (with its start timings) and exit 0.
    2. ``ibpanel --demo --screenshot``: must write a PNG.
    3. ``ibpanel-sim --help``: the practice exchange program starts.
    Settings and logs must land in the user's folders and nothing is written into the bundle. Headless
    runs keep their order journals in a throwaway folder, so none may appear in the user's folders;
    ``ibpanel journal export`` shows where a real session's journal lives, which must be the user's data folder.
    """
    exe = executable_path(dist)
    bundle = bundle_path(dist)
    files_before = tree_size(bundle)[1]
    with tempfile.TemporaryDirectory(prefix="ibpanel-smoke-") as tmp:
        home = Path(tmp)
        env = _user_home_env(home)
        print(f"smoke: {exe} --smoke-test", flush=True)
        result, wall = _run_frozen([str(exe), "--smoke-test"], env, timeout)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr[-4000:])
        print(f"smoke: exit status {result.returncode}, wall time {wall:.2f} s (process start to exit)", flush=True)
        if result.returncode != 0 or SMOKE_MARKER not in result.stdout:
            raise SystemExit(f"smoke: FAILED: expected exit 0 and {SMOKE_MARKER!r} on stdout")
        _fail_on_reported_errors(result, "--smoke-test")

        shot = home / "screenshot-quotes.png"
        result, wall = _run_frozen([str(exe), "--demo", "--screenshot", str(shot), "--tab", "quotes"], env, timeout)
        size = shot.stat().st_size if shot.exists() else 0
        print(f"smoke: --demo --screenshot: exit status {result.returncode}, {size} bytes, {wall:.2f} s", flush=True)
        if result.returncode != 0 or size < 10_000:
            sys.stderr.write(result.stdout[-2000:] + result.stderr[-4000:])
            raise SystemExit("smoke: FAILED: the frozen app did not write its screenshot")
        _fail_on_reported_errors(result, "--demo --screenshot")

        sim = executable_path(dist, "ibpanel-sim")
        result, _wall = _run_frozen([str(sim), "--help"], env, 60)
        if result.returncode != 0 or "ibpanel-sim" not in result.stdout:
            sys.stderr.write(result.stdout[-2000:] + result.stderr[-2000:])
            raise SystemExit("smoke: FAILED: ibpanel-sim --help")

        written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p != shot)
        print("smoke: user files written: " + ", ".join(written), flush=True)
        for wanted in ("settings.ini", "ibpanel.log"):
            if not any(Path(name).name == wanted for name in written):
                raise SystemExit(f"smoke: FAILED: no {wanted} in the user's folders")
        if any(name.endswith(".sqlite3") for name in written):
            raise SystemExit("smoke: FAILED: a headless run wrote an order journal into the user's folders")

        result, _wall = _run_frozen([str(exe), "journal", "export", str(home / "journal.csv")], env, 60)
        where = result.stdout + result.stderr
        print(f"smoke: journal export: {where.strip()[:300]}", flush=True)
        if str(home) not in where or "journal.sqlite3" not in where or str(bundle) in where:
            raise SystemExit("smoke: FAILED: the frozen app does not keep its order journal in the user's data folder")
    if tree_size(bundle)[1] != files_before:
        raise SystemExit("smoke: FAILED: the app wrote files into its own bundle")
    print("smoke: passed", flush=True)


def make_archive(dist: Path, version: str) -> Path:
    """Pack the bundle for distribution; returns the archive path."""
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    stem = f"ibpanel-{version}-{system}-{platform.machine().lower()}"
    bundle = bundle_path(dist)
    if sys.platform == "darwin" and shutil.which("hdiutil"):
        target = dist / f"{stem}.dmg"
        target.unlink(missing_ok=True)
        subprocess.run(["hdiutil", "create", "-volname", "IB Panel", "-srcfolder", str(bundle),
                        "-ov", "-format", "UDZO", str(target)], check=True)
    elif sys.platform in ("win32", "darwin"):
        target = dist / f"{stem}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(bundle.rglob("*")):
                if file.is_file():
                    archive.write(file, Path(bundle.name) / file.relative_to(bundle))
    else:
        target = dist / f"{stem}.tar.gz"
        with tarfile.open(target, "w:gz") as archive:
            archive.add(bundle, arcname=bundle.name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder")
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    parser.add_argument("--skip-build", action="store_true", help="reuse the existing bundle (report / smoke / archive only)")
    parser.add_argument("--smoke", action="store_true", help="run the frozen app's --smoke-test offscreen after building")
    parser.add_argument("--smoke-timeout", type=float, default=120.0, help="seconds before the smoke test counts as hung")
    parser.add_argument("--archive", action="store_true", help="pack the bundle (.tar.gz / .zip / .dmg)")
    parser.add_argument("--top", type=int, default=8, help="how many of the biggest parts to list")
    parser.add_argument("--max-mb", type=float, default=None, help="fail if the bundle is larger (CI: 150)")
    parser.add_argument("--no-slim", action="store_true", help="keep ICU data and unstripped libraries (Linux)")
    args = parser.parse_args(argv)

    version = package_version()
    dist = args.dist.resolve()
    print(f"build: ibpanel {version} on {sys.platform} ({platform.machine()}), Python {platform.python_version()}")
    if not args.skip_build:
        run_pyinstaller(dist, args.work.resolve(), args.clean, version)
        if not args.no_slim:
            slim_bundle(bundle_path(dist))
    bundle = bundle_path(dist)
    if not executable_path(dist).exists():
        raise SystemExit(f"build: no executable at {executable_path(dist)}")
    size, files = tree_size(bundle)
    print(f"bundle: {bundle}")
    print(f"bundle size: {size / 1e6:.1f} MB in {files} files (limit {SIZE_LIMIT_MB} MB)")
    for part_size, name in biggest_parts(bundle, args.top):
        print(f"  {part_size / 1e6:8.1f} MB  {name}")
    if args.max_mb is not None and size > args.max_mb * 1e6:
        raise SystemExit(f"bundle: FAILED: {size / 1e6:.1f} MB is over the {args.max_mb:.0f} MB limit")
    if size > SIZE_LIMIT_MB * 1e6:
        print(f"bundle: WARNING: larger than {SIZE_LIMIT_MB} MB", flush=True)
    if args.smoke:
        smoke_test(dist, args.smoke_timeout)
    if args.archive:
        target = make_archive(dist, version)
        print(f"archive: {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
