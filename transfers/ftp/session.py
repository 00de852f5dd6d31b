"""``FtpSession``: one logged-in FTP control connection, the Session protocol whole.

This top layer holds the namespace operations (mkdir, rename, ``place``, remove, rmdir,
set mtime); the layers below it are ``file_io`` (read, write), ``folders`` (stat,
listings, folder checks), ``transfer`` (data connections) and ``control`` (the guard,
health and raw commands). Every command carries an absolute path joined from the store
root, so the working directory never matters (and is restored after a ``CWD`` probe).

``place`` pipelines ``SITE CHMOD``, the mtime, ``RNFR``/``RNTO`` and the checks of the
placed file in one write where the server keeps order (it answered FEAT); FTP
acknowledges a file only with the 226 of its STOR, so the placed file is checked at its
final name.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Awaitable, Callable

from ..backend import (
    AttributesNotKeptError,
    BackendError,
    EntryKind,
    LinkRefusedError,
    ModeNotKeptError,
    NameRefusedError,
    NotFoundError,
    PermanentError,
    TimeNotKeptError,
    TransientError,
    UnsupportedError,
    is_private_mode,
    link_refusal,
    parent_of,
)
from ..together import mark_seen
from .client import Reply
from .errors import (
    error_for_550,
    looks_denied,
    looks_like_name_refused,
    looks_missing,
    reply_error,
)
from .file_io import FileSession
from .listing import facts_to_entry, format_timeval, parse_facts
from .probe import offers_site_chmod


def _placing_batch(abs_src: str, abs_dst: str, chmod: str | None, method: str | None,
                   mtime: float | None) -> list[str]:
    """``SITE CHMOD`` (where offered), the time, ``RNFR``/``RNTO``: one write where the
    server reads commands in order (RNTO after a refused RNFR is answered 503 and
    renames nothing)."""
    lines = [f"RNFR {abs_src}", f"RNTO {abs_dst}"]
    if method is not None:
        assert mtime is not None
        lines.insert(0, f"{method} {format_timeval(mtime)} {abs_src}")
    if chmod is not None:
        lines.insert(0, chmod)
    return lines


class FtpSession(FileSession):
    """One logged-in FTP control connection (one operation at a time)."""

    async def login_folder(self) -> str | None:
        """``backend.KnowsLoginFolder``: the ``PWD`` of the store's first login."""
        return self._store.home

    def server_root(self) -> str:
        return self._store.root

    async def real_path(self, abs_path: str) -> str | None:
        """``backend.ResolvesPaths``."""
        async with self._op("resolve", ""):
            return await self.raw_resolved_folder(abs_path)

    async def mkdir(self, path: str, *, mode: int | None = None) -> None:
        abs_path = self._store.abs_path(path)
        async with self._op("mkdir", path):
            if not path:
                await self._mkdirs(abs_path, path)  # the root: the user's own path
                return
            for folder in await self._check_folders(path, itself=True):
                reply = await self.raw_command(f"MKD {self._store.abs_path(folder)}")
                if not reply.is_success():
                    if not 500 <= reply.code < 600:
                        raise reply_error(reply, where=self.where, action="mkdir",
                                          path=folder)
                    kind = await self._listed_kind(folder)  # made meanwhile?
                    if kind is EntryKind.LINK:
                        raise link_refusal(folder)
                    if kind is not EntryKind.DIR:
                        if looks_like_name_refused(reply) or (
                                reply.code == 553 and not looks_denied(reply)):
                            raise NameRefusedError(
                                f"the server will not make a folder of this name "
                                f"(mkdir {folder!r} on {self.where}: {reply.text!r}); "
                                "rename it at the source", path=folder)
                        if kind is None and "exist" in reply.text.lower():
                            # proftpd's MLSD leaves out a dangling link: the name is
                            # taken by something no listing shows. That folder fails,
                            # not the whole copy (it used to stop every rerun too).
                            raise LinkRefusedError(
                                f"{folder}: the server says something of this name "
                                f"exists ({reply.text!r}) that its listing does not show "
                                "(a dangling symbolic link?): nothing is written there; "
                                "remove it at the destination", path=folder)
                        raise PermanentError(
                            f"mkdir {folder!r} on {self.where}: cannot create it (server "
                            f"replied {reply.text!r}); a file may be in the way, or the "
                            "parent is not writable", path=folder)
                self._store.real_dirs.add(folder)
                if reply.is_success():
                    self._store.complete_dirs.add(folder)  # new, so empty
                    if folder == path and mode is not None:
                        # Made private before anything goes in (where SITE CHMOD is
                        # offered; a refusal leaves the server's default).
                        chmod = await self._chmod_line(mode, self._store.abs_path(folder))
                        if chmod is not None:
                            self._chmod_done(await self.raw_command(chmod))

    async def _mkdirs(self, abs_path: str, path: str) -> None:
        reply = await self.raw_command(f"MKD {abs_path}")
        if reply.is_success():
            return
        if not 500 <= reply.code < 600:
            raise reply_error(reply, where=self.where, action="mkdir", path=path)
        if await self.raw_is_dir(abs_path):
            return
        parent = posixpath.dirname(abs_path)
        if parent != abs_path:
            # Create the parent unless it exists now (another session may have made it
            # since our MKD failed), then try again.
            if not await self.raw_is_dir(parent):
                await self._mkdirs(parent, path)
            reply = await self.raw_command(f"MKD {abs_path}")
            # another session may have created it meanwhile
            if reply.is_success() or await self.raw_is_dir(abs_path):
                return
        if reply.code == 550 and not looks_denied(reply):
            raise PermanentError(
                f"cannot create the folder {abs_path!r} on {self.where} (server replied "
                f"{reply.text!r}); a file may be in the way, or the parent is not writable",
                path=path)
        raise reply_error(reply, where=self.where, action="mkdir", path=path)

    async def rename(self, src: str, dst: str) -> None:
        abs_src = self._store.abs_path(src)
        abs_dst = self._store.abs_path(dst)
        async with self._op("rename", src):
            reply = await self.raw_command(f"RNFR {abs_src}")
            if reply.code != 350:
                raise await self._refusal(reply, abs_path=abs_src, path=src, action="rename")
            reply = await self.raw_command(f"RNTO {abs_dst}")
            if not reply.is_success():
                raise reply_error(reply, where=self.where, action=f"rename {src!r} to",
                                  path=dst)

    async def place(self, temp: str, final: str, *, mtime: float | None,
                    mode: int | None = None, size: int | None = None) -> None:
        """Mode (``SITE CHMOD``, where offered), time, rename; then, since FTP
        acknowledges a file only with the final 226 of its STOR, the placed file is
        checked at its final name: ``size`` bytes there and the temporary name gone.
        A server that kept part of a STOR, answered RNTO without renaming, or stored
        the file under another name (pure-ftpd turns a tab into "_") fails the file
        (retryable) instead of letting it pass for copied."""
        abs_src = self._store.abs_path(temp)
        abs_dst = self._store.abs_path(final)
        method = self._mtime_method(temp) if mtime is not None else None
        async with self._op("rename", temp):
            chmod = await self._chmod_line(mode, abs_src)
            if not self._features.answered:
                # One command at a time (the server may not keep order).
                chmod_reply: Reply | None = None
                if chmod is not None:
                    chmod_reply = await self.raw_command(chmod)
                    self._chmod_done(chmod_reply)
                time_refused: Reply | None = None
                if method is not None:
                    assert mtime is not None
                    mtime_reply = await self.raw_command(
                        f"{method} {format_timeval(mtime)} {abs_src}")
                    if not mtime_reply.is_success():
                        if mtime_reply.code not in (500, 501, 502, 504):
                            raise await self._refusal(mtime_reply, abs_path=abs_src,
                                                      path=temp, action="set mtime")
                        # This time refused (proftpd: one before 1970): the file is
                        # placed all the same, and noted (``TimeNotKeptError``).
                        time_refused = mtime_reply
                rnfr = await self.raw_command(f"RNFR {abs_src}")
                if rnfr.code != 350:
                    raise await self._refusal(rnfr, abs_path=abs_src, path=temp,
                                              action="rename")
                rnto = await self.raw_command(f"RNTO {abs_dst}")
                if not rnto.is_success():
                    raise reply_error(rnto, where=self.where, action=f"rename {temp!r} to",
                                      path=final)
                if size is not None:
                    await self._check_placed(temp, final, size, checks=None)
                self._attributes_kept(final, mode=mode, chmod=chmod, chmod_reply=chmod_reply,
                                      mtime_reply=time_refused)
                return
            # One write, one round trip: the server reads them in order (it answered
            # FEAT). RNTO after a refused RNFR is answered 503 and renames nothing.
            lines = _placing_batch(abs_src, abs_dst, chmod, method, mtime)
            checks = self._placed_checks(abs_src, abs_dst) if size is not None else []
            lines += checks
            # With no data connection ready for this session's next transfer, ask for
            # its port in the same write: it comes back with the rest.
            ahead = self._can_open_ahead()
            if ahead:
                assert self._client.passive_mode is not None
                lines.append(self._client.passive_mode)
            await self._client.send_many(lines)
            chmod_reply = await self._client.reply() if chmod is not None else None
            mtime_reply = await self._client.reply() if method is not None else None
            rnfr = await self._client.reply()
            rnto = await self._client.reply()
            check_replies = [await self._client.reply() for _line in checks]
            if ahead:
                self._on_ahead_reply(await self._client.reply())
            if 421 in (rnfr.code, rnto.code):
                self._mark_broken("the server closed the session (421)")
            if chmod_reply is not None:
                self._chmod_done(chmod_reply)
            if rnfr.code != 350:
                raise await self._refusal(rnfr, abs_path=abs_src, path=temp, action="rename")
            if not rnto.is_success():
                raise reply_error(rnto, where=self.where, action=f"rename {temp!r} to",
                                  path=final)
            if size is not None:
                await self._check_placed(temp, final, size, checks=check_replies)
            self._attributes_kept(final, mode=mode, chmod=chmod, chmod_reply=chmod_reply,
                                  mtime_reply=mtime_reply)

    async def place_started(
        self, temp: str, final: str, *, mtime: float | None, mode: int | None = None,
        size: int | None = None,
    ) -> Callable[[], Awaitable[None]] | None:
        """``place`` without holding the session for its round trip: the same batch
        (mode, time, rename, the checks of the placed file) is sent, its replies are
        read in the background in order, and this returns at once with a function that
        waits for them and raises as ``place`` would. Meanwhile the session serves the
        next operation, whose commands follow the batch on the connection (a
        destination session spends one round trip per small file instead of two).
        Only where the replies alone decide everything (the server keeps order and
        answers SIZE or MLST, so a refused rename's 550 is told apart by the check of
        the temporary name); else it places at once and returns None."""
        checks_possible = self._features.mlst or self._features.size
        if not (self._features.answered and size is not None and checks_possible):
            await self.place(temp, final, mtime=mtime, mode=mode, size=size)
            return None
        abs_src = self._store.abs_path(temp)
        abs_dst = self._store.abs_path(final)
        method = self._mtime_method(temp) if mtime is not None else None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Reply]] = loop.create_future()
        # A copy stopped meanwhile (a signal) never awaits it: its error is not news.
        done.add_done_callback(mark_seen)
        replies: list[Reply] = []
        async with self._op("rename", temp):
            chmod = await self._chmod_line(mode, abs_src)
            lines = _placing_batch(abs_src, abs_dst, chmod, method, mtime)
            lines += self._placed_checks(abs_src, abs_dst)
            count = len(lines)

            def got(reply: Reply) -> None:
                replies.append(reply)
                if reply.code == 421:
                    self._mark_broken("the server closed the session (421)")
                if len(replies) == count and not done.done():
                    done.set_result(replies)

            def failed(exc: BaseException) -> None:
                self._mark_broken(f"{type(exc).__name__} while a rename was answered")
                if not done.done():
                    done.set_exception(TransientError(
                        f"place {final!r} on {self.where}: the session was lost before "
                        f"the server answered the rename ({type(exc).__name__})",
                        path=final))

            await self._client.send_many(lines)
            for _line in lines:
                self._client.owe(got, failed)

        async def finish() -> None:
            answers = list(await done)
            chmod_reply = answers.pop(0) if chmod is not None else None
            mtime_reply = answers.pop(0) if method is not None else None
            rnfr, rnto, at_final_reply, at_temp_reply = answers
            if chmod_reply is not None:
                self._chmod_done(chmod_reply)
            at_temp = self._size_in(at_temp_reply)
            if rnfr.code != 350:
                if rnfr.code == 550 and not looks_denied(rnfr) and not looks_missing(rnfr):
                    # The check of the temporary name, asked in the same batch, tells a
                    # missing file from a refusal (``_refusal`` asks it separately).
                    raise error_for_550(rnfr, exists=at_temp is not None, where=self.where,
                                        action="rename", path=temp)
                raise reply_error(rnfr, where=self.where, action="rename", path=temp)
            if not rnto.is_success():
                raise reply_error(rnto, where=self.where, action=f"rename {temp!r} to",
                                  path=final)
            at_final = self._size_in(at_final_reply, name=final.rsplit("/", 1)[-1],
                                     asked=abs_dst)
            self._placed_verdict(final, size, at_final, at_temp)
            self._attributes_kept(final, mode=mode, chmod=chmod, chmod_reply=chmod_reply,
                                  mtime_reply=mtime_reply)

        return finish

    async def _chmod_line(self, mode: int | None, abs_path: str) -> str | None:
        """``SITE CHMOD`` for ``mode``, or None where the server does not offer it (asked
        once per store with ``SITE HELP``, which changes nothing on the server)."""
        if mode is None:
            return None
        store = self._store
        if store.site_chmod is None:  # the probe did not ask (probe.py)
            store.site_chmod = offers_site_chmod(await self.raw_command("SITE HELP"))
        return f"SITE CHMOD {mode & 0o777:o} {abs_path}" if store.site_chmod else None

    def _chmod_done(self, reply: Reply) -> None:
        """A refused SITE CHMOD leaves the server's default mode (reported once, in the
        capability notes): the copy goes on."""
        if not reply.is_success() and reply.code != 421:
            self._store.site_chmod = False

    def _placed_checks(self, abs_src: str, abs_dst: str) -> list[str]:
        """Commands that tell what is at the final and the temporary names (pipelined
        after RNTO): SIZE where offered, else MLST; none on LIST-only servers without
        SIZE (a listing of the folder is read instead)."""
        # MLST first: its reply names the file found, so a server that stored it
        # under another name (pure-ftpd turns a tab into "_", in SIZE too) is caught.
        if self._features.mlst:
            return [f"MLST {abs_dst}", f"MLST {abs_src}"]
        if self._features.size:
            return [f"SIZE {abs_dst}", f"SIZE {abs_src}"]
        return []

    async def _check_placed(self, temp: str, final: str, size: int,
                            checks: list[Reply] | None) -> None:
        if checks is None:  # not pipelined: ask now
            lines = self._placed_checks(self._store.abs_path(temp),
                                        self._store.abs_path(final))
            checks = [await self.raw_command(line) for line in lines]
        if checks:
            at_final = self._size_in(checks[0], name=final.rsplit("/", 1)[-1],
                                     asked=self._store.abs_path(final))
            at_temp = self._size_in(checks[1])
        else:
            entries = {e.path: e async for e in self._listing(
                self._store.abs_path(parent_of(final)), parent_of(final),
                exact_times=False)}
            at_final = entries[final].size if final in entries else None
            at_temp = entries[temp].size if temp in entries else None
        self._placed_verdict(final, size, at_final, at_temp)

    def _placed_verdict(self, final: str, size: int, at_final: int | None,
                        at_temp: int | None) -> None:
        if at_final is None:
            raise TransientError(
                f"place {final!r} on {self.where}: the server accepted the rename but no "
                "file is at that name (it may have stored it under another name)",
                path=final)
        if at_temp is not None:
            raise TransientError(
                f"place {final!r} on {self.where}: the server answered the rename but the "
                "temporary file is still there", path=final)
        if at_final != size:
            raise TransientError(
                f"place {final!r} on {self.where}: the server holds {at_final} bytes of "
                f"{size} at the final name (it kept only part of the upload)", path=final)

    def _size_in(self, reply: Reply, *, name: str | None = None,
                 asked: str | None = None) -> int | None:
        """The size a SIZE or MLST reply gives (None: no such file, or, with ``name``,
        an MLST reply that names another file). ``asked``: the path the MLST asked
        for; a reply line the server cut short (proftpd ends it at ~1,024 bytes:
        placed files with long paths were "not at that name", re-sent and failed,
        session 35's adversarial pass) names a beginning of it, not another file."""
        if reply.code == 213:
            try:
                return int(reply.last.strip())
            except ValueError:
                return None
        if reply.code == 250:
            for line in reply.lines:
                text = line[1:] if line.startswith(" ") else line
                facts_text, _sep, shown = text.partition(" ")
                facts = parse_facts(facts_text)
                if "type" in facts:
                    if name is not None and shown and shown.rsplit("/", 1)[-1] != name \
                            and not _cut_short(line, shown, asked):
                        return None
                    listed = facts_to_entry(facts, "")
                    return listed.size if listed is not None else None
        if reply.code == 421:
            self._mark_broken("the server closed the session (421)")
            raise reply_error(reply, where=self.where, action="check placed file")
        return None

    async def remove(self, path: str) -> None:
        abs_path = self._store.abs_path(path)
        async with self._op("remove", path):
            reply = await self.raw_command(f"DELE {abs_path}")
            if not reply.is_success():
                raise await self._refusal(reply, abs_path=abs_path, path=path, action="remove")

    async def rmdir(self, path: str) -> None:
        abs_path = self._store.abs_path(path)
        if path == "":
            self._store.root_is_folder = False  # the probe's proof no longer holds
        async with self._op("rmdir", path):
            reply = await self.raw_command(f"RMD {abs_path}")
            if reply.is_success():
                return
            if reply.code == 550 and not await self.raw_is_dir(abs_path):
                raise NotFoundError(f"rmdir {path!r} on {self.where}: no such folder "
                                    f"(server replied {reply.text!r})", path=path)
            if reply.code == 550:
                raise PermanentError(f"rmdir {path!r} on {self.where}: refused, the folder "
                                     f"is not empty or not writable (server replied "
                                     f"{reply.text!r})", path=path)
            raise reply_error(reply, where=self.where, action="rmdir", path=path)

    def _mtime_method(self, path: str) -> str:
        """The command that sets an mtime here ("MFMT", or vsftpd's two-argument MDTM)."""
        probe = self._store.probe_result
        method = probe.mtime_method if probe is not None else (
            "MFMT" if self._features.mfmt else "MDTM")
        if method is None and self._features.mfmt:
            # The caller's capabilities said mtimes can be set (a probe made before the
            # root existed trusts FEAT), and a later probe could not show it (its scratch
            # file or its MFMT refused on a disk that had filled): FEAT's MFMT is tried,
            # and a refusal then says why, instead of failing the file unasked.
            method = "MFMT"
        if method is None:
            raise UnsupportedError(f"set mtime of {path!r} on {self.where}: the server "
                                   "cannot set modification times", path=path)
        return method

    def _attributes_kept(self, final: str, *, mode: int | None, chmod: str | None,
                         chmod_reply: Reply | None, mtime_reply: Reply | None) -> None:
        """After a complete file is in place: raise what its placing did not keep. A
        refused time (``_mtime_refusal``); the mode of a file the source keeps from
        others where ``SITE CHMOD`` was refused or is not offered (the server's default,
        often 0644, may let others read it: said per file, ``ModeNotKeptError``;
        before session 33 a refused CHMOD left a 0600 ``.env`` world-readable in
        silence). A public file at the server's default is not news (README)."""
        time_error = (self._mtime_refusal(mtime_reply, final)
                      if mtime_reply is not None and not mtime_reply.is_success() else None)
        if time_error is not None and not isinstance(time_error, TimeNotKeptError):
            raise time_error
        if is_private_mode(mode) and (chmod_reply is None or not chmod_reply.is_success()):
            assert mode is not None
            why = (f"the server refused SITE CHMOD ({chmod_reply.text.strip()!r})"
                   if chmod is not None and chmod_reply is not None
                   else "the server does not offer SITE CHMOD (or refused it earlier "
                        "in this run)")
            text = (f"its permission bits ({mode & 0o777:04o}) were not set: {why}; it "
                    "has the server's default mode")
            if time_error is not None:
                raise AttributesNotKeptError(f"{time_error}; {text}", path=final,
                                             time_kept=False, mode_kept=False)
            raise ModeNotKeptError(text, path=final)
        if time_error is not None:
            raise time_error

    def _mtime_refusal(self, reply: Reply, path: str) -> BackendError:
        """The error for a refused time of ``path``, which is in place, complete: a
        refusal of that time (500-504) is ``TimeNotKeptError`` (the copy notes it and
        counts the file copied: it would be refused again on every run)."""
        if reply.code in (500, 501, 502, 504):
            return TimeNotKeptError(
                f"the server refused its modification time ({reply.text.strip()!r}); "
                "it keeps the time of its copy", path=path)
        return reply_error(reply, where=self.where, action="set mtime", path=path)

    async def set_mtime(self, path: str, mtime: float) -> None:
        abs_path = self._store.abs_path(path)
        async with self._op("set mtime", path):
            method = self._mtime_method(path)
            reply = await self.raw_command(f"{method} {format_timeval(mtime)} {abs_path}")
            if reply.is_success():
                return
            if reply.code in (500, 501, 502, 504):
                raise self._mtime_refusal(reply, path)
            raise await self._refusal(reply, abs_path=abs_path, path=path, action="set mtime")


__all__ = ["FtpSession"]


#: A reply line at least this long may have been cut by the server (proftpd: ~1,024).
_CUT_LINE = 1000


def _cut_short(line: str, shown: str, asked: str | None) -> bool:
    """Whether an MLST reply line naming ``shown`` is the reply for ``asked`` cut short
    by the server: a long line whose path is a beginning of the one asked for. (A file
    stored under another name, as pure-ftpd turns a tab into "_", differs inside the
    name: not a beginning.) Compared as the bytes sent: the server cuts at a byte
    count, which may fall inside a UTF-8 character (its first bytes then decode as
    escapes, a beginning of the character's bytes); a line of accented names is half
    as many characters as bytes (session 36's adversarial pass: five folders of 120
    "é" were "not at that name", exit 3)."""
    if asked is None:
        return False
    line_b, shown_b, asked_b = (text.encode("utf-8", "surrogateescape")
                                for text in (line, shown, asked))
    return (len(line_b) >= _CUT_LINE and len(shown_b) < len(asked_b)
            and asked_b.startswith(shown_b))
