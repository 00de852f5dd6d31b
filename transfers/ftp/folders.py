"""What is in an FTP folder and what a path is: ``stat``, ``list``, and the folder checks
before a write.

Listings: ``MLSD`` when FEAT lists MLST (exact mtimes, streamed as parsed), else ``LIST
-a`` parsed by ``listing.py``. ``LIST`` times are imprecise (minutes, or days, local
time), so they are never used: once the listing's data ended, its files get exact times
from ``MDTM``, pipelined (``MDTM_WINDOW`` per write, several writes in flight: ~1 round
trip per 256 files; on a server that runs commands after the transfer, the first writes
go out before the listing's 226); ``mtime`` stays None only where the server has no
MDTM. ``stat`` is
one single-file command (``MLST``), or ``SIZE`` + ``MDTM`` pipelined in one round trip:
never a listing of the parent per file, which is what aioftp's own client does (31
files/s on vsftpd).

Links: FTP servers follow links in CWD, STOR and MKD, so a write goes only into folders
a listing of this store showed to be real folders (or that it made itself); any other
folder on the way is looked up in its parent's listing once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace

from ..backend import (
    BackendError,
    Entry,
    EntryKind,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    folders_of,
    is_safe_relpath,
    join_relpath,
    link_refusal,
    parent_of,
)
from ..tree import is_probe_leftover
from .client import ProtocolError
from .errors import reply_error
from .listing import (
    LineSplitter,
    ListingLineError,
    facts_to_entry,
    parse_facts,
    parse_list_line,
    parse_mlsx_line,
    parse_timeval,
)
from .transfer import TransferSession

#: A listing's final reply that says the server cut it short (pure-ftpd: "226 Output
#: truncated to 10000 matches"; and "226-Out of memory during globbing of PATH ... 226 0
#: matches total", its 2xx for a listing it could not make; ``_refuse_cut_listing``)...
_CUT_LISTING = re.compile(r"\b(?:output|listing|list)\s+(?:was\s+)?truncated\b"
                          r"|\btruncated\s+to\s+\d|\bout\s+of\s+memory\b", re.IGNORECASE)
#: ...once what it quotes is taken out: a server may quote the folder's path in that
#: reply (FileZilla Server: '226 Successfully transferred "/logs/output truncated"').
_QUOTED = re.compile(r'"[^"]*"')


def says_listing_cut(reply_text: str) -> bool:
    """Whether a listing's final reply says the server cut the listing short."""
    return _CUT_LISTING.search(_QUOTED.sub("", reply_text)) is not None

#: MDTM commands sent in one write after a LIST (exact mtimes for LIST-only servers)...
MDTM_WINDOW = 64
#: ...and such writes in flight at once: 1,024 MDTMs per round trip. Measured vsftpd
#: behind the 60 ms relay, a folder of 600 files: one window of 32 at a time held the
#: folder's first file back ~1.2 s (19 round trips); commands and replies are ~50 and
#: ~20 bytes, so even 1,024 in flight sit in the sockets' buffers, and a server reads
#: them in order. A folder of 5,000 files (benchmarks' ``flat`` corpus, 60 ms, 3 and 4
#: alternating runs, session 16): first byte 1.36-1.48 s with 4 ahead growing to 16,
#: 1.23-1.41 s with 16 growing to 32 (its MDTMs take 3 round trips instead of 7).
MDTM_WINDOWS_AHEAD = 16
#: In a big folder the writes in flight grow from ``MDTM_WINDOWS_AHEAD`` to this many
#: (each answered write lets two go, as TCP's slow start): 2,048 MDTMs per round trip,
#: ~100 KB of commands. Their replies are read only between writes: at ~20-50 bytes each,
#: at most ~100 KB wait, within a Linux socket's first receive buffer (128 KiB) and the
#: server's send buffer, so neither side blocks the other (and a write that does wait
#: is under the session timeout: ``FtpClient._drain``).
#: See benchmarks/README.md, "A folder of 5,000 files".
MDTM_WINDOWS_MAX = 32
#: Most entries one folder listing may hold: a server streaming an endless listing
#: ends in an error at this count, with memory bounded (the LIST path and the walk
#: hold a folder's entries; ~250 bytes each).
MAX_LISTING_ENTRIES = 1_000_000


class FolderSession(TransferSession):
    """The metadata layer of an FTP session: stat, listings, folder checks."""

    async def stat(self, path: str) -> Entry:
        if path == "" and self._store.root_is_folder:
            return Entry(path="", kind=EntryKind.DIR)  # the probe wrote into it (store.py)
        abs_path = self._store.abs_path(path)
        async with self._op("stat", path):
            if self._features.mlst:
                return await self._stat_mlst(abs_path, path)
            return await self._stat_size_mdtm(abs_path, path)

    async def _stat_mlst(self, abs_path: str, path: str) -> Entry:
        reply = await self.raw_command(f"MLST {abs_path}")
        if reply.code != 250:
            raise await self._refusal(reply, abs_path=abs_path, path=path, action="stat")
        for line in reply.lines[1:-1] or reply.lines:
            text = line[1:] if line.startswith(" ") else line
            facts_text, _sep, _name = text.partition(" ")
            facts = parse_facts(facts_text)
            if "type" in facts:
                entry = facts_to_entry(facts, path)
                if entry is None:  # "cdir": the folder itself
                    return Entry(path=path, kind=EntryKind.DIR, mtime=_mtime_of(facts))
                return Entry(path=path, kind=entry.kind, size=entry.size, mtime=entry.mtime)
        raise ProtocolError(f"MLST reply without facts: {reply.text!r}")

    async def _stat_size_mdtm(self, abs_path: str, path: str) -> Entry:
        after, self._after_read = self._after_read, None
        if after is not None and after[0] == path and after[1][0].code == 213:
            # Asked along with this session's download of the file, after its last
            # byte (file_io.py): the same answers a round trip later would give.
            size_reply, mdtm_reply = after[1]
        elif path == "" and self._pipelining and self._home is not None:
            # A root is a folder far more often than not: the folder check (CWD there
            # and back) goes in the same write, one round trip for the whole stat.
            size_reply, mdtm_reply, there, back = await self.raw_commands(
                [f"SIZE {abs_path}", f"MDTM {abs_path}", *self.folder_check_lines(abs_path)])
            if size_reply.code != 213 and not (
                    size_reply.code in (421, 530) or 400 <= size_reply.code < 500):
                if await self.folder_check_result(abs_path, there, back):
                    return Entry(path=path, kind=EntryKind.DIR)
                raise NotFoundError(f"stat {path!r} on {self.where}: no such file or "
                                    f"folder (server replied {size_reply.text!r})", path=path)
        else:
            # Both single-file commands in one write, one round trip.
            await self._client.send_many([f"SIZE {abs_path}", f"MDTM {abs_path}"])
            size_reply = await self._client.reply()
            mdtm_reply = await self._client.reply()
        if size_reply.code == 213:
            try:
                size = int(size_reply.last.strip())
            except ValueError as exc:
                raise ProtocolError(f"bad SIZE reply {size_reply.text!r}") from exc
            mtime = None
            if mdtm_reply.code == 213:
                try:
                    mtime = parse_timeval(mdtm_reply.last)
                except ValueError:
                    mtime = None
            return Entry(path=path, kind=EntryKind.FILE, size=size, mtime=mtime)
        if size_reply.code in (421, 530) or 400 <= size_reply.code < 500:
            raise reply_error(size_reply, where=self.where, action="stat", path=path)
        if await self.raw_is_dir(abs_path):
            return Entry(path=path, kind=EntryKind.DIR)
        raise NotFoundError(f"stat {path!r} on {self.where}: no such file or folder "
                            f"(server replied {size_reply.text!r})", path=path)

    async def list(self, path: str) -> AsyncIterator[Entry]:
        abs_path = self._store.abs_path(path)
        async with self._op("list", path):
            entries = self._listing(abs_path, path, exact_times=True)
            try:
                async for entry in entries:
                    yield entry
            finally:
                # Closed here, inside the guard: a consumer that stops early gets the
                # transfer aborted before the session is free again.
                await entries.aclose()

    async def names_in(self, path: str, *, prefix: str = "") -> list[str]:
        """The names listed in folder ``path`` that start with ``prefix``, as the
        server shows them (no times asked: a LIST-only server gets no MDTMs)."""
        abs_path = self._store.abs_path(path)
        async with self._op("list", path):
            return [e.name async for e in self._listing(abs_path, path, exact_times=False)
                    if e.name.startswith(prefix)]

    async def kinds_in(self, path: str) -> dict[str, EntryKind]:
        """``backend.ListsKinds``: one listing, no times asked."""
        abs_path = self._store.abs_path(path)
        async with self._op("list", path):
            return {e.path: e.kind
                    async for e in self._listing(abs_path, path, exact_times=False)}

    def _remember(self, parent: str, entry: Entry) -> None:
        """Note what a listing showed: real folders and links (only below folders known
        real themselves: a folder reached through a link proves nothing)."""
        store = self._store
        if parent and parent not in store.real_dirs:
            return
        if entry.kind is EntryKind.DIR:
            store.real_dirs.add(entry.path)
            store.links.discard(entry.path)
        else:
            store.real_dirs.discard(entry.path)
            if entry.kind is EntryKind.LINK:
                store.links.add(entry.path)
            else:
                store.links.discard(entry.path)

    async def _listing(
        self, abs_path: str, path: str, *, exact_times: bool
    ) -> AsyncIterator[Entry]:
        """The entries of one folder (no guard: the caller holds the session)."""
        self._transfer_reply = None
        mlsd = self._features.mlst
        if mlsd:
            command = "MLSD"
        else:
            command = "LIST" if self._list_plain else "LIST -a"
        try:
            reader, writer = await self._start_transfer(
                command, rest=0, abs_path=abs_path, path=path, action="list")
        except BackendError as exc:
            # "-a" refused (500/501), or taken as part of the path: pyftpdlib answers
            # "LIST -a /f" with "550 No such file or directory". Plain LIST decides.
            if command != "LIST -a" or not isinstance(exc, PermanentError | NotFoundError):
                raise
            command = "LIST"
            reader, writer = await self._start_transfer(
                command, rest=0, abs_path=abs_path, path=path, action="list")
            self._list_plain = True
        parse = parse_mlsx_line if mlsd else parse_list_line
        splitter = LineSplitter()
        # MLSD entries stream out as they are parsed. LIST entries are held until the
        # listing ends: LIST cannot tell a missing folder or a file from a folder
        # ("LIST -a" shows "." for a folder, else a CWD probe decides), and its times
        # are imprecise, so exact ones come from MDTM once the data connection closed.
        seen_dot = False
        held: list[Entry] = []
        count = 0
        finished = False
        try:
            while True:
                chunk = await self._read_block(reader)
                lines = splitter.feed(chunk) if chunk else splitter.finish()
                batch: list[Entry] = []
                for line in lines:
                    listed = _parse_line(parse, line, where=self.where, path=path)
                    if listed is None:
                        continue
                    if listed.path in (".", ".."):
                        seen_dot = True
                        continue
                    count += 1
                    if count > MAX_LISTING_ENTRIES:
                        raise PermanentError(
                            f"list {path!r} on {self.where}: more than "
                            f"{MAX_LISTING_ENTRIES} entries in one folder; the listing "
                            "was stopped (a broken or hostile server?)", path=path)
                    entry = _entry_of(path, listed, where=self.where)
                    self._remember(path, entry)
                    batch.append(entry)
                if mlsd:
                    for entry in batch:
                        yield entry
                else:
                    held.extend(batch)
                if not chunk:
                    break
            writer.close()
            finished = True
            # A LIST-only server: the files' MDTMs ride with the next port's request,
            # before the listing's 226 (on a server known to run them after it).
            windows = self._mdtm_windows(held) if exact_times and seen_dot else []
            along = [line for window in windows[:MDTM_WINDOWS_AHEAD]
                     for line in self._mdtm_lines(held, window)]
            if along and await self._finish_sending_along(path=path, action="list",
                                                          along=along):
                sent_along = min(MDTM_WINDOWS_AHEAD, len(windows))
            else:
                sent_along = 0
                await self._finish_transfer(path=path, action="list", next_passive=True)
            self._refuse_cut_listing(path)
            await self._open_ahead()
        except BaseException as exc:
            if not finished:
                await self._after_failed_transfer(writer, reader, exc)
            raise
        if path == "" or path in self._store.real_dirs:
            self._store.complete_dirs.add(path)
        if mlsd:
            return
        if seen_dot:
            self._store.lists_dots = True
        else:
            if not await self.raw_is_dir(abs_path):
                raise NotFoundError(f"list {path!r} on {self.where}: no such folder",
                                    path=path)
            # A folder that can be entered but not read (mode 0711): vsftpd lists it as
            # one entry, itself (taken for a subfolder of the same name, a phantom
            # "logs/logs" was made and the real files never mentioned), other servers
            # list nothing (taken for an empty folder).
            if not self._list_plain and (self._store.lists_dots
                                         or _lists_itself(held, abs_path)):
                raise PermissionDeniedError(
                    f"list {path!r} on {self.where}: the server shows none of this "
                    "folder's content (it can be entered, not read: no read "
                    "permission?)", path=path)
        if not exact_times:
            for entry in held:
                yield entry
            return
        if not seen_dot:  # else computed at the listing's end
            windows = self._mdtm_windows(held)
        async with aclosing(self._with_mdtm(held, windows, sent=sent_along)) as timed:
            async for entry in timed:
                yield entry

    def _refuse_cut_listing(self, path: str) -> None:
        """A listing the server says it cut short is an error, never a folder's whole
        content. pure-ftpd stops every LIST, MLSD and NLST at 10,000 entries by default
        (``--limitrecursion 10000:5``) and ends it with "226 Output truncated to 10000
        matches": taken as whole, the files past it were never copied nor verified, and
        ``--delete`` removed their copies at the destination, the run "ok" (measured on
        pure-ftpd 1.0.50 with a limit of 100: 51 of 150 destination files deleted,
        verify "identical"). Permanent: a retry gets the same cut."""
        reply = self._transfer_reply
        if reply is not None and says_listing_cut(reply.text):
            raise PermanentError(
                f"list {path!r} on {self.where}: the server cut this folder's listing "
                f"short ({reply.text.strip()!r}), so its files cannot all be seen; "
                "raise the server's listing limit (pure-ftpd: --limitrecursion) or "
                "copy over SFTP", path=path)

    async def _listed_kind(self, path: str) -> EntryKind | None:
        """What ``path`` is according to a listing of its folder (None: not there)."""
        parent = parent_of(path)
        kind: EntryKind | None = None
        async for entry in self._listing(self._store.abs_path(parent), parent,
                                         exact_times=False):
            if entry.path == path:
                kind = entry.kind  # read on to the end: the session stays in step
        return kind

    async def _check_folders(self, path: str, *, itself: bool = False) -> list[str]:
        """Refuse a link (or a file) where a folder of ``path`` should be (``itself``:
        ``path`` too); return the folders found missing, outermost first. Folders this
        store listed or made are known; any other is looked up in its parent's listing
        (once: the answer is remembered)."""
        store = self._store
        folders = folders_of(path) + ([path] if itself else [])
        for i, folder in enumerate(folders):
            if folder in store.real_dirs:
                continue
            if folder in store.links:
                raise link_refusal(folder)
            if parent_of(folder) in store.complete_dirs:
                return folders[i:]  # its folder was listed whole (or made): not there
            kind = await self._listed_kind(folder)
            if kind is None:
                return folders[i:]
            if kind is EntryKind.LINK:
                raise link_refusal(folder)
            if kind is not EntryKind.DIR:
                raise PermanentError(f"{folder}: exists and is not a folder", path=folder)
            store.real_dirs.add(folder)
        return []

    def _mdtm_windows(self, entries: list[Entry]) -> list[list[int]]:
        """The listed files that get an MDTM, by index, ``MDTM_WINDOW`` per write (none
        on a server without MDTM)."""
        if not self._features.mdtm:
            return []
        # A write probe's scratch file needs no time: it is never compared, only left
        # out or removed (and the one of a probe still running, listed in the root
        # while it runs, cost a round trip before the first file was decided).
        # Nor does a name no command can carry (CR, LF, NUL: a command line ends at CR
        # LF): the walk refuses that entry alone, where asking its MDTM failed the
        # whole folder ("unsafe path", seen on vsftpd with a file named "bad\rname").
        # (Only where fsmove writes: on a source, or for verify, such a name is the
        # user's file, compared by its time like any other.)
        probes = not self._store.read_only
        files = [i for i, e in enumerate(entries)
                 if e.kind is EntryKind.FILE and not (probes and is_probe_leftover(e.path))
                 and is_safe_relpath(e.path)]
        return [files[at : at + MDTM_WINDOW] for at in range(0, len(files), MDTM_WINDOW)]

    def _mdtm_lines(self, entries: list[Entry], window: list[int]) -> list[str]:
        return [f"MDTM {self._store.abs_path(entries[i].path)}" for i in window]

    async def _with_mdtm(self, entries: list[Entry], windows: list[list[int]], *,
                         sent: int = 0) -> AsyncIterator[Entry]:
        """The listed entries with exact mtimes for files: MDTM, ``MDTM_WINDOW``
        commands per write and ``MDTM_WINDOWS_AHEAD`` writes in flight, so a folder
        costs one round trip per ``MDTM_WINDOW * MDTM_WINDOWS_AHEAD`` files rather than
        one per file (replies come back in the order the commands went; each answered
        window lets two more go, up to ``MDTM_WINDOWS_MAX`` in flight). ``sent``: the
        first windows already went out (with the listing's end); their replies are the
        next ones on the connection. Entries without an MDTM come first, then each
        window's files as soon as its replies are read: a big folder's first files are
        known (and can be copied) while the rest are still being asked about."""
        timed = {i for window in windows for i in window}
        answered = 0

        async def send_next() -> None:
            nonlocal sent
            await self._client.send_many(self._mdtm_lines(entries, windows[sent]))
            sent += 1

        try:
            for i, entry in enumerate(entries):
                if i not in timed:
                    yield entry
            while sent < min(MDTM_WINDOWS_AHEAD, len(windows)):
                await send_next()
            for window in windows:
                out: list[Entry] = []
                for i in window:
                    reply = await self._client.reply()
                    entry = entries[i]
                    if reply.code == 213:
                        try:
                            entry = replace(entry, mtime=parse_timeval(reply.last))
                        except ValueError:
                            pass
                    out.append(entry)
                answered += 1
                for _ in range(2):
                    if sent < len(windows) and sent - answered < MDTM_WINDOWS_MAX:
                        await send_next()
                for entry in out:
                    yield entry
        finally:
            if answered < sent:  # windows whose replies were all read, of those sent
                # Left early (the reader stopped, or an error): replies still owed
                # would be read as the next command's.
                self._mark_broken("a listing was left with MDTM replies unread")


def _mtime_of(facts: dict[str, str]) -> float | None:
    try:
        return parse_timeval(facts["modify"]) if "modify" in facts else None
    except ValueError:
        return None



def _parse_line(
    parse: Callable[[bytes], Entry | None], line: bytes, *, where: str, path: str
) -> Entry | None:
    try:
        return parse(line)
    except ListingLineError as exc:
        raise PermanentError(f"list {path!r} on {where}: {exc}; this server's listing "
                             "format is not supported", path=path) from exc



def _lists_itself(held: list[Entry], abs_path: str) -> bool:
    """Whether a listing of ``abs_path`` without its "." is one folder of its own name:
    vsftpd's answer for a folder it cannot open (it lists the path as ``ls -d``
    would)."""
    if len(held) != 1 or held[0].kind is not EntryKind.DIR:
        return False
    name = abs_path.rstrip("/").rsplit("/", 1)[-1]
    return bool(name) and held[0].path.rsplit("/", 1)[-1] == name


def _entry_of(parent: str, listed: Entry, *, where: str) -> Entry:
    """The listed entry (its path: the name as listed) joined to its folder. A hostile
    name (with "/", NUL, "..") is not refused here, which would lose its honest
    siblings: ``walk`` refuses and reports that one entry, and every operation re-checks
    paths with ``check_relpath`` anyway."""
    # Built whole: ``dataclasses.replace`` costs several times more, per listed entry.
    return Entry(path=join_relpath(parent, listed.path), kind=listed.kind, size=listed.size,
                 mtime=listed.mtime, mode=listed.mode)
