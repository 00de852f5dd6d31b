"""Standard streams that outlive their terminal: a write that fails with EIO (the
terminal or the ssh session hung up under a run started with SIGHUP ignored: ``nohup``,
``trap '' HUP``) sends that stream to /dev/null and the run goes on, whatever printed
the line.

Session 35 made the copy's own output and live display silent on EIO; session 36's
adversarial pass found the paths that did not go through them: ``verify``'s summary
(its report never written, exit 1 after the whole read), ``migrate``'s progress lines
("stopped at copy", exit 1), ``--json`` to a terminal. A guard at the stream, installed
once by ``fsmove.cli.main``, covers every writer, present and future. Only a stream that
is a terminal when fsmove starts is wrapped; other errors (a broken pipe, a full disk)
and every error on a file or a pipe still reach their writers, which stop the run as
before: someone is reading there, or the output is the product (``--json > file``).
"""

from __future__ import annotations

import errno
from typing import IO, Any

from fsmove.output_channels import silence


class OutlivesTerminal:
    """``stream`` with its writes and flushes made silent once its terminal is gone."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        #: The terminal hung up: everything goes to /dev/null from now on.
        self.hung_up = False

    def _guarded(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            self.hung_up = True
            silence(self._stream)  # the descriptor now goes to /dev/null
            try:
                return call(*args)  # what was buffered, and this write, go there
            except OSError:
                return None

    def write(self, text: str) -> int:
        written = self._guarded(self._stream.write, text)
        return len(text) if written is None else int(written)

    def writelines(self, lines: Any) -> None:
        self._guarded(self._stream.writelines, lines)

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` (once), each only if it is a terminal
    now: EIO on a file or a pipe is a failing disk or device, whose output may be the
    product (``--json > file``): it stops the run with its line as before (a first
    version silenced it too, exit 0 with an empty file: session 36's second pass)."""
    import sys

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, OutlivesTerminal):
            continue
        try:
            terminal = stream.isatty()
        except (OSError, ValueError):
            terminal = False
        if terminal:
            setattr(sys, name, OutlivesTerminal(stream))
