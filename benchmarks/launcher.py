"""A small process that runs one client and reports its exact resource usage.

Why not measure from the harness directly: Linux records the peak RSS of the memory a
process had *before* its first ``exec`` in that process's ``ru_maxrss``. A client forked
from the harness (a Python process with matplotlib loaded) would inherit the harness's
peak as its own. Forked from this launcher (started with ``python -S``, a few MiB), the
floor is the launcher's own small footprint.

CPU covers the client's whole process tree: the launcher is a child subreaper
(``PR_SET_CHILD_SUBREAPER``), so a helper process the client leaves behind unwaited
(an ``ssh`` on a pseudo-terminal, say) is re-parented here instead of to init, and is
reaped here when it ends; its CPU then counts in ``RUSAGE_CHILDREN`` with the client's
and with every descendant its parent waited for. What the client alone used (its
``wait4``, waited-for children included) is reported beside it.

Usage: ``python -S launcher.py RESULT.json ARGV...``. The client gets its own process
group; SIGUSR1 or SIGTERM to the launcher SIGKILLs that group. When the client ends,
its group is killed, the descendants left are given ``_REAP_GRACE_S`` to end (then
SIGKILLed) and reaped, and RESULT.json gets the client's wait status, CPU times (tree
and client), ``ru_maxrss`` (KiB, the largest single process) and the monotonic start and
end times (the client's end). The launcher exits with the client's code (128 + signal if
killed). Stdlib only, so that it stays small.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_REAP_GRACE_S = 5.0


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _my_children() -> list[int]:
    """Processes whose parent is this launcher (from /proc)."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(name))
    return found


def _reap_rest() -> None:
    """Wait for every descendant left (re-parented here), SIGKILLing the slow ones."""
    deadline = time.monotonic() + _REAP_GRACE_S
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        if time.monotonic() > deadline:
            for child in _my_children():
                try:
                    os.kill(child, signal.SIGKILL)
                except OSError:
                    pass
            deadline = float("inf")
        time.sleep(0.02)


def main() -> int:
    result_path, argv = sys.argv[1], sys.argv[2:]
    subreaper = _become_subreaper()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"launcher: cannot run {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child already did it, or already exec'd

    def kill_client(_signum: int, _frame: object) -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass

    signal.signal(signal.SIGUSR1, kill_client)
    signal.signal(signal.SIGTERM, kill_client)
    _, status, usage = os.wait4(pid, 0)
    ended = time.monotonic()
    kill_client(0, None)  # whatever the client left running in its group
    _reap_rest()
    tree = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "status": status,
        "user": tree.ru_utime,
        "sys": tree.ru_stime,
        "client_user": usage.ru_utime,
        "client_sys": usage.ru_stime,
        "subreaper": subreaper,
        "maxrss_kib": usage.ru_maxrss,
        "started": started,
        "ended": ended,
    }
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, result_path)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
