"""A small process that runs one client and reports its exact resource usage.

Why not measure from the harness directly: Linux records the peak RSS of the memory a
process had *before* its first ``exec`` in that process's ``ru_maxrss``. A client forked
from the harness (a Python process with matplotlib loaded) would inherit the harness's
peak as its own. Forked from this launcher (started with ``python -S``, a few MiB), the
floor is the launcher's own small footprint.

Usage: ``python -S launcher.py RESULT.json ARGV...``. The client gets its own process
group; SIGUSR1 or SIGTERM to the launcher SIGKILLs that group. When the client ends,
RESULT.json gets its wait status, CPU times, ``ru_maxrss`` (KiB) and the monotonic start
and end times. The launcher exits with the client's code (128 + signal if killed).
Stdlib only, so that it stays small.
"""

import json
import os
import signal
import sys
import time


def main() -> int:
    result_path, argv = sys.argv[1], sys.argv[2:]
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
    report = {
        "status": status,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
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
