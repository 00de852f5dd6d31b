"""Parsing FTP directory listings and time stamps: ``LIST`` lines, ``MLSD``/``MLST`` facts.

Pure functions, no network. Names are decoded as UTF-8 with ``surrogateescape``, so a
name in another encoding survives the round trip back to the same server byte for byte
(the client encodes commands the same way).

``LIST`` times are imprecise (minutes, or only the day for old files, in the server's
time zone), so an entry from a ``LIST`` line carries ``mtime=None``: the session asks
``MDTM`` (exact, UTC, to the second) when it needs a time. ``MLSD`` facts are exact and
kept.

Each parser returns an ``Entry`` whose ``path`` is the name as listed (relative to the
folder listed): the session joins it to that folder. A symlink's target (``LIST``
``name -> target``) is cut off the name and not kept: fsmove never follows a link.
"""

from __future__ import annotations

import calendar
import re
import time

from ..backend import Entry, EntryKind


class ListingLineError(ValueError):
    """A listing line in no format we know: never skipped silently (a file could be lost)."""


def decode_name(raw: bytes) -> str:
    """Bytes from the wire to ``str``; undecodable bytes become lone surrogates."""
    return raw.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------
# Time stamps
# ---------------------------------------------------------------------------------------

_TIMEVAL = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?$")


def parse_timeval(text: str) -> float:
    """``YYYYMMDDHHMMSS[.sss]`` (MDTM, MLSx ``modify``; always UTC) to POSIX seconds."""
    m = _TIMEVAL.match(text.strip())
    if not m:
        raise ValueError(f"not an FTP time value: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    base = calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0))
    frac = m.group(7)
    return base + (int(frac) / 10 ** len(frac) if frac else 0.0)


def format_timeval(mtime: float) -> str:
    """POSIX seconds to ``YYYYMMDDHHMMSS`` UTC (MFMT / MDTM-write argument)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(int(mtime)))


# ---------------------------------------------------------------------------------------
# MLSD / MLST facts (RFC 3659)
# ---------------------------------------------------------------------------------------


def parse_facts(text: str) -> dict[str, str]:
    """``type=file;size=3;modify=2020...;`` to a dict with lower-case keys."""
    facts: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            facts[key.strip().lower()] = value
    return facts


def facts_to_entry(facts: dict[str, str], name: str) -> Entry | None:
    """The entry ``name`` from MLSx facts, or None for the ``cdir``/``pdir`` entries."""
    kind_text = facts.get("type", "").lower()
    if kind_text in ("cdir", "pdir"):
        return None
    if kind_text == "file":
        kind = EntryKind.FILE
    elif kind_text == "dir":
        kind = EntryKind.DIR
    elif kind_text.startswith("os.unix=slink") or kind_text == "os.unix=symlink":
        kind = EntryKind.LINK
    else:
        kind = EntryKind.OTHER
    size_text = facts.get("size") or facts.get("sizd") or "0"
    try:
        size = int(size_text) if kind is EntryKind.FILE else 0
    except ValueError as exc:
        raise ListingLineError(f"bad size fact {size_text!r} for {name!r}") from exc
    mtime: float | None = None
    if "modify" in facts:
        try:
            mtime = parse_timeval(facts["modify"])
        except ValueError:
            mtime = None
    mode: int | None = None
    try:
        mode = int(facts["unix.mode"], 8) & 0o7777 if "unix.mode" in facts else None
    except ValueError:
        mode = None
    return Entry(path=name, kind=kind, size=size, mtime=mtime, mode=mode)


def _without_line_end(text: str) -> str:
    """``text`` less one line end (CR LF, or LF), never more: a name may end in a CR
    (``LineSplitter`` has cut the line end of a streamed listing already)."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def parse_mlsx_line(line: bytes | str) -> Entry | None:
    """One ``MLSD`` data line (``facts SP name``); None for cdir/pdir and blank lines.

    Facts hold no space, so the name is everything after the first space, spaces and
    semicolons included.
    """
    text = _without_line_end(decode_name(line) if isinstance(line, bytes) else line)
    if not text.strip():
        return None
    facts_text, sep, name = text.partition(" ")
    if not sep or "=" not in facts_text:
        raise ListingLineError(f"not an MLSD line: {text!r}")
    return facts_to_entry(parse_facts(facts_text), name)


# ---------------------------------------------------------------------------------------
# LIST lines: unix ``ls -l`` and DOS/IIS
# ---------------------------------------------------------------------------------------

_UNIX = re.compile(
    r"^(?P<type>[-dlcbpsDn?])(?P<perm>[-rwxsStTlL]{9})[+.@]?\s+"
    r"(?P<fields>.*?)"
    r"(?P<size>\d+|\d+,\s*\d+)\s+"
    r"(?:"
    r"(?P<month>(?!\d+\s)\S+)\s+(?P<day>\d{1,2})\s+(?P<time>\d{1,2}:\d{2}(?::\d{2})?|\d{4})"
    r"|(?P<iso>\d{4}-\d{2}-\d{2})\s+(?P<isotime>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r")"
    r" (?P<name>.+)$",
    re.DOTALL,  # a name may hold a CR or LF (refused by the walk, on its own)
)

_DOS = re.compile(
    r"^(?P<date>\d{1,2}[-/]\d{1,2}[-/]\d{2,4})\s+"
    r"(?P<time>\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm])?)\s+"
    r"(?:(?P<dir><DIR>)|(?P<size>\d[\d,.]*))\s+"
    r"(?P<name>.+)$",
    re.DOTALL,
)

_TOTAL = re.compile(r"^total\s+\d+", re.IGNORECASE)

_UNIX_KINDS = {"-": EntryKind.FILE, "d": EntryKind.DIR, "l": EntryKind.LINK}


def parse_list_line(line: bytes | str) -> Entry | None:
    """One ``LIST`` line to an entry; None for ``total N`` and blank lines.

    Raises ListingLineError for a line in no known format. The name keeps its inner and
    leading spaces (unix form: exactly one space follows the time or year). Symlink
    lines ``name -> target`` give the name before the first `` -> ``.
    """
    text = _without_line_end(decode_name(line) if isinstance(line, bytes) else line)
    if not text.strip() or _TOTAL.match(text):
        return None
    m = _UNIX.match(text)
    if m:
        return _unix_entry(m)
    m = _DOS.match(text)
    if m:
        if m.group("dir"):
            return Entry(path=m.group("name"), kind=EntryKind.DIR)
        size = int(re.sub(r"[,.]", "", m.group("size")))
        return Entry(path=m.group("name"), kind=EntryKind.FILE, size=size)
    raise ListingLineError(f"unknown LIST line format: {text[:200]!r}")


def _unix_entry(m: re.Match[str]) -> Entry:
    kind = _UNIX_KINDS.get(m.group("type"), EntryKind.OTHER)
    name = m.group("name")
    if kind is EntryKind.LINK and " -> " in name:
        name = name.split(" -> ", 1)[0]  # the target: never followed, not kept
    size_text = m.group("size")
    size = int(size_text) if kind is EntryKind.FILE and "," not in size_text else 0
    return Entry(path=name, kind=kind, size=size, mode=permission_bits(m.group("perm")))


def permission_bits(perm: str) -> int | None:
    """``rwxr-x---`` (``ls -l`` form, with s/S/t/T) to 0o750; None if it is not one."""
    if len(perm) != 9:
        return None
    bits = 0
    for i, char in enumerate(perm):
        granted = char not in "-STL"
        if char in "sStTlL" and i % 3 != 2:
            return None
        if granted:
            bits |= 1 << (8 - i)
    return bits


# ---------------------------------------------------------------------------------------
# Streaming a listing from the data connection
# ---------------------------------------------------------------------------------------


#: Longest listing line accepted (a path is at most 4 KiB on common servers).
MAX_LINE = 64 * 1024


class LineSplitter:
    """Splits a byte stream into lines as it arrives, in linear time.

    Only the unfinished tail of the last chunk is kept between calls, so a listing of any
    size is parsed while it streams, without building one big string.

    A listing whose lines end in CR LF (the RFC's, and vsftpd's, pure-ftpd's, proftpd's)
    is cut at CR LF only: a bare LF or CR is then part of a name (``bad\nname``), which
    the walk refuses on its own, where cutting at every LF made a line of half a name
    and failed the whole folder ("unknown LIST line format"). A listing with bare LF
    line ends is cut at LF (a CR before it dropped).
    """

    __slots__ = ("_crlf", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        #: Whether lines end in CR LF: decided once a CR LF arrives (yes) or ``MAX_LINE``
        #: bytes came without one, or the listing ended (no). Until then what came is
        #: held: a first name holding a LF must not decide it.
        self._crlf: bool | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        data = self._tail + chunk if self._tail else chunk
        if self._crlf is None:
            if b"\r\n" in data:
                self._crlf = True
            elif len(data) > MAX_LINE:
                self._crlf = False
            else:
                self._tail = data
                return []
        return self._split(data)

    def _split(self, data: bytes) -> list[bytes]:
        if self._crlf:
            lines = data.split(b"\r\n")
            self._tail = lines.pop()
        else:
            lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in data.split(b"\n")]
            self._tail = lines.pop()
        if len(self._tail) > MAX_LINE:
            raise ListingLineError(f"listing line longer than {MAX_LINE} bytes")
        return lines

    def finish(self) -> list[bytes]:
        """The lines still held (the last one may lack its line end)."""
        data, self._tail = self._tail, b""
        if not data:
            return []
        if self._crlf is None:
            self._crlf = b"\r\n" in data
        end = b"\r\n" if self._crlf else b"\n"
        return self._split(data if data.endswith(end) else data + end)
