"""The fixed cost of every run: what a run imports, and the plain coercion of option
values without pydantic (fsmove/plain_coercion.py) giving exactly Typer's values and
Typer's errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer import core

from fsmove import plain_coercion
from fsmove.cli import app
from fsmove.plain_coercion import PlainParam

#: Prints the modules a run imported, whatever the command's exit.
_RUN_AND_LIST_MODULES = """
import json, sys
from fsmove.cli import main
try:
    main()
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_of_a_run(args: list[str], tmp_path: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, *args],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_a_copy_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    """pydantic (Typer's coercion) and the Clever clients are not imported by a local
    copy."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    modules = _modules_of_a_run(
        ["copy", str(src), str(tmp_path / "dst"), "--quiet", "--workers", "4",
         "--timeout", "20", "--journal", str(tmp_path / "j.sqlite")], tmp_path)
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"a"
    heavy = {m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core", "oauthlib")}
    assert not heavy
    assert "fsmove.clever.api" not in modules and "fsmove.clever.clever_tool" not in modules


_RUN_AND_SHOW_COLLECTOR = """
import gc, json, sys
from fsmove.cli import main
try:
    main()
finally:
    print(json.dumps([gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()]),
          file=sys.stderr)
"""


def test_a_run_collects_garbage_in_large_batches_past_its_start_up(tmp_path: Path) -> None:
    """fsmove/gc_settings.py: the collector stays on (cycles are still freed) with a
    young threshold far above CPython's 700, and what start-up imported is frozen."""
    from fsmove.gc_settings import OLDER_THRESHOLDS, YOUNG_THRESHOLD

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_SHOW_COLLECTOR, "copy", str(src),
         str(tmp_path / "dst"), "--quiet", "--journal", str(tmp_path / "j.sqlite")],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert done.returncode == 0, done.stderr
    enabled, threshold, frozen = json.loads(done.stderr.strip().splitlines()[-1])
    assert enabled
    assert tuple(threshold) == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    assert YOUNG_THRESHOLD >= 10_000
    assert frozen > 10_000  # typer, click and fsmove's own modules


def _params() -> list[Any]:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    return [p for sub in command.commands.values() for p in sub.params]


def _outcome(coerce: Any, value: Any, param: Any) -> tuple[str, Any]:
    try:
        got = coerce(value, param=param, ctx=None)
    except Exception as exc:  # the refusal, as Typer words it
        return "error", f"{type(exc).__name__}: {exc}"
    return type(got).__name__, repr(got)  # repr: nan equals nan


VALUES: list[Any] = [
    "12", "0", "1", "512", "513", "-1", "-0", "007", "abc", "", " 3", "3 ", "1.5", "1e3",
    "0.5", "600", "600.5", ".5", "1.", "nan", "inf", "1_000", 128, 30.0, 5, True,
    "relative/file", "/tmp", "-", ("a", "b"), ["x"], (), None,
]


def test_plain_coercion_gives_typers_values_and_errors(tmp_path: Path) -> None:
    """Every parameter of every command, every value above: the plain path gives the
    same value of the same type as Typer's pydantic path, or the same error."""
    plain_coercion.install()
    typer_runtime_param = core._TyperParameter.get_runtime_param._fsmove_typer  # type: ignore[attr-defined]
    checked = 0
    for param in _params():
        light = PlainParam(param, typer_runtime_param, _coerce_cli_path())
        full = typer_runtime_param(param)
        for value in VALUES:
            expected = _outcome(full.coerce, value, param)
            assert _outcome(light.coerce, value, param) == expected, (param.name, value)
            checked += 1
    assert checked > 500


def _coerce_cli_path() -> Any:
    from typer._param_types import coerce_cli_path

    return coerce_cli_path


@pytest.mark.parametrize("args", [
    ["copy", "a", "b", "--workers", "0"],
    ["copy", "a", "b", "--workers", "x"],
    ["copy", "a", "b", "--timeout", "abc"],
    ["copy", "a", "b", "--retry-delay", "601"],
])
def test_a_refused_value_is_worded_by_typer(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "fsmove.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("fsmove: error: Invalid value for")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "built"), [
    (["copy", "a", "b"], "copy"),
    (["--debug", "verify", "a", "b"], "verify"),
    (["--help"], None),
    (["--version"], None),
    (["--debug", "--help", "copy"], None),
    ([], None),
    (["frobnicate"], None),
    (["a-path-not-a-command", "copy"], None),
])
def test_a_run_builds_only_the_command_it_runs(args: list[str], built: str | None) -> None:
    """fsmove/cli.py: Typer builds a command from its signature and type hints; a run
    builds only its own, anything else (help, version, an unknown name) the whole app."""
    from fsmove.cli import invoked_command

    assert invoked_command(args) == built


@pytest.mark.parametrize("name", ["copy", "verify", "migrate", "dns"])
def test_a_command_built_alone_says_what_it_says_in_the_whole_app(name: str) -> None:
    from typer.testing import CliRunner

    from fsmove.cli import build_app

    runner = CliRunner()
    alone = runner.invoke(build_app(name), [name, "--help"], prog_name="fsmove")
    whole = runner.invoke(build_app(), [name, "--help"], prog_name="fsmove")
    assert alone.exit_code == whole.exit_code == 0
    assert alone.output == whole.output
    assert f"Usage: fsmove {name}" in alone.output
