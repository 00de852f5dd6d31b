"""Help pages and usage errors, as a user sees them (``fsmove`` run as a process, 80
columns): no type placeholders, paragraphs wrapped to the width, each command's exit
codes, ``copy --help`` with the password sources and examples; usage errors in the one
line every other error uses; ``dns --watch-timeout`` (the old ``--timeout`` hidden)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ("copy", "verify", "resume", "status", "demo", "dns", "plan", "cutover", "migrate")


def fsmove(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COLUMNS": "80", "TERM": "xterm"})


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_placeholders_and_says_the_exit_codes(command: str) -> None:
    shown = fsmove(command, "--help")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert not re.search(r"<(bool|str|int|float|path|list)[^>]*>", text), text
    assert "{" not in text.split("\n", 1)[0]  # usage line: SRC DST, not {SRC} {DST}
    assert "Exit codes:" in text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "╭" not in text  # no boxed panels


def test_paragraphs_are_wrapped_not_broken_where_the_source_broke_them() -> None:
    text = fsmove("resume", "--help").stdout
    # The docstring breaks this paragraph after "FSMOVE_SRC_PASSWORD /": the help does not.
    assert "Passwords are never stored: they come again from FSMOVE_SRC_PASSWORD /" \
        " FSMOVE_DST_PASSWORD" in " ".join(text.split())
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if "Passwords are never stored" in line)
    assert len(lines[i]) > 60  # filled to the width, not cut at the source's break


def test_copy_help_names_password_sources_and_has_three_examples() -> None:
    text = fsmove("copy", "--help").stdout
    flat = " ".join(text.split())
    for source in ("FSMOVE_SRC_PASSWORD", "FSMOVE_DST_PASSWORD", "~/.netrc", "prompt",
                   "the URL itself"):
        assert source in flat, source
    examples = [line for line in text.splitlines() if line.startswith("    fsmove copy ")]
    assert len(examples) == 3, text


@pytest.mark.parametrize(("args", "message"), [
    (("copy",), "Missing argument 'SRC'. (see 'fsmove copy --help')"),
    (("copy", "a", "b", "--frobnicate"), "No such option: --frobnicate"),
    (("copy", "a", "b", "--workers", "0"), "Invalid value for '--workers'"),
    (("verify", "a", "b", "--sample", "x"), "Invalid value for '--sample'"),
    (("nosuchcommand",), "No such command 'nosuchcommand'"),
])
def test_usage_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    done = fsmove(*args)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fsmove: error: "), done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr and "╭" not in done.stderr


def test_dns_watch_timeout_and_the_hidden_old_spelling() -> None:
    text = fsmove("dns", "--help").stdout
    assert "--watch-timeout" in text and "--for" in text
    assert not re.search(r"^\s+--timeout\b", text, re.M)
    for spelling, named in (("--watch-timeout", "--watch-timeout"),
                            ("--for", "--watch-timeout"),
                            ("--timeout", "--timeout (now spelled --watch-timeout)")):
        done = fsmove("dns", "www.example.org", spelling, "0")
        assert done.returncode == 2
        assert done.stderr == f"fsmove: error: {named} must be a positive number of seconds\n"


def test_bad_stats_interval_is_a_usage_error() -> None:
    done = fsmove("copy", "a", "b", "--stats", "often")
    assert done.returncode == 2
    assert done.stderr.startswith("fsmove: error: --stats 'often': give a duration like 30s")


def test_the_command_line_starts_without_what_the_commands_run() -> None:
    """`fsmove` builds its commands from light modules (fsmove/commands/*_command.py):
    the engine, the output, the verifier, DNS and the Clever client load only when a
    command runs, not for `--help` or a usage error."""
    heavy = ("fsmove.transfers.copy.engine", "fsmove.output", "fsmove.verify.verifier",
             "fsmove.commands.copy", "fsmove.commands.migrate", "fsmove.clever.dns",
             "fsmove.clever.api", "dns.resolver", "rich.live")
    done = subprocess.run(
        [sys.executable, "-c", "import sys, fsmove.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=60, check=True)
    loaded = set(done.stdout.split())
    assert [m for m in heavy if m in loaded] == []


def test_a_copy_without_a_live_display_never_loads_rich(tmp_path: Path) -> None:
    """rich draws only the live display: a copy with --quiet (or --json, --stats, off a
    terminal) does not import it (~20 ms of every run's start-up, fsmove/output.py)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    script = ("import sys\nfrom fsmove.cli import main\n"
              f"sys.argv = ['fsmove', 'copy', {str(src)!r}, {str(tmp_path / 'dst')!r}, "
              f"'--quiet', '--journal', {str(tmp_path / 'j.db')!r}]\n"
              "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
              "print('EXIT', code, ' '.join(sorted(m for m in sys.modules "
              "if m.split('.')[0] == 'rich')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    last = done.stdout.strip().splitlines()[-1]
    assert last == "EXIT 0", (last, done.stderr[-500:])
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"a"


def test_exceptions_become_exit_codes_in_one_place() -> None:
    """One entry wrapper (fsmove/command_entry.py) catches what ends a command; one
    function (fsmove/exitcodes.py) maps an exception to its exit code."""
    root = Path(__file__).resolve().parents[1] / "fsmove"
    catching = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")
                      if "except (Exception, KeyboardInterrupt)" in p.read_text())
    mapping = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")
                     if re.search(r"^def exit_code_for", p.read_text(), re.M))
    assert (catching, mapping) == (["command_entry.py"], ["exitcodes.py"])
