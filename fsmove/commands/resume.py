"""`fsmove resume [JOB]`: rerun a journaled copy with every option it was started with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsmove.commands.copy import CopyRequest, run_copy_and_verify
from fsmove.commands.job_options import DamagedOptionsError, describe, from_record
from fsmove.commands.options import not_a_file
from fsmove.errors import FsmoveError, UsageError
from fsmove.exitcodes import ExitCode
from fsmove.output import CommandOutput, OutputSettings


@dataclass(frozen=True)
class ResumeOverrides:
    """Options given to `fsmove resume` itself (None: as the job was started)."""

    workers: int | None = None
    bwlimit: float | None = None
    timeout: float | None = None
    known_hosts: Path | None = None
    identity: tuple[Path, ...] = ()
    ca_file: Path | None = None
    quiet: bool = False
    json: bool = False
    #: Only ever turned on here (a saved job's trust settings are never loosened by
    #: leaving a flag out).
    accept_new_host_key: bool = False
    insecure_tls: bool = False


def pick_job(job: str | None) -> Path:
    """The journal to resume: the one named, else the only unfinished job.

    "Unfinished" means some run planned the copy and the last such run did not end
    ``ok``; attempts that never got that far (a refused login) are not jobs to resume,
    and with several unfinished jobs the user names one (they are listed)."""
    from fsmove.commands.status import find_journal, readable_jobs

    if job is not None:
        return find_journal(job)
    jobs = readable_jobs()
    unfinished = [st for st in jobs if st.started and st.state != "ok" and not st.running]
    if not unfinished:
        running = [st for st in jobs if st.running]
        if running:
            raise UsageError(f"no unfinished job to resume: job {running[0].path.stem} is "
                             "running now (see `fsmove status`)")
        raise UsageError("no unfinished job to resume (see `fsmove status`)")
    if len(unfinished) > 1:
        listed = "; ".join(f"{st.path.stem} ({st.state}: {st.src} -> {st.dst})"
                           for st in unfinished)
        raise UsageError(f"{len(unfinished)} unfinished jobs: {listed}; "
                         "name one: fsmove resume JOB")
    return unfinished[0].path


def run_resume(job: str | None, overrides: ResumeOverrides,
               output: CommandOutput | None = None) -> ExitCode:
    """Rerun the copy recorded in a journal, with every option it was started with
    (passwords excepted), after printing the job and those options.

    A saved ``--delete`` is replayed, after a line saying so: the user asked for a
    mirror when starting the job, and a resume that silently dropped it would end
    "ok" with files the source no longer has. Deletion still happens only at the end
    of a run in which every file copied (as in `fsmove copy`)."""
    from dataclasses import replace

    from fsmove.commands.status import readable

    path = pick_job(job)
    st = readable(path)
    if st is None:
        raise FsmoveError(f"the journal {path} cannot be read: nothing to resume "
                          "(the next `fsmove copy` of that job sets it aside)")
    try:
        saved = from_record(st.options or {})
    except DamagedOptionsError as exc:
        raise FsmoveError(
            f"the options saved with job {path.stem} are damaged ({exc}): resume will not "
            "guess them; run `fsmove copy SRC DST` with the options you want (it goes on "
            "with this job's files)") from None
    copy = replace(saved.copy, workers=overrides.workers or saved.copy.workers,
                   bwlimit=overrides.bwlimit or saved.copy.bwlimit)
    connect = replace(
        saved.connect,
        timeout=overrides.timeout or saved.connect.timeout,
        known_hosts=overrides.known_hosts or saved.connect.known_hosts,
        identity_files=overrides.identity or saved.connect.identity_files,
        # One TLS trust given now replaces the saved one, whichever it was (both at
        # once is a usage error; before session 32 a job saved with --insecure-tls
        # resumed with --ca-file failed on "internal error: ValueError").
        ca_file=(overrides.ca_file if overrides.ca_file or overrides.insecure_tls
                 else saved.connect.ca_file),
        accept_new_host_key=overrides.accept_new_host_key or saved.connect.accept_new_host_key,
        insecure_tls=(overrides.insecure_tls if overrides.ca_file or overrides.insecure_tls
                      else saved.connect.insecure_tls),
    )
    # The saved files must still be there (a --ca-file or --identity moved since): said
    # as copy says it, naming the option, not a bare "No such file or directory".
    for flag, saved_path in (("--ca-file", connect.ca_file),
                             *(("--identity", p) for p in connect.identity_files)):
        if saved_path is not None and not Path(saved_path).is_file():
            raise UsageError(f"{flag} {saved_path} (saved with the job): "
                             f"{not_a_file(Path(saved_path))}; "
                             f"give {flag} again to resume with another")
    request = CopyRequest(
        src=st.src, dst=st.dst, options=copy, connect=connect,
        src_connections=saved.src_connections, dst_connections=saved.dst_connections,
        journal=path, quiet=overrides.quiet, json=overrides.json,
        verify=saved.verify, reports=saved.reports,
    )
    out = output or CommandOutput(OutputSettings(quiet=request.quiet, json=request.json),
                                  command="resume")
    out.alert(f"fsmove: resuming job {path.stem} ({st.state}): {st.src} -> {st.dst}")
    out.alert(f"fsmove: options: {describe(request.job_options())}")
    if copy.delete:
        out.alert("fsmove: note: this job was started with --delete: destination files "
                  "that are not in the source are deleted once every file is copied")
    code = run_copy_and_verify(request, out)
    if output is None:
        out.close(code)
    return code
