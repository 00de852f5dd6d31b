"""The live display of a copy on a terminal, drawn with rich.

Like ``rclone -P``: totals on the first line, a bar the width of the terminal, the
file counts, then the transfers in flight, one line each, their paths shortened in the
middle to fit. Every line is built to the terminal's width (80 columns is the design
width); nothing has a fixed width that starves the bar.

Why rich and not tqdm (measured in ``tests/test_output_modes.py``'s comments and the
README, "Output"): tqdm draws one line per bar, and its multi-bar mode (``position=``)
leaves stale bars behind when bars come and go, which is exactly what transfers in
flight do; its ``unit_divisor=1024`` still labels MB. rich's ``Live`` redraws a block of
lines in place, prints messages above it (``print_above``), and erases itself on stop
(``transient``), so a fatal error or Ctrl-C line never lands on a bar and no stale bar
is drawn again. Refreshes are driven by the copy's own ticker (``refresh``), not by a
thread: the counters are only ever read on the event loop that writes them.
"""

from __future__ import annotations

import contextlib
import errno
import termios
import time
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from fsmove.output_channels import OutputClosedError, silence
from fsmove.printable import printable
from fsmove.progress import (
    CopyProgress,
    VerifyProgress,
    human_bytes,
    human_rate,
    human_seconds,
    verify_line,
)

#: Transfers shown at most (rclone shows 4 by default); the rest are counted.
MAX_TRANSFERS = 6


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by an ellipsis in the middle (the folder and
    the file name both stay readable)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 3
    tail = width - 1 - head
    return text[:head] + "…" + text[-tail:]


Frame = Callable[[int], list[Text]]


class LiveDisplay:
    """Draws ``frame(width)`` (lines, each at most ``width`` columns) in place."""

    def __init__(self, stream: IO[str], frame: Frame) -> None:
        self._console = Console(file=stream, force_terminal=True, highlight=False,
                                soft_wrap=False, emoji=False, markup=False)
        self._frame = frame
        self._live = Live(console=self._console, auto_refresh=False, transient=True,
                          redirect_stdout=False, redirect_stderr=False,
                          get_renderable=self._render)
        self._running = False
        self._last_refresh = 0.0
        self._saved_tty: tuple[int, list[Any]] | None = None
        #: The terminal went away (``_drawn``): nothing is drawn any more.
        self._gone = False

    def start(self) -> None:
        self._quiet_keys()
        self._running = True
        self._drawn(lambda: self._live.start(refresh=True))

    def _quiet_keys(self) -> None:
        """While the display runs, keys typed (and the ``^C`` a Ctrl-C echoes) are not
        echoed: an echo moves the cursor under rich's feet, and the erase at the end
        would then leave a stale line behind. Restored by ``stop``."""
        try:
            fd = self._console.file.fileno()
            saved = termios.tcgetattr(fd)
        except (AttributeError, OSError, ValueError, termios.error):
            return
        quiet = list(saved)
        quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self._saved_tty = (fd, saved)

    def _restore_keys(self) -> None:
        if self._saved_tty is not None:
            fd, saved = self._saved_tty
            self._saved_tty = None
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSANOW, saved)

    def _drawn(self, draw: Callable[[], object]) -> None:
        """``draw()``, its terminal gone: a hung-up terminal (EIO: the window or the
        ssh session closed) leaves the display silent and the run going on (under
        ``nohup``/``trap '' HUP`` the user asked it to outlive the terminal; else the
        SIGHUP interrupts it, exit 130); any other write error stops the run as an
        unwritable stderr does. Before session 35 the EIO ended either run as "fsmove:
        error: Input/output error", exit 1."""
        if self._gone:
            return
        try:
            draw()
        except (OSError, ValueError) as exc:
            self._gone, self._running = True, False
            silence(self._console.file)
            if not (isinstance(exc, OSError) and exc.errno == errno.EIO):
                raise OutputClosedError("standard error", error=exc if isinstance(
                    exc, OSError) else None) from None

    def refresh(self) -> None:
        if self._running:
            self._last_refresh = time.monotonic()
            self._drawn(self._live.refresh)

    def refresh_at_most_every(self, seconds: float) -> None:
        """For callers without a ticker: redraw only if ``seconds`` passed."""
        if time.monotonic() - self._last_refresh >= seconds:
            self.refresh()

    def print_above(self, text: str) -> None:
        """A message line above the display (or plain, once stopped)."""
        self._drawn(lambda: self._console.print(Text(printable(text)), soft_wrap=True))

    def stop(self) -> None:
        """Erase the display for good: nothing draws it again."""
        if self._running:
            self._running = False
            try:
                self._drawn(self._live.stop)
            finally:
                self._restore_keys()

    # -- rendering -----------------------------------------------------------------
    def _render(self) -> Group:
        # One column short of the terminal: a line filling the last column leaves the
        # cursor in the "pending wrap" state, where any output lands a line lower.
        return Group(*self._frame(max(20, self._console.width - 1)))


def _bar(fraction: float, width: int) -> Text:
    filled = round(fraction * width)
    bar = Text("━" * filled, style="green")
    bar.append("─" * (width - filled), style="bright_black")
    return bar


def copy_frame(p: CopyProgress, *, title: str = "Copying") -> Frame:
    """A copy: totals, a bar, file counts, the transfers in flight."""

    def frame(width: int) -> list[Text]:
        if p.planned is None:
            return [Text(shorten_middle(
                f"Listing source and destination… {human_seconds(p.elapsed)}", width))]
        rate = p.rate()
        eta = p.eta(rate)
        head = (f"{title} {human_bytes(p.bytes_sent)} of "
                f"{human_bytes(p.bytes_to_send)}  {p.fraction:>4.0%}  {human_rate(rate)}  "
                f"ETA {human_seconds(eta) if eta is not None else '-'}")
        counts = [f"Files {p.files_done} of {p.planned.files_to_copy}"]
        if p.planned.files_skipped:
            counts.append(f"{p.planned.files_skipped} already there")
        if p.files_failed:
            counts.append(f"{p.files_failed} failed")
        if p.retries:
            counts.append(f"{p.retries} retries")
        counts.append(f"elapsed {human_seconds(p.elapsed)}")
        lines = [Text(shorten_middle(head, width)), _bar(p.fraction, width)]
        if p.planned.files_to_copy:
            lines.append(Text(shorten_middle(" · ".join(counts), width)))
        transfers = sorted(p.in_flight.values(), key=lambda t: -t.size)
        for t in transfers[:MAX_TRANSFERS]:
            if t.size and p.file_bytes_known:
                right = f"  {t.done / t.size:>4.0%} of {human_bytes(t.size):>9}"
            else:
                right = f"  {human_bytes(t.size):>9}"
            room = max(8, width - len(right) - 2)
            shown = shorten_middle(printable(t.path), room)
            lines.append(Text(f"  {shown:<{room}}{right}"[:width]))
        if len(transfers) > MAX_TRANSFERS:
            lines.append(Text(f"  and {len(transfers) - MAX_TRANSFERS} more in flight"))
        return lines

    return frame


def verify_frame(v: VerifyProgress) -> Frame:
    """A verification: bytes read on both sides, paths checked of those listed,
    problems found so far. The bar is the share of listed paths already checked."""

    def frame(width: int) -> list[Text]:
        return [Text(shorten_middle(verify_line(v, short=True), width)),
                _bar(v.fraction, width)]

    return frame
