"""Running `fsmove copy` from tests: endpoints for each store kind, the CLI in-process
(Typer's runner) or as a real subprocess, and an independent check of the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import xxhash
from typer.testing import CliRunner

from fsmove.cli import app
from tests.servers import RunningServer, make_tree


@dataclass(frozen=True)
class Side:
    """One end of a copy: a URL (password-free), where its files are on this disk, and
    the options and environment that reach it."""

    kind: str
    url: str
    root: Path
    server: RunningServer | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def options(self) -> list[str]:
        if self.server is None:
            return []
        opts: list[str] = []
        if self.server.known_hosts is not None:
            opts += ["--known-hosts", str(self.server.known_hosts)]
        if self.server.ca_cert is not None:
            opts += ["--ca-file", str(self.server.ca_cert)]
        return opts

    def put(self, files: Mapping[str, bytes], *, mtime: float | None = None) -> None:
        put_files(self.server, self.root, files, mtime=mtime)

    def mkdir(self, rel: str) -> None:
        p = self.root / rel
        p.mkdir(parents=True, exist_ok=True)
        if self.server is not None:
            for q in [p, *p.parents]:
                if q == self.root:
                    break
                os.chown(q, *self.server.owner)


#: The ``served`` fixture (tests/conftest.py): a server fixture's name and a role ("src"
#: or "dst") to the server, re-rooted for the test, and the side on it.
Served = Callable[[str, str], tuple[RunningServer, "Side"]]


def put_files(server: RunningServer | None, root: Path, files: Mapping[str, bytes], *,
              mtime: float | None = None) -> None:
    """Write files below a store's root: through ``make_tree`` (owned by the server's
    account) for a server, directly for a local folder."""
    if server is not None:
        make_tree(server, files, mtime=mtime)
        return
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))


def side_for(kind: str, server: RunningServer | None, root: Path, role: str) -> Side:
    if server is None:
        return Side(kind=kind, url=str(root), root=root)
    var = "FSMOVE_SRC_PASSWORD" if role == "src" else "FSMOVE_DST_PASSWORD"
    return Side(kind=kind, url=server.url(), root=server.root, server=server,
                env={var: server.password})


@dataclass
class CopyResult:
    exit_code: int
    output: str
    events: list[dict[str, object]]

    @property
    def summary(self) -> dict[str, object]:
        for e in reversed(self.events):
            if e.get("type") == "summary":
                return e
        raise AssertionError(f"no summary event in output:\n{self.output[-3000:]}")


def _parse_events(text: str) -> list[dict[str, object]]:
    events = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def run_copy_inprocess(
    src: Side, dst: Side, *extra: str, journal: Path, json_events: bool = True
) -> CopyResult:
    args = ["copy", src.url, dst.url, "--journal", str(journal), *src.options(), *dst.options()]
    if json_events:
        args.append("--json")
    args += list(extra)
    env = {**src.env, **dst.env}
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    output = result.output
    return CopyResult(result.exit_code, output, _parse_events(result.stdout))


def fsmove_argv(src: Side, dst: Side, *extra: str, journal: Path) -> list[str]:
    return [
        sys.executable, "-m", "fsmove.cli", "copy", src.url, dst.url,
        "--journal", str(journal), *src.options(), *dst.options(), *extra,
    ]


def run_copy_subprocess(
    src: Side, dst: Side, *extra: str, journal: Path, timeout: float = 600
) -> CopyResult:
    env = {**os.environ, **src.env, **dst.env}
    proc = subprocess.run(
        fsmove_argv(src, dst, "--json", *extra, journal=journal),
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    return CopyResult(proc.returncode, proc.stdout + proc.stderr, _parse_events(proc.stdout))


def tree_digests(root: Path, *, skip_temp: bool = True) -> dict[str, tuple[int, str]]:
    """path -> (size, xxh3-128 of the whole content): an independent hash, not fsmove's."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if skip_temp and name.startswith(".fsmove."):
                continue
            p = Path(dirpath) / name
            h = xxhash.xxh3_128()
            with open(p, "rb") as fh:
                while chunk := fh.read(4 * 1024 * 1024):
                    h.update(chunk)
            out[p.relative_to(root).as_posix()] = (p.stat().st_size, h.hexdigest())
    return out


def tree_dirs(root: Path) -> set[str]:
    return {
        (Path(d) / n).relative_to(root).as_posix()
        for d, dirs, _f in os.walk(root)
        for n in dirs
    }


def temp_leftovers(root: Path) -> Sequence[str]:
    return [
        str(Path(d) / n) for d, _dirs, files in os.walk(root) for n in files
        if n.startswith(".fsmove.") and n.endswith(".part")
    ]
