"""A newcomer's first five minutes: the README's Quick start, run exactly as written, in a fresh clone.

The commands are read out of README.md's "Quick start" section (never retyped here), and run
with bash in a `git clone` of this repository's HEAD, offscreen. Two environment variables keep
the run finite without changing the commands:
- IBPANEL_EXIT_AFTER_POPULATED=1: the panel started by the first command exits 0 once its
  window is populated on the practice exchange (honoured by ibpanel.ui.app);
- IBPANEL_QUICKSTART_INNER=1 and PYTEST_ADDOPTS="-k layering": the test suite run by the second
  command skips this test (no recursion) and runs only a small, fast subset.
pip uses the machine's normal configuration and cache, so the install takes seconds, not minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXIT_AFTER_POPULATED = "IBPANEL_EXIT_AFTER_POPULATED"
INNER = "IBPANEL_QUICKSTART_INNER"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def quick_start_commands(readme: Path) -> list[str]:
    """The fenced shell blocks of the README's "## Quick start" section, in order."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"^## Quick start\s*$(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Quick start' section"
    blocks = re.findall(r"^```(?:bash|sh|shell)\s*\n(.*?)^```", match.group(1), flags=re.MULTILINE | re.DOTALL)
    return [block.strip() for block in blocks]


def test_readme_quick_start_has_two_commands_and_the_test_one_is_what_ci_runs():
    commands = quick_start_commands(ROOT / "README.md")
    assert len(commands) == 2, commands
    install_and_start, run_tests = commands
    assert "ibpanel --demo" in install_and_start and "\n" not in install_and_start
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.strip().startswith(run_tests) for line in ci_script.splitlines()), (
        f"CI must run the README's test command {run_tests!r}")


def _clean_environment(home: Path) -> dict[str, str]:
    """The user's environment minus this test run's virtualenv, plus offscreen Qt and a private home."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_ADDOPTS", "PYTHONHOME") and not k.startswith("PYTEST_")}
    if sys.prefix != sys.base_prefix:  # drop our own venv's bin so `python3` is the machine's
        own_bin = str(Path(sys.prefix) / ("Scripts" if os.name == "nt" else "bin"))
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != own_bin)
    env.update(QT_QPA_PLATFORM="offscreen", IBPANEL_HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_PROGRESS_BAR="off")
    return env


def _run(command: str, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"{command!r} did not finish within {timeout:.0f} s; output tail:\n{out[-3000:]}")


@pytest.mark.skipif(os.environ.get(INNER) == "1", reason="running inside the Quick start's own test command")
@pytest.mark.skipif(os.name == "nt", reason="the Quick start's commands are POSIX shell (Windows notes follow them)")
def test_readme_quick_start_runs_in_a_fresh_clone(tmp_path):
    if shutil.which("git") is None or shutil.which("bash") is None or shutil.which("python3") is None:
        pytest.skip("this machine lacks git, bash or python3 on PATH, which the Quick start needs")
    clone = tmp_path / "clone"
    cloned = subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], capture_output=True, text=True,
                            timeout=120)
    assert cloned.returncode == 0, cloned.stderr

    # What a newcomer reads: the clone's README (the committed one).
    install_and_start, run_tests = quick_start_commands(clone / "README.md")
    env = _clean_environment(tmp_path / "home")

    first = _run(install_and_start, clone, dict(env, **{EXIT_AFTER_POPULATED: "1"}), timeout=240)
    assert first.returncode == 0, f"{install_and_start!r} failed:\n{first.stdout[-3000:]}\n{first.stderr[-3000:]}"
    assert "IBPANEL POPULATED ok=1" in first.stdout  # the window filled in from the practice exchange

    inner = dict(env, **{INNER: "1", "PYTEST_ADDOPTS": "-k layering -p no:cacheprovider"})
    second = _run(run_tests, clone, inner, timeout=120)
    output = second.stdout + second.stderr
    assert second.returncode == 0, f"{run_tests!r} failed:\n{output[-4000:]}"
    assert re.search(r"\b\d+ passed\b", output), output[-2000:]
