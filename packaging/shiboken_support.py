"""Byte-compile shiboken6's signature package (shibokensupport) for the bundle; the spec runs this at build time.

    python packaging/shiboken_support.py OUT_DIR    # writes OUT_DIR/shibokensupport/**.pyc, prints their count

Every process that imports PySide6 loads ``shibokensupport`` (the signature loader behind PySide6's type
signatures and error messages). libshiboken6 carries it as Python *source* in an embedded zip and compiles it
on every start: about 120 KB of source, a noticeable part of a PySide6 import. Its bootstrap first looks for a
``files.dir`` folder beside ``shiboken6/__init__`` (what ``SBK_EMBED=0`` unpacks for debugging) and imports the
package from there when it exists. The spec places this script's output at ``shiboken6/files.dir`` in the
bundle, as .pyc files compiled by the bundle's own Python, so the frozen app skips the decode and the compile.
The files come from the installed libshiboken6 itself, so they always match it; without them (or should a
future shiboken stop looking for the folder) the embedded copy is used as before.

Runs in its own process because importing shiboken6 loads Qt, which the PyInstaller process has no need of.
"""

from __future__ import annotations

import py_compile
import sys
import tempfile
from pathlib import Path

PACKAGE = "shibokensupport/"


def write_compiled_support(out_dir: Path) -> int:
    """Write shibokensupport's modules, byte-compiled, under out_dir; returns how many (0 if not found)."""
    import shiboken6  # noqa: F401 (its import runs the signature bootstrap, which loads shibokensupport)

    package = sys.modules.get("shibokensupport")
    archive = getattr(getattr(package, "__loader__", None), "zfile", None)  # the bootstrap's EmbeddableZipImporter
    if archive is None:
        return 0
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in archive.namelist():
            if not (name.startswith(PACKAGE) and name.endswith(".py")):
                continue
            source = Path(tmp, name)
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(archive.read(name))
            target = out_dir / (name[: -len(".py")] + ".pyc")  # sourceless layout: the .pyc where the .py would be
            target.parent.mkdir(parents=True, exist_ok=True)
            # Unchecked hash: no source sits beside it to check against, and the build stays reproducible.
            py_compile.compile(str(source), cfile=str(target), dfile=name, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print(write_compiled_support(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
