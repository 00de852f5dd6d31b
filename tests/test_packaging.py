"""A plain `pip install` of the sdist into a fresh venv (not an editable install) gives a
working `fsmove`, and installs `fsmove.transfers` / `fsmove.verify` without the top-level names
`transfers` and `verify` (PyPI has other distributions by those names)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=600, check=False, cwd=cwd)


def _tracked_copy(dest: Path) -> Path:
    files = run("git", "ls-files", "-z", cwd=REPO).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def test_sdist_installs_a_working_fsmove_and_its_tests_run(tmp_path: Path) -> None:
    """The sdist built from the tracked tree holds LICENSE, the tests and their
    real-server fixtures (tests/servers/), run.sh and .ci/; no package-data pattern names
    a missing folder. A plain (not editable) `pip install` of it into a fresh venv gives
    a working `fsmove` (and `python -m fsmove`), with `fsmove.transfers` and
    `fsmove.verify` but no top-level `transfers` or `verify`. Unpacked and set up as
    run.sh does (an editable install with the test extras), a test module runs from it.
    One venv for all of it: two tests each paid for a venv and the dependencies'
    install (~105 s of the suite's time, session 35)."""
    import tarfile
    import tomllib

    source = _tracked_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    py = venv / "bin" / "python"
    tools = run(py, "-m", "pip", "install", "-q", "build", "setuptools>=77")
    assert tools.returncode == 0, tools.stderr[-3000:]
    built = run(py, "-m", "build", "--sdist", "--no-isolation", "--outdir", tmp_path / "dist",
                source)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (sdist,) = (tmp_path / "dist").glob("fsmove-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        tar.extractall(tmp_path / "unpacked", filter="data")
    for needed in ("LICENSE", "run.sh", ".ci/install-servers.sh", "tests/conftest.py",
                   "tests/servers/__init__.py", "tests/servers/vsftpd.py",
                   "tests/faults/fsmove_run.py", "tests/test_verify.py"):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["fsmove"]
    for pattern in package_data:
        assert list((REPO / "fsmove").glob(pattern)), f"package-data {pattern} matches nothing"

    installed = run(py, "-m", "pip", "install", "-q", str(sdist))
    assert installed.returncode == 0, installed.stderr[-3000:]
    version = run(venv / "bin" / "fsmove", "--version")
    assert version.returncode == 0 and version.stdout.startswith("fsmove "), version.stderr
    helptext = run(venv / "bin" / "fsmove", "--help")
    assert helptext.returncode == 0
    for command in ("copy", "verify", "status", "resume", "demo", "migrate"):
        assert command in helptext.stdout
    # ``python -m fsmove`` is the same command (no script folder on PATH needed).
    as_module = run(py, "-m", "fsmove", "--version", cwd=tmp_path)
    assert as_module.returncode == 0 and as_module.stdout == version.stdout, as_module.stderr
    elsewhere = tmp_path / "elsewhere"  # not the repo: its folders must not be importable
    elsewhere.mkdir()
    for name in ("transfers", "verify"):
        probe = run(py, "-c", f"import {name}", cwd=elsewhere)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, name
    ok = run(py, "-c", "import fsmove.transfers.copy, fsmove.verify.verifier, fsmove.demo",
             cwd=elsewhere)
    assert ok.returncode == 0, ok.stderr

    (root,) = (tmp_path / "unpacked").iterdir()
    editable = run(py, "-m", "pip", "install", "-q", "-e", f"{root}[test]")
    assert editable.returncode == 0, editable.stderr[-3000:]
    tests = run(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_verify.py",
                "-k", "identical_trees_match or five_problems_local", cwd=root)
    assert tests.returncode == 0 and "2 passed" in tests.stdout, tests.stdout[-3000:]
