"""What is in a tree: the one set of rules that copy and verify both apply.

* **Names** (``name_problem``): a listed name that cannot be used safely as a path
  component (empty, ``.``/``..``, ``/``, NUL, newline, not UTF-8, over 255 bytes) is
  refused by the walk and reported, never followed or copied.
* **Kinds**: regular files and folders are in the tree; symlinks and special files are
  not (they are reported, never copied, never compared).
* **Filters** (``Filters``): include/exclude globs, always applied *with the entry's
  kind*: a folder is walked unless an exclude names it, whatever the includes say (an
  include of ``*.jpg`` must not drop ``photos/``, which holds the jpgs).
* **Temporary files** (``TempNames``): a copy writes each file under a temporary name
  and renames it into place. Only the temporary names *this job* made are fsmove's:
  the name carries a check keyed by the job's secret (kept in its journal), so a
  user's ``.fsmove.notes.part`` or ``.fsmove.0123456789abcdef.part`` is a normal file
  (copied, verified, never skipped, never deleted without ``--delete``), and two jobs
  writing into one destination never pick the same temporary name.
* **Names a destination may rewrite** (``risky_name_features``): a control character,
  a backslash, a trailing space or dot. Some FTP servers store such a name under
  another one (pure-ftpd turns a tab or a trailing space into "_") or refuse it; a copy
  asks the destination once per feature (``ftp/names.py``) and refuses the names it
  cannot hold before any byte is sent (a rewritten name could overwrite another file).
* **Probe scratch files** (``is_probe_leftover``): the FTP capability probe writes
  ``.fsmove-probe-<token>-<check>`` at the destination root (the check is a keyed hash
  of the token). A killed probe can leave one: at a destination such a file is fsmove's
  own (removed by the next copy, left out by verify) *unless the source holds a file of
  that path*; at a source it is the user's (copied, verified). Before session 32 copy
  copied it from a source while verify ignored it, and a destination's was removed
  even when the source had it (copied again by every rerun).

``walk.py`` lists a store by these rules; the engine and the verifier build their walk's
``skip`` from ``TreeRules``.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from .backend import Entry, EntryKind, parent_of

MAX_NAME_BYTES = 255


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be used as a path component, or None if it is fine."""
    if name in ("", ".", ".."):
        return f"refused name {name!r}"
    if "/" in name or "\x00" in name or "\n" in name or "\r" in name:
        return "refused name with '/', NUL or newline"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "refused name that is not valid UTF-8"
    if len(encoded) > MAX_NAME_BYTES:
        return f"refused name longer than {MAX_NAME_BYTES} bytes"
    return None


_RISKY = re.compile(r"[\x00-\x1f\x7f\\]|[ .]\Z")


def risky_name_features(name: str) -> tuple[tuple[str, str], ...]:
    """The features of ``name`` that some destinations rewrite or refuse, each as
    (a sample name that has it, its description): every control character (each its
    own: a server may keep a tab and drop another), a backslash, a trailing space, a
    trailing dot. Empty for almost every name. A leading space is not one: fsmove sends
    whole paths, so it is never at the start of a command's argument."""
    if _RISKY.search(name) is None:
        return ()  # almost every name: one scan in C
    found: list[tuple[str, str]] = []
    for ch in sorted({c for c in name if c < " " or c == "\x7f"}):
        label = "a tab" if ch == "\t" else f"the control character U+{ord(ch):04X}"
        found.append((f"a{ch}b", label))
    if "\\" in name:
        found.append(("a\\b", "a backslash"))
    if name.endswith(" "):
        found.append(("a ", "a trailing space"))
    if name.endswith(".") and name not in (".", ".."):
        found.append(("a.", "a trailing dot"))
    return tuple(found)


@dataclass(frozen=True)
class Filters:
    """Include/exclude globs, as rsync and rclone read them:

    * a pattern that starts with ``/`` is anchored at the root (``/logs``: the top
      folder ``logs`` only); any other matches at any depth (``logs``, ``logs/`` and
      ``logs/**`` also name ``sub/logs``): against the last name when it has no ``/``,
      else against the path's last names, whole ones (``a/b`` matches ``x/a/b``);
    * a trailing ``/`` names folders only (``cache/``: a folder, never a file);
    * ``*`` and ``?`` stay within one name, ``**`` crosses folders (``**/`` may match
      none), ``[abc]`` / ``[!abc]`` a character of a set.

    Excludes win. Includes select files only: a folder is always walked unless an
    exclude names it (then nothing below it is copied, compared or deleted); a
    folder-only include takes the files below the folders it names.

    Before session 34 a pattern with any ``/`` was anchored and ``*`` crossed folders:
    ``--exclude logs/`` left ``sub/logs`` to ``--delete`` (its files deleted at the
    destination), where rsync and rclone keep it."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @staticmethod
    def _match(path: str, pattern: str, kind: EntryKind = EntryKind.FILE) -> bool:
        regex, folders_only = _compiled(pattern)
        if folders_only and kind is not EntryKind.DIR:
            return False
        return regex.match(path) is not None

    def _included(self, path: str) -> bool:
        for pattern in self.include:
            if self._match(path, pattern):
                return True
            if pattern.endswith("/"):  # a folder-only include: the files below it
                parts = path.split("/")[:-1]
                if any(self._match("/".join(parts[:n]), pattern, EntryKind.DIR)
                       for n in range(1, len(parts) + 1)):
                    return True
        return False

    def excludes(self, path: str, kind: EntryKind) -> bool:
        """Whether the entry at ``path`` (of ``kind``) is left out of the tree."""
        if any(self._match(path, p, kind) for p in self.exclude):
            return True
        if kind is EntryKind.DIR or not self.include:
            return False
        return not self._included(path)


#: The rules ``Filters`` reads patterns by, recorded with each job: 1 (before session
#: 34: any ``/`` anchored a pattern, ``*`` crossed folders), 2 (rsync's).
FILTER_RULES = 2


#: Marks a pattern read by rules 1 (``from_first_rules``); no argument can hold a NUL.
FIRST_RULES_MARK = "\0"


def from_first_rules(pattern: str) -> str:
    """A pattern of rules 1 as ``Filters`` takes it, matching what it matched then: a
    job recorded before session 34 and resumed after it filters the same paths (its
    ``--exclude 'cache/*.html'`` protected ``cache/p/x.html`` from ``--delete``). A
    name alone means the same under both rules; one with a ``/`` is marked, and read
    as then (``fnmatch`` over the whole path: no rewriting into rules 2 matches it
    exactly, ``*/index.html`` would take the root's ``index.html``)."""
    return pattern if "/" not in pattern else FIRST_RULES_MARK + pattern


def shown_pattern(pattern: str) -> str:
    """A pattern as the user typed it (without the rules-1 mark)."""
    return pattern.removeprefix(FIRST_RULES_MARK)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> tuple[re.Pattern[str], bool]:
    """``pattern`` (``Filters``' rules) as a regular expression over a whole relative
    path, and whether it names folders only. (Python 3.13's ``glob.translate`` does the
    glob part; this project runs on 3.11.)"""
    if pattern.startswith(FIRST_RULES_MARK):
        return re.compile(fnmatch.translate(shown_pattern(pattern).strip("/"))), False
    folders_only = pattern.endswith("/") and pattern.strip("/") != ""
    anchored = pattern.startswith("/")
    body = _glob_regex(pattern.strip("/"))
    return re.compile(("" if anchored else "(?:.*/)?") + body + r"\Z", re.DOTALL), folders_only


def _glob_regex(glob: str) -> str:
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and glob[j] == "!":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            end = glob.find("]", j)
            if end < 0:
                out.append(re.escape(c))
                i += 1
                continue
            chars = glob[i + 1:end]
            negate = chars.startswith("!")
            chars = chars[1:] if negate else chars
            chars = "".join(f"\\{ch}" if ch in "\\^[&~|" else ch for ch in chars)
            out.append(f"[{'^/' if negate else ''}{chars}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


TEMP_PREFIX = ".fsmove."
TEMP_SUFFIX = ".part"
_HEX16 = "[0-9a-f]{16}"
_TEMP_RE = re.compile(rf"^\.fsmove\.({_HEX16})\.({_HEX16})\.part$")


def looks_like_temp(name: str) -> bool:
    """Whether ``name`` has the shape of *some* job's temporary file. For displays only
    (the demo counts files in flight): deciding what a copy may skip or remove is
    ``TempNames.is_ours``, which knows the job's secret."""
    return _TEMP_RE.match(name) is not None


class TempNames:
    """The temporary names of one job: ``.fsmove.<tag>.<check>.part`` in the file's own
    folder (so the rename is atomic; 46 characters whatever the file's name).

    ``tag`` is a keyed hash of the file's path (the same on every run of the job, so a
    rerun finds its partial file); ``check`` is a keyed hash of the folder and the tag,
    so a name found in a listing is recognised as this job's without knowing which file
    it belongs to. Both are keyed by the job's secret (BLAKE2b, 64 bits each): nobody
    can craft a user file that passes for one of them, and another job (another
    ``--journal``, another spelling of the same server) never picks the same names."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("a job's temporary names need its secret key")
        self._key = key.encode("ascii")

    @staticmethod
    def new_key() -> str:
        return secrets.token_hex(16)

    def _mac(self, *parts: str) -> str:
        h = hashlib.blake2b(key=self._key, digest_size=8)
        for part in parts:
            data = part.encode("utf-8", "surrogateescape")
            h.update(len(data).to_bytes(4, "big"))
            h.update(data)
        return h.hexdigest()

    def for_path(self, path: str) -> str:
        """The temporary file (a relative path) that ``path`` is written to."""
        parent = parent_of(path)
        tag = self._mac("file", path)
        name = f"{TEMP_PREFIX}{tag}.{self._mac('name', parent, tag)}{TEMP_SUFFIX}"
        return f"{parent}/{name}" if parent else name

    def is_ours(self, path: str) -> bool:
        """Whether the file at ``path`` is one of this job's temporary files."""
        m = _TEMP_RE.match(path.rsplit("/", 1)[-1])
        if m is None:
            return False
        expected = self._mac("name", parent_of(path), m.group(1))
        return hmac.compare_digest(expected, m.group(2))


PROBE_PREFIX = ".fsmove-probe-"
# ``.n<anything>``: a name check's scratch file (``ftp/names.py``), under the name the
# server gave it (which may be rewritten, so anything may follow).
# The leading dot is missing from the one probe of a server refusing dot names
# (``ftp/probe.py``, ``_takes_plain_names``).
_PROBE_NAME_RE = re.compile(
    r"^\.?fsmove-probe-([0-9a-f]{12})-([0-9a-f]{8})(?:\.b|\.b\.c|\.n[^/]*)?$")


def _probe_token_check(token: str) -> str:
    return hashlib.blake2s(token.encode(), key=b"fsmove capability probe",
                           digest_size=4).hexdigest()


#: The tokens of the scratch names this process's probes made. A listing of the
#: destination root made while its probe runs (the survey lists it meanwhile) drops
#: those files: they are in use, not a killed run's leftovers to remove.
_MADE_HERE: set[str] = set()


def probe_scratch_name() -> str:
    """A fresh probe scratch file name: ``.fsmove-probe-<token>-<check of the token>``."""
    token = secrets.token_hex(6)
    _MADE_HERE.add(token)
    return f"{PROBE_PREFIX}{token}-{_probe_token_check(token)}"


def is_own_probe_file(path: str) -> bool:
    """Whether ``path`` is one of the scratch files a probe of this process made (or
    is making): never a leftover, never the user's."""
    found = _PROBE_NAME_RE.match(path)
    return found is not None and found.group(1) in _MADE_HERE


def is_probe_leftover(path: str) -> bool:
    """Whether ``path`` (store-relative) is a probe's scratch file left by a killed run:
    at the store root, with a name ``probe_scratch_name`` made (its check matches)."""
    found = _PROBE_NAME_RE.match(path)
    return found is not None and _probe_token_check(found.group(1)) == found.group(2)


def same_mtime(a: float | None, b: float | None, *, tolerance: float) -> bool:
    if a is None or b is None:
        return False
    return abs(a - b) <= tolerance


#: The step of a local disk's file times as fsmove reads them (floats of seconds: about
#: 2.4e-7 s apart at today's dates, so two readings of one nanosecond time agree to it).
LOCAL_TIME_RESOLUTION = 1e-6


#: A source file whose time is this close to the moment this job began reading it (or
#: later) may have been rewritten in that same second, at the same size, while or right
#: after it was read: a store's time does not change for a rewrite within one of its
#: steps (a whole second on FTP and SFTP, a clock tick on a local disk), so its size and
#: time cannot vouch for what was read ("racy", as git calls it). Such a file is read
#: again before a rerun skips it (``plan.FileRules``) and before verify trusts the
#: journal's digest of it. A window, not "later than": the source's clock may be a
#: minute off this machine's, and only files changed within a minute of their read
#: pay. A server whose times are hours ahead (a wrong time zone) would otherwise have
#: every file read again at every rerun; its same-second rewrites are not seen
#: (``--checksum`` reads everything).
RACY_WINDOW = 60.0


def is_racy(mtime: float | None, read_at: float | None) -> bool:
    """Whether a file of source time ``mtime``, read from ``read_at`` on (this
    machine's clock), may have changed within its time's step after the read began."""
    if mtime is None or read_at is None:
        return True
    return abs(mtime - read_at) < RACY_WINDOW


def source_time_unchanged(recorded: float | None, listed: float | None, *,
                          resolution: float) -> bool:
    """Whether a source file's time as listed now is the one this job recorded earlier.

    The same store gives the same file's time the same way at every listing (MDTM and
    SFTP whole seconds, MLSD's and the local disk's fractions), so a difference of one
    step of the source's ``resolution`` is a change: a file rewritten at the same size
    0.3 s after it was copied is copied again (the 1 s tolerance that compares *two*
    stores' times must not hide that). Under a step, two ways of asking one server
    (MLSD's fraction, MDTM's whole second) may differ for the same file."""
    if recorded is None or listed is None:
        return False
    return abs(recorded - listed) < max(resolution, LOCAL_TIME_RESOLUTION)


@dataclass(frozen=True)
class TreeRules:
    """The rules one run applies to a tree: its filters, and (on the destination) the
    job's temporary names. ``temps=None``: no temporary file is anyone's (every file is
    the user's)."""

    filters: Filters = field(default_factory=Filters)
    temps: TempNames | None = None
    #: A copy's destination: a killed probe's scratch file there is fsmove's (removed).
    #: Never on a source (a file there named so is the user's: copied and verified), and
    #: not in verify's walk, which drops it only where the source has no such file.
    probe_leftovers: bool = False
    #: A server's own files on this side (``not_the_tree.server_files``: pure-ftpd's
    #: ``/.ftpquota`` and uploads in flight), as Filters-style patterns.
    server_files: tuple[str, ...] = ()
    #: Whether the walk drops them (a source: its server's files are never the
    #: user's); on a destination they are dropped only where the source holds no such
    #: path (``march.py``, ``verify/comparison.py``): a user's file of that name is
    #: copied and compared, never silently left out.
    skip_server_files: bool = False

    def is_server_file(self, entry: Entry) -> bool:
        """Whether ``entry`` is one of this side's server's own files."""
        return entry.kind is EntryKind.FILE and any(
            Filters._match(entry.path, p) for p in self.server_files)

    def is_job_temp(self, entry: Entry) -> bool:
        """Whether ``entry`` is fsmove's own scratch: one of this job's temporary files,
        or (``probe_leftovers``) a killed capability probe's file. The march still takes
        a destination file the source also holds as the user's (``march.py``)."""
        if entry.kind is not EntryKind.FILE:
            return False
        if self.temps is not None and self.temps.is_ours(entry.path):
            return True
        return self.probe_leftovers and is_probe_leftover(entry.path)

    def skips(self, entry: Entry) -> bool:
        """Whether the walk drops ``entry`` (and, for a folder, everything below it).
        The job's own temporary files are never dropped by a filter: the copy must see
        them to resume or remove them."""
        if self.is_job_temp(entry):
            return False
        if self.skip_server_files and self.is_server_file(entry):
            return True
        return self.filters.excludes(entry.path, entry.kind)
