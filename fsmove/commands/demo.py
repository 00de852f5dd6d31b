"""`fsmove demo`: a whole bucket migration on this machine, in under a minute.

Two embedded FTP servers stand for the old and the new bucket; the old one gets a
realistic sample; the real ``fsmove copy`` runs in a child process and is killed part-way
(SIGKILL, like a crash); ``fsmove status`` shows what the journal kept; the same copy
command resumes and sends only what is missing; a full verification reads both buckets
and writes the HTML and JSON reports; the end shows the same commands for real Clever
Cloud buckets. Nothing keeps running afterwards: the servers stop in every case.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from fsmove.demo.clever import real_bucket_steps
from fsmove.demo.copy_job import (
    ChildRun,
    Crash,
    DemoStepError,
    child_env,
    copy_args,
    run_child,
    run_copy_child,
)
from fsmove.demo.sample import Sample, SampleSize, make_sample
from fsmove.demo.servers import DemoBuckets, serve_buckets
from fsmove.demo.verification import verify_buckets
from fsmove.errors import UsageError
from fsmove.exitcodes import ExitCode
from fsmove.output import CommandOutput, OutputSettings
from fsmove.progress import human_bytes, human_seconds
from fsmove.transfers.events import FileDone, FileRestarted, FileStarted, Planned, Summary
from fsmove.transfers.jobs import read_meta, read_status
from fsmove.transfers.tree import TempNames, looks_like_temp
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
    #: Paths (relative, "/"-separated) of the files at their final names.
    complete: frozenset[str]
    complete_bytes: int
    #: Relative paths of fsmove's in-flight temporary files.
    partial: frozenset[str]
    partial_bytes: int


def _bucket_contents(root: Path) -> _BucketContents:
    """What a bucket's folder holds: files at their final names, and fsmove's
    in-flight temporary files."""
    files = [p for p in root.rglob("*") if p.is_file()]
    complete = [p for p in files if not looks_like_temp(p.name)]
    partial = [p for p in files if looks_like_temp(p.name)]
    return _BucketContents(
        complete=frozenset(p.relative_to(root).as_posix() for p in complete),
        complete_bytes=sum(p.stat().st_size for p in complete),
        partial=frozenset(p.relative_to(root).as_posix() for p in partial),
        partial_bytes=sum(p.stat().st_size for p in partial),
    )


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def _describe_sample(sample: Sample) -> str:
    large = [f for f in sample.files if f.size >= 1024 * 1024 * 1.5]
    return (
        f"{len(sample.files)} files in {len(sample.dirs)} folders, "
        f"{human_bytes(sample.total_bytes)}: photos by year and month with their "
        f"thumbnails, a theme, a page cache, documents with spaces and accents, "
        f"{_files(len(large))} over 1.5 MiB (the largest {human_bytes(sample.largest.size)}), "
        "an empty file and an empty folder"
    )


def _demo_output() -> CommandOutput:
    """What `fsmove copy` itself would show here: the live display on a terminal."""
    return CommandOutput(OutputSettings(), command="demo")


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
        return done >= len(_bucket_contents(buckets.new.root).complete)

    first = run_copy_child(args, env=env, output=_demo_output(), crash=Crash(
        tripwire=buckets.tripwire, threshold=threshold,
        ceiling=int(sample.total_bytes * CRASH_AT_THE_LATEST), settled=journal_caught_up))
    if not first.killed:
        raise DemoStepError(
            f"the first copy ended by itself (exit {first.returncode}) before the "
            "interruption point"
        )
    at_crash = _bucket_contents(buckets.new.root)
    reported_done = len(first.events.of_type(FileDone))
    _say()
    _para(f"Killed after {human_seconds(first.seconds)}, once it had reported "
          f"{_files(reported_done)} finished. The new bucket holds "
          f"{_files(len(at_crash.complete))} at "
          f"{'its final name' if len(at_crash.complete) == 1 else 'their final names'} "
          f"({human_bytes(at_crash.complete_bytes)}) and "
          f"{_files(len(at_crash.partial))} under hidden .fsmove.*.part names "
          f"({human_bytes(at_crash.partial_bytes)}): the files that were in flight, "
          "which fsmove renames into place only once all of a file arrived.")

    _step(4, "What the journal kept")
    status_args = ["status", str(journal)]
    _say(_command_line(status_args))
    shown = run_child(status_args, env=env)
    if shown.returncode != 0:
        raise DemoStepError(f"`fsmove status` failed (exit {shown.returncode})")
    kept = read_status(journal)
    _para(_journal_account(kept.counts, complete_in_bucket=len(at_crash.complete)))

    _step(5, "Resume: the same command again")
    _say(_command_line(args))
    resume_output = _demo_output()
    second = run_copy_child(args, env=env, output=resume_output)
    resume_output.copy_finished()
    if second.returncode != 0:
        raise DemoStepError(f"the resumed copy failed (exit {second.returncode})")
    _say()
    key = read_meta(journal).get("temp_key")
    if not key:
        raise DemoStepError("the journal holds no temporary-name key")
    _para(_resume_account(second, at_crash=at_crash, total_bytes=sample.total_bytes,
                          temps=TempNames(key)))


def _journal_account(counts: dict[str, int], *, complete_in_bucket: int) -> str:
    """What ``fsmove status`` just showed, in words, from the journal's own counts."""
    done, partial = counts.get("done", 0), counts.get("partial", 0)
    pending = counts.get("pending", 0)
    text = (f"The journal records {_files(done)} as done, {_files(partial)} as partial "
            f"(their acknowledged 4 MiB blocks are recorded one by one) and "
            f"{_files(pending)} as pending.")
    if done < complete_in_bucket:
        text += (f" {_files(complete_in_bucket - done)} reached the new bucket in the last "
                 "instant before the kill, before their done mark was committed.")
    return text


def _resume_account(run: ChildRun, *, at_crash: _BucketContents, total_bytes: int,
                    temps: TempNames) -> str:
    """What the resume did, from its own events: skipped, resumed, started again."""
    events = run.events
    plans = events.of_type(Planned)
    summaries = events.of_type(Summary)
    if not plans or not summaries:
        raise DemoStepError("the resumed copy reported no plan or no summary")
    plan, summary = plans[-1], summaries[-1]
    if summary.bytes_sent >= total_bytes:
        raise DemoStepError(
            "the resume re-sent the whole sample: resuming did not work as it should")
    started: list[FileStarted] = events.of_type(FileStarted)
    resumed = [e for e in started if e.resume_from > 0]
    cut = {temps.for_path(e.path) for e in started} & at_crash.partial
    from_zero = [e for e in started if e.resume_from == 0 and temps.for_path(e.path) in cut]
    again = [e for e in started if e.path in at_crash.complete]
    not_sent = plan.bytes_skipped + sum(e.resume_from for e in resumed)
    parts = [f"The resume sent {human_bytes(summary.bytes_sent)} of "
             f"{human_bytes(total_bytes)}; {human_bytes(not_sent)} did not travel again."]
    if plan.files_skipped:
        parts.append(f"{_files(plan.files_skipped)} ({human_bytes(plan.bytes_skipped)}) "
                     f"{_were(plan.files_skipped)} already complete in the new bucket: "
                     "skipped.")
    if resumed:
        parts.append(f"{_files(len(resumed))} cut mid-way went on from where they stopped "
                     f"({human_bytes(sum(e.resume_from for e in resumed))} kept), after "
                     "the last block at the destination was read back and checked.")
    if from_zero:
        parts.append(f"{_files(len(from_zero))} cut mid-way started again from the first "
                     "byte.")
    if again:
        parts.append(f"{_files(len(again))} complete at the crash but not yet in the "
                     f"journal {_were(len(again))} copied again.")
    restarted = events.of_type(FileRestarted)
    if restarted:
        parts.append(f"{_files(len(restarted))} restarted because the source changed.")
    return " ".join(parts)


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
        if req.workdir is None:
            # A demo that stopped before its journal and reports leaves no empty
            # folder of its own behind (session 33).
            with contextlib.suppress(OSError):
                workdir.rmdir()
    _say()
    kept = "the buckets, " if req.keep else ""
    _para(f"Demo finished in {human_seconds(time.monotonic() - started)}; both servers are "
          f"stopped. Kept in {workdir}: {kept}the journal and the reports.")
    return ExitCode.OK if verification.matched else ExitCode.MISMATCH
