"""benchmarks/tree_resume.py end to end with a stand-in client on local folders: the
first run copies half the files and then blocks (it is killed: the harness counted half
the files), the second run either skips what is there (nothing re-sent) or copies every
file again through a temporary name (every complete file re-sent). No server, no clock:
the stand-in waits for its SIGKILL, it does not race it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cells import Cell
from benchmarks.corpora import ensure_corpus, million_spec
from benchmarks.environment import Location, Route
from benchmarks.execution import Settings
from benchmarks.measure import Command
from benchmarks.runners.base import CopyJob
from benchmarks.tree_resume import run_tree_resume

CLIENT = r"""
import os, sys, time
src, dst, mode, resume = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
files = sorted(
    os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs
)
def put(rel):
    target = os.path.join(dst, rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(os.path.join(src, rel), "rb") as f:
        data = f.read()
    with open(target + ".part", "wb") as f:
        f.write(data)
    os.replace(target + ".part", target)
if not resume:
    for rel in files[: len(files) // 2]:
        put(rel)
    with open(os.path.join(dst, "in-flight.part"), "wb") as f:
        f.write(b"x")  # a file in flight at the kill
    while True:
        time.sleep(3600)  # blocked until the harness kills this run
os.unlink(os.path.join(dst, "in-flight.part"))
for rel in files:
    target = os.path.join(dst, rel)
    same = os.path.exists(target) and os.path.getsize(target) == os.path.getsize(
        os.path.join(src, rel)
    )
    if mode == "all" or not same:
        put(rel)
"""


@dataclass
class StandIn:
    mode: str  # "skip": a resume that trusts what is there; "all": copies everything again
    name: str = "stand-in"

    def version(self) -> str:
        return "stand-in"

    def files_in_flight(self) -> int | None:
        return 1

    def command(self, job: CopyJob) -> Command:
        argv = (
            sys.executable,
            "-c",
            CLIENT,
            job.src.path,
            job.dst.path,
            self.mode,
            "1" if job.resume else "0",
        )
        return Command(argv=argv, env={"PATH": "/usr/bin:/bin"})


def run(tmp_path: Path, mode: str):
    corpus = ensure_corpus(million_spec(40), tmp_path / "corpora")
    dst_root = tmp_path / "dst"
    dst_root.mkdir()
    route = Route(
        "local-local",
        0,
        Location(scheme="file", path=str(corpus.root.parent), local=corpus.root.parent),
        Location(scheme="file", path=str(dst_root), local=dst_root),
    )
    cell = Cell(
        "million-resume-local-local-0ms",
        "million-resume",
        "million",
        "local-local",
        0,
        ("stand-in",),
        default=False,
    )
    settings = Settings(
        scratch_dir=tmp_path / "scratch",
        timeout_s=120.0,
        secrets=(),
        log=print,
        million_timeout_s=120.0,
    )
    return run_tree_resume(
        cell=cell, runner=StandIn(mode), corpus=corpus, route=route, settings=settings
    )


def test_a_resume_that_skips_complete_files_re_sends_nothing(tmp_path: Path):
    result = run(tmp_path, "skip")
    assert result.ok, result.error or result.verification
    t = result.tree_resume
    assert t is not None and t.first_run_killed
    assert t.complete_at_kill == 20 and t.partial_at_kill == 1
    assert t.killed_at_fraction == 0.5
    assert (t.replaced, t.rewritten, t.resent_bytes) == (0, 0, 0)
    assert t.met is True


def test_a_resume_that_copies_everything_again_re_sends_every_complete_file(tmp_path: Path):
    result = run(tmp_path, "all")
    assert result.ok, result.error or result.verification
    t = result.tree_resume
    assert t is not None
    assert t.replaced == 20 and t.rewritten == 0
    assert t.resent_bytes == sum(sorted_sizes(tmp_path)[:20])
    assert t.met is False  # 20 files re-sent with one in flight


def sorted_sizes(tmp_path: Path) -> list[int]:
    root = tmp_path / "corpora" / "million"
    return [
        p.stat().st_size
        for p in sorted(root.rglob("*.dat"), key=lambda p: str(p.relative_to(root)))
    ]
