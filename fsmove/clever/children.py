"""The `clever` child processes fsmove runs, and stopping them when fsmove is interrupted.

Each child runs in its own process group and is registered while it runs. When fsmove
is interrupted (Ctrl-C is a ``KeyboardInterrupt`` in the main thread; SIGTERM becomes one
in ``fsmove.cli.main``) while a child runs:

- a child waited for by the main thread is killed (its whole group) and reaped before the
  interrupt goes on: nothing the child would have done after that point happens;
- children waited for by worker threads (``parallel``) are killed by the main thread, so
  the workers return at once instead of the interrupt waiting for them.

A killed child may have sent its request already (the API may have done it); every step
fsmove journals is checked against the API's state on the rerun, never assumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_live: set[subprocess.Popen[str]] = set()
_lock = threading.Lock()


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all() -> None:
    """Kill every registered child (and its process group)."""
    with _lock:
        procs = list(_live)
    for proc in procs:
        _kill(proc)


def run(argv: Sequence[str], *, env: dict[str, str], timeout: float,
        input_text: str | None = None, cwd: str | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with stdin closed (or fed ``input_text``: values that must never be
    on a command line), capturing its output; killed on timeout or on any exception (an
    interrupt included) while waited for."""
    proc = subprocess.Popen(list(argv),
                            stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    with _lock:
        _live.add(proc)
    try:
        try:
            out, err = proc.communicate(input_text, timeout=timeout)
        except BaseException:
            _kill(proc)
            proc.communicate()
            raise
    finally:
        with _lock:
            _live.discard(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads, results in order; the first exception is raised. An
    interrupt of the main thread meanwhile kills the children they wait for."""
    if len(calls) <= 1:
        return [call() for call in calls]
    pool = ThreadPoolExecutor(max_workers=min(8, len(calls)))
    futures: list[Future[Any]] = [pool.submit(call) for call in calls]
    try:
        return [f.result() for f in futures]
    except BaseException:
        stop_all()
        for f in futures:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
