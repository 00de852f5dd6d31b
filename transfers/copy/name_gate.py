"""What the destination cannot hold under a source path, found before a byte is sent.

Two questions, asked by the march of every source file and folder (``suspect`` first: a
test on the name and its length, so an ordinary path costs no await):

* **Too long**: a server works on paths of at most PATH_MAX bytes (4,096 on Linux, its
  NUL included), and vsftpd drops a session whose command line passes 4,096 bytes. A
  tree deeper than that (an adversarial sweep: 45 folders of 120 characters) made
  vsftpd drop the session on MKD (the file retried 5 times, 31 s, then the run stopped
  on "connection lost"), proftpd took 4 minutes to fail it and sshd answered "Bad
  message". The store says how many bytes its relative paths may take
  (``LimitsPaths.path_room``); a file counts with its temporary name too (46
  characters, maybe longer than its own).
* **Rewritten**: names some FTP servers store under another name or refuse
  (``backend.RewritesNames``, ``ftp/names.py``).

And a question the march asks of a folder only when two of its names are twins
(``name_twins.py``: ``Report.txt`` and ``report.txt``, or ``café`` in NFC and in NFD, in
one source folder, or a source name and a destination name): **does the destination
tell them apart** (``folds``)? One that does not (an FTP server on Windows, a macOS or
Windows disk) holds one file for both: the second copied lands on the first, a wrong
file called copied, and ``--delete`` would remove a destination ``report.txt`` that is
in fact the source's ``Report.txt`` just copied. Asked once per run and per way names
differ, of any store: an empty scratch file is written at the destination root under
one form of a name (``CASE``; ``é`` in NFC), then the other form is looked up
(``case``; ``e`` and a combining accent), with ``Session.stat``: a server-side lookup on
every protocol. Linux servers (Clever Cloud's buckets) tell them apart; then nothing
changes.

A dry run asks none of these (each writes a scratch file): it tells ``on_note`` of each
name the real run would ask about (``unasked``), so its report does not promise a copy
the destination may refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ..backend import (
    BackendError,
    Entry,
    EntryKind,
    LimitsPaths,
    NamesInCharset,
    NotFoundError,
    RewritesNames,
    no_bytes,
)
from ..name_twins import Folding
from ..pool import SessionPool
from ..tree import TempNames, probe_scratch_name, risky_name_features

#: The longest temporary name (``tree.TempNames``), in bytes.
TEMP_NAME_BYTES = len(".fsmove.") + 16 + 1 + 16 + len(".part")


class DestinationNames:
    def __init__(self, dst: SessionPool, temps: TempNames, *, ask_server: bool,
                 on_note: Callable[[str, str], None] | None = None) -> None:
        self._dst = dst
        self._temps = temps
        store = dst.store
        self._room = store.path_room() if isinstance(store, LimitsPaths) else None
        self._charset = store.name_charset() if isinstance(store, NamesInCharset) else None
        self._rewrites = store if ask_server and isinstance(store, RewritesNames) else None
        #: A dry run's: names this store may rewrite, noted instead of asked.
        self._may_rewrite = not ask_server and isinstance(store, RewritesNames)
        self._ask_server = ask_server
        self._on_note = on_note
        self._folds: dict[Folding, asyncio.Future[bool]] = {}  # each question, once asked

    def suspect(self, entry: Entry) -> bool:
        """Whether ``refusal`` may refuse ``entry`` (cheap: most paths are not)."""
        if self._room is not None and 4 * len(entry.path) + TEMP_NAME_BYTES > self._room:
            return True  # maybe too long (a character is at most 4 bytes in UTF-8)
        if self._charset is not None and not entry.name.isascii():
            return True
        return ((self._rewrites is not None or self._may_rewrite)
                and bool(risky_name_features(entry.name)))

    def unasked(self, path: str, question: str) -> bool:
        """In a run that asks the destination nothing (a dry run): note ``question``
        about ``path`` for the real run and return True (the caller decides as if the
        answer were the plain one). False in a run that asks."""
        if self._ask_server:
            return False
        if self._on_note is not None:
            self._on_note(path, question)
        return True

    async def refusal(self, entry: Entry) -> str | None:
        """Why the destination cannot hold ``entry`` at its path, or None."""
        if self._charset is not None:
            try:
                entry.name.encode(self._charset)
            except UnicodeEncodeError:
                # Refused before a byte is sent (it was sent whole, then its placing
                # failed and left its temporary file: session 33).
                return (f"this name cannot be written in this system's file name "
                        f"charset ({self._charset}); run fsmove under a UTF-8 locale "
                        "(LC_ALL=C.UTF-8)")
        if self._room is not None:
            longest = [entry.path]
            if entry.kind is not EntryKind.DIR:
                longest.append(self._temps.for_path(entry.path))
            size = max(len(p.encode("utf-8", "surrogateescape")) for p in longest)
            if size > self._room:
                return (f"its path would be {size:,} bytes at the destination, over the "
                        f"{self._room:,} the server takes below this root (a server's "
                        "paths are at most 4,096 bytes); shorten it at the source")
        features = risky_name_features(entry.name)
        if self._may_rewrite and features:
            has = " and ".join(label for _sample, label in features)
            self.unasked(entry.path, f"its name has {has}: some FTP servers store such a "
                         "name under another or refuse it; the real run asks this one "
                         "first and refuses the name if it would not be kept as it is")
            return None
        if self._rewrites is None or not features:
            return None
        why = await self._rewritten(self._rewrites, entry.name)
        return f"{why}; rename it at the source" if why is not None else None

    async def _rewritten(self, store: RewritesNames, name: str) -> str | None:
        if store.name_known(name):
            return await store.name_refusal(name, None)
        try:
            async with self._dst.session() as s:
                return await store.name_refusal(name, s)
        except BackendError:
            return None  # no session now: the placing's own check still holds

    async def folds(self, folding: Folding) -> bool | None:
        """Whether the destination takes two names that differ by ``folding`` alone
        (case, or Unicode normalization) for one (asked once per run; False in a dry
        run, which writes nothing). None while the question cannot be answered (a
        connection failing now, a root that refuses the scratch file; asked again for
        the next twins): the march then takes the safe side of each question."""
        if not self._ask_server:
            return False
        pending = self._folds.get(folding)
        if pending is None:
            pending = self._folds[folding] = asyncio.ensure_future(self._ask(folding))
        try:
            return await asyncio.shield(pending)
        except BackendError:
            if self._folds.get(folding) is pending:
                del self._folds[folding]
            return None

    async def _ask(self, folding: Folding) -> bool:
        # ``.n<name>``: a name check's scratch file (``tree.is_probe_leftover``), so a
        # copy killed here leaves nothing a later run keeps or verify counts.
        plain = f"{probe_scratch_name()}.n"
        sent, other = ((plain + "CASE", plain + "case") if folding == "case" else
                       (plain + "\u00e9", plain + "e\u0301"))
        async with self._dst.session() as s:
            await s.write(sent, no_bytes(), create=True)
            try:
                await s.stat(other)
            except NotFoundError:
                return False
            else:
                return True
            finally:
                with contextlib.suppress(BackendError):
                    await s.remove(sent)
