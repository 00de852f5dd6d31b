"""The dependency ranges are ones CI tests: each has a lower bound that
`.ci/lowest-deps.py` pins for the lowest-versions smoke run (run.sh), the libraries
whose internals fsmove uses are capped to the tested minor, and nothing is declared
that fsmove never imports."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _deps() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~ ]", d, maxsplit=1)[0].lower(): d for d in deps}


def test_every_dependency_is_pinned_for_the_lowest_versions_smoke() -> None:
    spec = importlib.util.spec_from_file_location("lowest_deps", REPO / ".ci" / "lowest-deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pins = module.lowest_pins(REPO / "pyproject.toml")
    assert {p.split("==")[0].lower() for p in pins} == set(_deps())
    assert "lowest_versions" in (REPO / "run.sh").read_text()


def test_ranges_that_start_and_stay_within_what_is_tested() -> None:
    deps = _deps()
    assert "paramiko" not in deps  # never imported: asyncssh is the SFTP library
    assert "<2.25" in deps["asyncssh"]  # transfers/cork.py uses its private transport
    assert "<0.29" in deps["aioftp"]
    lowest_typer = re.search(r">=\s*([0-9.]+)", deps["typer"])
    assert lowest_typer is not None
    major, minor = (int(x) for x in lowest_typer.group(1).split(".")[:2])
    assert (major, minor) >= (0, 16)  # 0.12-0.15.1 cannot start fsmove on Click 8.2+
    imported = "\n".join(p.read_text() for d in ("fsmove", "transfers", "verify")
                         for p in (REPO / d).rglob("*.py"))
    for name in deps:
        module = {"dnspython": "dns"}.get(name, name)
        assert re.search(rf"^\s*(import|from) {module}\b", imported, re.M), name
