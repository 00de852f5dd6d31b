"""`fsmove demo`: a whole bucket migration on this machine, in under a minute.

Two embedded FTP servers stand for the old and the new bucket; the old one gets a
realistic sample; the real ``fsmove copy`` runs in a child process and is killed part-way
(SIGKILL, like a crash); ``fsmove status`` shows what the journal kept; the same copy
command resumes and sends only what is missing; a full verification reads both buckets
and writes the HTML and JSON reports; the end shows the same commands for real Clever
Cloud buckets. Nothing keeps running afterwards: the servers stop in every case.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from fsmove.demo.clever import real_bucket_steps
from fsmove.demo.copy_job import (
    DemoStepError,
    child_env,
    copy_args,
    run_child,
    run_child_until_tripped,
)
from fsmove.demo.sample import Sample, SampleSize, make_sample
from fsmove.demo.servers import DemoBuckets, serve_buckets
from fsmove.demo.verification import verify_buckets
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode
from fsmove.progress import human_bytes, human_seconds
from fsmove.transfers.journal import read_status
from fsmove.transfers.tree import looks_like_temp
from fsmove.verify.html_report import write_html
from fsmove.verify.report import terminal_summary, write_json

#: Share of the sample's bytes that reach the new bucket before the crash (once at least
#: one file is complete; at ``CRASH_AT_THE_LATEST`` in any case).
CRASH_AT = 0.4
CRASH_AT_THE_LATEST = 0.9
OLD_DIR = "old-bucket"
NEW_DIR = "new-bucket"
JOURNAL = "journal.db"
HTML_REPORT = "report.html"
JSON_REPORT = "report.json"


@dataclass(frozen=True)
class DemoRequest:
    workdir: Path | None
    keep: bool
    size: SampleSize


def _say(text: str = "") -> None:
    print(text, flush=True)


def _para(text: str) -> None:
    """A paragraph, wrapped to the terminal (at most 88 columns)."""
    width = min(88, shutil.get_terminal_size((88, 24)).columns)
    _say(textwrap.fill(text, width=width, break_on_hyphens=False, break_long_words=False))


def _step(number: int, title: str) -> None:
    _say()
    _say(f"── {number}. {title}")


def _prepare_workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="fsmove-demo-"))
    workdir = workdir.expanduser().resolve()
    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"--workdir {workdir} is a file: give a folder")
    taken = [n for n in (OLD_DIR, NEW_DIR, JOURNAL) if (workdir / n).exists()]
    if taken:
        raise UsageError(
            f"--workdir {workdir} already holds a demo ({', '.join(taken)}): "
            "choose another folder or remove it"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _command_line(args: list[str]) -> str:
    return "$ fsmove " + " ".join(args)


@dataclass(frozen=True)
class _BucketContents:
    complete_files: int
    complete_bytes: int
    partial_files: int
    partial_bytes: int


def _bucket_contents(root: Path) -> _BucketContents:
    """What a bucket's folder holds: files at their final names, and fsmove's
    in-flight temporary files."""
    complete = [p for p in root.rglob("*") if p.is_file() and not looks_like_temp(p.name)]
    partial = [p for p in root.rglob("*") if p.is_file() and looks_like_temp(p.name)]
    return _BucketContents(
        complete_files=len(complete), complete_bytes=sum(p.stat().st_size for p in complete),
        partial_files=len(partial), partial_bytes=sum(p.stat().st_size for p in partial),
    )


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _describe_sample(sample: Sample) -> str:
    large = [f for f in sample.files if f.size >= 1024 * 1024 * 1.5]
    return (
        f"{len(sample.files)} files in {len(sample.dirs)} folders, "
        f"{human_bytes(sample.total_bytes)}: photos by year and month with their "
        f"thumbnails, a theme, a page cache, documents with spaces and accents, "
        f"{_files(len(large))} over 1.5 MiB (the largest {human_bytes(sample.largest.size)}), "
        "an empty file and an empty folder"
    )


def _crash_and_resume(buckets: DemoBuckets, *, sample: Sample, journal: Path) -> None:
    env = child_env(buckets)
    args = copy_args(buckets, journal=journal)
    threshold = int(sample.total_bytes * CRASH_AT)

    _step(3, f"Copy, and a crash at {CRASH_AT:.0%}")
    _para(f"The real `fsmove copy` runs in its own process. Once the new bucket has "
          f"received {CRASH_AT:.0%} of the bytes, the demo kills it with SIGKILL: no "
          "clean-up, no last word, like a crash, an out-of-memory kill or a machine that "
          "goes away.")
    _say(_command_line(args))

    def journal_caught_up() -> bool:
        done = read_status(journal).counts.get("done", 0)
        return done >= _bucket_contents(buckets.new.root).complete_files

    first = run_child_until_tripped(args, env=env, tripwire=buckets.tripwire,
                                    threshold=threshold,
                                    ceiling=int(sample.total_bytes * CRASH_AT_THE_LATEST),
                                    settled=journal_caught_up)
    if not first.killed:
        raise DemoStepError(
            f"the first copy ended by itself (exit {first.returncode}) before the "
            "interruption point"
        )
    _say()
    at_crash = _bucket_contents(buckets.new.root)
    _para(f"Killed after {human_seconds(first.seconds)}. The new bucket holds "
          f"{_files(at_crash.complete_files)} at their final names "
          f"({human_bytes(at_crash.complete_bytes)}), each one complete: a file is renamed "
          f"into place only once all of it arrived. {_files(at_crash.partial_files)} "
          f"({human_bytes(at_crash.partial_bytes)}) were in progress, under hidden "
          ".fsmove.*.part names.")

    partial_in_journal = read_status(journal).counts.get("partial", 0)

    _step(4, "What the journal kept")
    status_args = ["status", str(journal)]
    _say(_command_line(status_args))
    shown = run_child(status_args, env=env)
    if shown.returncode != 0:
        raise DemoStepError(f"`fsmove status` failed (exit {shown.returncode})")

    _step(5, "Resume: the same command again")
    _say(_command_line(args))
    second = run_child(args, env=env)
    if second.returncode != 0:
        raise DemoStepError(f"the resumed copy failed (exit {second.returncode})")
    sent = read_status(journal).bytes_sent_last_run
    if sent >= sample.total_bytes:
        raise DemoStepError(
            "the resume re-sent the whole sample: resuming did not work as it should"
        )
    saved = sample.total_bytes - sent
    head = (f"The resume sent {human_bytes(sent)} of {human_bytes(sample.total_bytes)}: the "
            f"{human_bytes(saved)} already safe in the new bucket were not sent again. "
            "Finished files were skipped")
    _say()
    if partial_in_journal:
        _para(f"{head}; the {_files(partial_in_journal)} cut mid-way went on from the last "
              "4 MiB block that the journal recorded and the new bucket still held, checked "
              "by digest before appending.")
    else:
        _para(f"{head}; the files cut mid-way started again: each was shorter than one "
              "4 MiB block, the unit of resume inside a file.")


def run_demo(req: DemoRequest) -> ExitCode:
    started = time.monotonic()
    workdir = _prepare_workdir(req.workdir)
    old_root, new_root = workdir / OLD_DIR, workdir / NEW_DIR
    journal = workdir / JOURNAL
    _say("fsmove demo: a bucket migration between two FTP servers on this machine.")
    _say(f"Everything goes to {workdir}")
    try:
        _step(1, "Two buckets")
        with serve_buckets(old_root=old_root, new_root=new_root) as buckets:
            _say("Two FTP servers (aioftp's own, inside this process) on 127.0.0.1:")
            _say(f"  old bucket  {buckets.old.url:<34} (serves {old_root})")
            _say(f"  new bucket  {buckets.new.url:<34} (serves {new_root}, empty)")
            _para("They stand for bucket-…-fsbucket.services.clever-cloud.com in the old "
                  "and the new zone. Each has its own random password; fsmove gets them "
                  "from FSMOVE_SRC_PASSWORD and FSMOVE_DST_PASSWORD, never from its "
                  "command line.")

            _step(2, "A realistic sample in the old bucket")
            sample = make_sample(old_root, req.size)
            _para(_describe_sample(sample) + ".")

            _crash_and_resume(buckets, sample=sample, journal=journal)

            _step(6, "Verify: read every byte on both sides")
            _para("The same check as `fsmove verify OLD NEW --no-journal --report "
                  "report.html --report report.json`: both buckets listed, every file "
                  "read on both sides and its digest compared.")
            verification = verify_buckets(buckets, expected_bytes=sample.total_bytes)
        html, js = workdir / HTML_REPORT, workdir / JSON_REPORT
        write_html(verification, html)
        write_json(verification, js)
        _say(terminal_summary(verification))
        _say(f"HTML report: {html}")
        _say(f"             open it in a browser: {html.as_uri()}")
        _say(f"JSON report: {js}")

        _step(7, "The same with real Clever Cloud buckets")
        _say(real_bucket_steps())
    finally:
        if not req.keep:
            shutil.rmtree(old_root, ignore_errors=True)
            shutil.rmtree(new_root, ignore_errors=True)
    _say()
    kept = "the buckets, " if req.keep else ""
    _para(f"Demo finished in {human_seconds(time.monotonic() - started)}; both servers are "
          f"stopped. Kept in {workdir}: {kept}the journal and the reports.")
    return ExitCode.OK if verification.matched else ExitCode.MISMATCH
