"""What an FTP server can do: its FEAT list, and a live probe of the write semantics.

The probe runs once per store that fsmove writes to (never on a source, a verify or a
dry run: ``read_only_capabilities``), on a live session, in scratch files at the store
root, and removes them afterwards. A kill in the middle can leave them behind, so their
names are ones a later run recognises (``is_probe_leftover``: ``.fsmove-probe-`` + a
random token + a check of that token, + ``.b``/``.b.c`` for the rename probe's files):
the next copy into that store deletes them, and copy and verify never count them as
the user's files. A user's own ``.fsmove-probe-notes.txt`` does not carry the check and
stays a normal file.

- ``STOR`` 8 bytes, then ``REST 4`` + ``STOR`` 2 bytes and read the file back: still 8
  bytes with the 2 bytes at offset 4 means the server writes in place
  (``OffsetWrites.ANY``, vsftpd); 6 bytes means it truncates at the offset (pure-ftpd),
  and a refusal is proftpd's default. In both cases ``APPE`` is tried
  (``OffsetWrites.APPEND``), else ``OffsetWrites.NONE``.
- ``REST 2`` + ``RETR`` must return the tail: ranged reads work.
- ``RNFR``/``RNTO`` over an existing file: does rename replace the target?
- ``MFMT`` (when FEAT lists it), else vsftpd's ``MDTM <time> <path>``: set a time and
  read it back with ``MDTM``.

Parallel ranged writes into one file are never offered over FTP (FACTS.md: vsftpd
serialises them and corrupts the file unless offset 0 starts first, pure-ftpd cannot,
proftpd refuses).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ..backend import Capabilities, OffsetWrites

# The scratch names (and the rule that recognises a killed probe's leftovers) are tree
# rules: transfers/tree.py. The rename probe's extra files are NAME.b and, briefly, NAME.b.c.
from ..tree import probe_scratch_name
from .client import Reply
from .listing import format_timeval, parse_timeval

#: The mtime the probe sets and reads back (2001-09-09 01:46:40 UTC).
PROBE_MTIME = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Features:
    """The FEAT reply: upper-case feature lines (``"MLST"``, ``"REST STREAM"``...)."""

    lines: frozenset[str] = frozenset()
    #: The server answered FEAT (RFC 2389). Such servers read a control connection's
    #: commands one after the other, so dependent commands may be pipelined; a server
    #: without FEAT (aioftp's runs commands concurrently) gets one at a time.
    answered: bool = False

    def has(self, name: str) -> bool:
        return _has_feature(self.lines, name.upper())

    mlst = property(lambda self: self.has("MLST"), doc="MLST / MLSD: exact listings")
    mfmt = property(lambda self: self.has("MFMT"), doc="MFMT: set a modification time")
    utf8 = property(lambda self: self.has("UTF8"), doc="UTF8: names in UTF-8")
    rest_stream = property(lambda self: self.has("REST STREAM"), doc="ranged reads")
    size = property(lambda self: self.has("SIZE"), doc="SIZE of one file")
    mdtm = property(lambda self: self.has("MDTM"), doc="MDTM: exact modification times")

    def summary(self) -> str:
        names = sorted({line.split(" ", 1)[0] for line in self.lines} | (
            {"REST STREAM"} if self.rest_stream else set()))
        return "FEAT: " + (" ".join(n for n in names if n != "REST") or "(none)")


@functools.lru_cache(maxsize=256)
def _has_feature(lines: frozenset[str], name: str) -> bool:
    """Whether FEAT listed ``name`` (a line of its own, or followed by its parameters).
    Cached: sessions ask several times per file (~40 calls a file on small files)."""
    return any(line == name or line.startswith(name + " ") for line in lines)


def parse_feat(reply: Reply) -> Features:
    """Features from a FEAT reply (211); no features when FEAT was refused."""
    if reply.code != 211:
        return Features()
    found = set()
    for line in reply.lines[1:-1] if len(reply.lines) > 2 else ():
        text = line.strip()
        if text:
            found.add(text.upper())
    return Features(frozenset(found), answered=True)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    capabilities: Capabilities
    #: How to set an mtime: "MFMT", "MDTM" (vsftpd's two-argument form) or None.
    mtime_method: str | None
    #: False when the probe could not run for a reason that may go away (the root folder
    #: does not exist yet): the store probes again next time instead of caching it.
    final: bool = True
    #: A file was written into the root just now: the root is a folder (store.py).
    root_is_folder: bool = False
    #: Whether ``SITE HELP`` offers ``SITE CHMOD`` (asked with the rename probe's
    #: cleanup, no round trip of its own), None where not asked.
    site_chmod: bool | None = None


def offers_site_chmod(reply: Reply) -> bool:
    """Whether a ``SITE HELP`` reply offers ``SITE CHMOD`` (the question changes nothing
    on the server)."""
    return reply.is_success() and "CHMOD" in " ".join(reply.lines).upper().split()


class ProbeTarget(Protocol):
    """The raw, unguarded FTP operations the probe needs (``FtpSession`` has them)."""

    root: str

    async def raw_command(self, line: str) -> Reply: ...

    async def raw_commands(self, lines: list[str]) -> list[Reply]: ...

    async def raw_store(self, abs_path: str, payload: bytes, *, verb: str, rest: int,
                        before: Sequence[str] = (),
                        before_replies: list[Reply] | None = None) -> Reply: ...

    async def raw_read_all(self, abs_path: str, *, rest: int = 0, before: Sequence[str] = (),
                           before_replies: list[Reply] | None = None) -> bytes | Reply: ...

    async def raw_is_dir(self, abs_path: str) -> bool: ...

    def passive_note(self) -> str: ...


def _scratch_path(root: str) -> str:
    return f"{root.rstrip('/')}/{probe_scratch_name()}"


async def probe_capabilities(
    target: ProbeTarget,
    features: Features,
    helpers: Callable[[], Awaitable[Sequence[ProbeTarget]]] | None = None,
    made: list[str] | None = None,
) -> ProbeResult:
    """Probe a live session (see the module docstring); always cleans up its files.

    The first STOR proves the root writable (only when it fails is the root checked:
    a root that does not exist yet is probed again next time). ``helpers`` may give two
    more logged-in sessions on the same account (the store logs them in ahead,
    store.py): the rename probe runs on one, the mtime and ranged-read probes on the
    other, each on files of its own, at the same time as ``target``'s first STOR and
    offset-write probe — about ten round trips one after the other instead of 45 on
    one session. Without helpers, each part runs after the other on ``target``.
    ``made``: every scratch path this probe may leave is added to it (a probe cut off
    mid-way cannot remove its files: the store removes them before it probes again)."""
    notes = [features.summary()]

    def scratch() -> str:
        new = _scratch_path(target.root)
        if made is not None:
            made.extend([new, new + ".b", new + ".b.c"])
        return new

    path = scratch()
    io_notes: list[str] = []
    rename_notes: list[str] = []
    reads_notes: list[str] = []
    #: Whether a write at an offset beyond the end was refused (a note for servers that
    #: write in place; probed on the reads' file, off the offset probe's chain).
    beyond_refused: list[str] = []
    first_reply: list[Reply] = []
    #: ``SITE HELP``, sent with the rename probe's cleanup where commands pipeline (the
    #: first placing would otherwise ask it: a round trip before the first file is done).
    site_help: list[Reply] = []

    async def offset_writes() -> OffsetWrites | None:
        """The first STOR (None when it failed: the root is not writable), then the
        offset-write probe on that file."""
        first = await target.raw_store(path, b"01234567", verb="STOR", rest=0)
        first_reply.append(first)
        try:
            if not first.is_success():
                return None
            return await _probe_offset_writes(target, path, io_notes)
        finally:
            await remove_scratch(target, [path], features)

    async def renames(on: ProbeTarget) -> tuple[bool, bool]:
        # Its own pair of files: "rename replaces" needs an existing target.
        own = scratch()
        other = own + ".b"
        try:
            stored = await on.raw_store(own, b"01234567", verb="STOR", rest=0)
            if not stored.is_success():
                # A refusal here (a disk that filled since the first STOR) says nothing
                # about renames: assume the safe form (a temp name renamed into place,
                # the target removed first) rather than writing files in place.
                rename_notes.append(f"rename not probed (STOR replied {stored.text!r}): "
                                    "assumed to work, the target removed first")
                return True, False
            return await _probe_rename(on, own, other, features, rename_notes)
        finally:
            also = ["SITE HELP"] if features.answered else []
            site_help.extend(await remove_scratch(on, [own, other], features, also=also))

    async def mtimes_and_reads(on: ProbeTarget) -> tuple[str | None, bool]:
        """The mtime method and whether ranged reads work (and, for the notes, whether
        a write beyond the end of a file is refused)."""
        own = scratch()
        try:
            stored = await on.raw_store(own, b"01234567", verb="STOR", rest=0)
            if not stored.is_success():
                # Nothing to set an mtime on (a disk that filled since the first STOR):
                # that is no proof the server cannot; trust FEAT's MFMT where it says so.
                method = "MFMT" if features.mfmt else None
                reads_notes.append(f"mtime and ranged reads not probed (STOR replied "
                                   f"{stored.text!r}): as FEAT says (MFMT "
                                   f"{'yes' if method else 'no'}, REST STREAM "
                                   f"{'yes' if features.rest_stream else 'no'})")
                return method, features.rest_stream
            if features.answered:
                # The mtime set and read back ride with the ranged read's transfer.
                first = _mtime_methods(features)[0]
                answers: list[Reply] = []
                ranged = await _probe_ranged_read(
                    on, own, reads_notes,
                    before=[f"{first} {format_timeval(PROBE_MTIME)} {own}", f"MDTM {own}"],
                    before_replies=answers)
                method = await _probe_mtime(on, own, features, reads_notes,
                                            first_answers=(answers[0], answers[1]))
            else:
                method = await _probe_mtime(on, own, features, reads_notes)
                ranged = await _probe_ranged_read(on, own, reads_notes)
            beyond = await on.raw_store(own, b"zz", verb="STOR", rest=12)
            if not beyond.is_success():
                beyond_refused.append(beyond.text)
            return method, ranged
        finally:
            await remove_scratch(on, [own], features)

    async def helper_parts() -> tuple[tuple[bool, bool], tuple[str | None, bool]] | None:
        """Renames on one helper, mtimes and reads on the other, both at once; None
        when the helpers could not log in (the probe then runs on one session)."""
        extra = list(await helpers()) if helpers is not None else []
        if len(extra) < 2:
            return None
        done = await asyncio.gather(renames(extra[0]), mtimes_and_reads(extra[1]),
                                    return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        return done[0], done[1]  # type: ignore[return-value]

    # The three parts start together, each on files of its own: the first STOR does not
    # wait for the helpers' logins, nor they for it (about ten round trips in a row
    # instead of sixteen). All of them finish (and clean up) before any error is raised.
    got = await asyncio.gather(offset_writes(), helper_parts(), return_exceptions=True)
    for outcome in got:
        if isinstance(outcome, BaseException):
            raise outcome
    writes, parts = got
    first = first_reply[0]
    if writes is None:
        # Whatever the helpers found in a root this session could not write to is not
        # kept: only the first STOR decides whether the root is writable.
        if not await target.raw_is_dir(target.root):
            notes.append(f"root folder {target.root!r} does not exist (yet): "
                         "write probes skipped")
            return ProbeResult(_conservative(features, notes), None, final=False)
        if await _takes_plain_names(target, scratch, features):
            notes.append(f"names starting with '.' refused (STOR replied {first.text!r}), "
                         "others taken: files are written under their own names, no "
                         "temporary names")
            return ProbeResult(replace(_conservative(features, notes), rename=False,
                                       root_writable=True), None)
        notes.append(f"root folder not writable (STOR replied {first.text!r}): "
                     "write probes skipped")
        return ProbeResult(_conservative(features, notes), None)
    assert isinstance(writes, OffsetWrites)
    if parts is None:
        # One session (the helpers could not log in): each part after the other.
        mtime_method, ranged = await mtimes_and_reads(target)
        rename, replaces = await renames(target)
    else:
        (rename, replaces), (mtime_method, ranged) = parts  # type: ignore[misc]
    if writes is OffsetWrites.ANY and beyond_refused:
        io_notes.append(f"REST beyond the end of the file refused ({beyond_refused[0]!r}): "
                        "offsets up to the current size only")
    notes += io_notes + rename_notes + reads_notes
    notes.append(target.passive_note())
    notes.append("parallel ranged writes into one file: off for FTP "
                 "(servers serialise, truncate or refuse them)")
    caps = Capabilities(
        ranged_read=ranged,
        bounded_read=True,
        offset_writes=writes,
        parallel_writes=False,
        set_mtime=mtime_method is not None,
        rename=rename,
        rename_replaces=replaces,
        ops_per_session=1,
        mtime_resolution=1.0,
        root_writable=True,  # its first STOR, into the root, succeeded
        notes=tuple(notes),
    )
    return ProbeResult(caps, mtime_method, root_is_folder=True,
                       site_chmod=offers_site_chmod(site_help[0]) if site_help else None)


async def _takes_plain_names(target: ProbeTarget, scratch: Callable[[], str],
                             features: Features) -> bool:
    """After the first (dot-named) STOR was refused in a root that exists: whether a
    name without the leading dot is taken (a server refusing dot files: pure-ftpd
    ``--prohibitdotfileswrite``, vsftpd ``deny_file={.*}``). Before session 33 such a
    server got nothing: every temporary name ``.fsmove.*.part`` was refused. One more
    STOR, only where the first failed; removed at once (a killed run's is removed by
    the next, as the dotted ones are: ``tree.is_probe_leftover``)."""
    head, _, name = scratch().rpartition("/")
    plain = f"{head}/{name.removeprefix('.')}"
    reply = await target.raw_store(plain, b"0", verb="STOR", rest=0)
    if reply.is_success():
        await remove_scratch(target, [plain], features)
        return True
    return False


async def remove_scratch(target: ProbeTarget, paths: list[str], features: Features, *,
                         also: Sequence[str] = ()) -> list[Reply]:
    """DELE each of ``paths`` (those that do not exist are refused: fine), in one round
    trip where the server reads commands in order (FEAT answered). Their replies are
    awaited: sent without waiting (one round trip less at the probe's end), the scratch
    files outlived the probe on the server, and a listing on another session right
    after it showed them (measured, then undone in session 10). ``also``: commands sent
    after the DELEs in the same batch; their replies are returned."""
    if features.answered:
        replies = await target.raw_commands([f"DELE {p}" for p in paths] + list(also))
        return replies[len(paths):]
    for p in paths:
        await target.raw_command(f"DELE {p}")
    return [await target.raw_command(line) for line in also]


def read_only_capabilities(features: Features) -> ProbeResult:
    """What a store that is only read (a copy's source, both sides of a verify) needs,
    from FEAT alone: nothing is written to find out. Ranged reads where the server
    announces ``REST STREAM`` (RFC 3659)."""
    notes = [features.summary(), "read-only use: no write probe (nothing is written here)"]
    caps = replace(_conservative(features, notes), set_mtime=False)
    return ProbeResult(caps, None)


def early_capabilities(features: Features) -> Capabilities:
    """What a store that will be written can promise while its write probe runs
    (``WritesBeforeProbe``): new files written whole under temporary names; no
    resume, no mtime and a rename that is not trusted to replace until the probe has
    answered (the engine waits for it before placing a file or resuming one)."""
    notes = [features.summary(), "before the write probe has answered: new files only"]
    return replace(_conservative(features, notes), set_mtime=False)


def _conservative(features: Features, notes: list[str]) -> Capabilities:
    return Capabilities(
        ranged_read=features.rest_stream,
        bounded_read=True,
        offset_writes=OffsetWrites.NONE,
        parallel_writes=False,
        set_mtime=features.mfmt,
        rename=True,
        rename_replaces=False,
        ops_per_session=1,
        mtime_resolution=1.0,
        notes=tuple(notes),
    )


async def _probe_ranged_read(target: ProbeTarget, path: str, notes: list[str], *,
                             before: Sequence[str] = (),
                             before_replies: list[Reply] | None = None) -> bool:
    """``REST 2`` + ``RETR`` returns the tail (``before``: commands sent in the same
    write, their replies appended to ``before_replies``)."""
    got = await target.raw_read_all(path, rest=2, before=before,
                                    before_replies=before_replies)
    if got == b"234567":
        notes.append("REST+RETR: ranged reads work")
        return True
    shown = got.text if isinstance(got, Reply) else f"{len(got)} bytes"
    notes.append(f"REST+RETR did not return the tail ({shown}): no ranged reads")
    return False


async def _probe_offset_writes(target: ProbeTarget, path: str, notes: list[str]) -> OffsetWrites:
    reply = await target.raw_store(path, b"ab", verb="STOR", rest=4)
    if reply.is_success():
        content = await target.raw_read_all(path)
        if content == b"0123ab67":
            notes.append("REST+STOR writes in place (no truncation): offset writes anywhere")
            return OffsetWrites.ANY
        if content == b"0123ab":
            notes.append("REST+STOR truncates the file at the offset: append only")
        else:
            shown = content.text if isinstance(content, Reply) else repr(content)
            notes.append(f"REST+STOR left unexpected content {shown}: append only")
    else:
        notes.append(f"REST+STOR refused ({reply.text!r})")
    before = await target.raw_read_all(path)
    if isinstance(before, Reply):
        notes.append("cannot read the probe file back: no offset writes")
        return OffsetWrites.NONE
    reply = await target.raw_store(path, b"xy", verb="APPE", rest=0)
    after = await target.raw_read_all(path)
    if reply.is_success() and after == before + b"xy":
        notes.append("APPE appends: resume at the end of a partial file")
        return OffsetWrites.APPEND
    notes.append(f"APPE does not append ({reply.text!r}): partial files restart from zero")
    return OffsetWrites.NONE


async def _probe_rename(
    target: ProbeTarget, path: str, other: str, features: Features, notes: list[str]
) -> tuple[bool, bool]:
    await target.raw_store(other, b"z", verb="STOR", rest=0)
    size: Reply | None = None
    if features.answered and features.size:
        # RNFR, RNTO and the target's SIZE in one round trip (a refused RNFR makes RNTO
        # fail: "bad sequence"; SIZE then finds the target's own 8 bytes).
        rnfr, rnto, size = await target.raw_commands(
            [f"RNFR {other}", f"RNTO {path}", f"SIZE {path}"])
    elif features.answered:
        rnfr, rnto = await target.raw_commands([f"RNFR {other}", f"RNTO {path}"])
    else:
        rnfr = await target.raw_command(f"RNFR {other}")
        rnto = await target.raw_command(f"RNTO {path}") if rnfr.code == 350 else rnfr
    if rnfr.code == 350:
        if rnto.is_success() and await _holds_one_byte(target, path, features, size):
            notes.append("rename replaces an existing target")
            return True, True
        notes.append(f"rename over an existing file refused ({rnto.text!r}): "
                     "the target is removed first")
    else:
        notes.append(f"RNFR refused ({rnfr.text!r})")
    fresh = other + ".c"
    if (await target.raw_command(f"RNFR {other}")).code == 350:
        moved = await target.raw_command(f"RNTO {fresh}")
        if moved.is_success():
            await target.raw_command(f"RNFR {fresh}")
            await target.raw_command(f"RNTO {other}")
            return True, False
    notes.append("rename does not work: files are written in place")
    return False, False


async def _holds_one_byte(target: ProbeTarget, path: str, features: Features,
                          size: Reply | None = None) -> bool:
    """Whether ``path`` now holds the renamed one-byte file (b"z"), not the 8 bytes it
    held: SIZE where FEAT offers it (``size``: its reply, already asked), else read it
    back."""
    if size is not None:
        return size.code == 213 and size.last.strip() == "1"
    if features.size:
        reply = await target.raw_command(f"SIZE {path}")
        return reply.code == 213 and reply.last.strip() == "1"
    return await target.raw_read_all(path) == b"z"


def _mtime_methods(features: Features) -> list[str]:
    """How to set an mtime, in the order tried: MFMT where FEAT lists it, then
    vsftpd's ``MDTM <time> <path>``."""
    return ["MFMT", "MDTM"] if features.mfmt else ["MDTM"]


async def _probe_mtime(
    target: ProbeTarget, path: str, features: Features, notes: list[str], *,
    first_answers: tuple[Reply, Reply] | None = None,
) -> str | None:
    """The first method that sets an mtime that reads back. ``first_answers``: the
    replies to the first method's set and read-back, already asked (pipelined with
    another command)."""
    stamp = format_timeval(PROBE_MTIME)
    for method in _mtime_methods(features):
        if first_answers is not None:
            (reply, check), first_answers = first_answers, None
        elif features.answered:
            # Set and read back in one round trip: a refused set leaves the file's own
            # time, which the check then does not find.
            reply, check = await target.raw_commands([f"{method} {stamp} {path}",
                                                      f"MDTM {path}"])
        else:
            reply = await target.raw_command(f"{method} {stamp} {path}")
            check = await target.raw_command(f"MDTM {path}") if reply.is_success() else reply
        if not reply.is_success():
            continue
        try:
            ok = check.code == 213 and parse_timeval(check.last) == PROBE_MTIME
        except ValueError:
            ok = False
        if ok:
            form = "MFMT" if method == "MFMT" else "MDTM <time> <path> (vsftpd form)"
            notes.append(f"mtime set with {form}")
            return method
    notes.append("the server cannot set modification times")
    return None
