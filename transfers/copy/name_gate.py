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

A dry run asks neither of the second kind (it would write a scratch file).
"""

from __future__ import annotations

from ..backend import BackendError, Entry, EntryKind, LimitsPaths, RewritesNames
from ..pool import SessionPool
from ..tree import TempNames, risky_name_features

#: The longest temporary name (``tree.TempNames``), in bytes.
TEMP_NAME_BYTES = len(".fsmove.") + 16 + 1 + 16 + len(".part")


class DestinationNames:
    def __init__(self, dst: SessionPool, temps: TempNames, *, ask_server: bool) -> None:
        self._dst = dst
        self._temps = temps
        store = dst.store
        self._room = store.path_room() if isinstance(store, LimitsPaths) else None
        self._rewrites = store if ask_server and isinstance(store, RewritesNames) else None

    def suspect(self, entry: Entry) -> bool:
        """Whether ``refusal`` may refuse ``entry`` (cheap: most paths are not)."""
        if self._room is not None and 4 * len(entry.path) + TEMP_NAME_BYTES > self._room:
            return True  # maybe too long (a character is at most 4 bytes in UTF-8)
        return self._rewrites is not None and bool(risky_name_features(entry.name))

    async def refusal(self, entry: Entry) -> str | None:
        """Why the destination cannot hold ``entry`` at its path, or None."""
        if self._room is not None:
            longest = [entry.path]
            if entry.kind is not EntryKind.DIR:
                longest.append(self._temps.for_path(entry.path))
            size = max(len(p.encode("utf-8", "surrogateescape")) for p in longest)
            if size > self._room:
                return (f"its path would be {size:,} bytes at the destination, over the "
                        f"{self._room:,} the server takes below this root (a server's "
                        "paths are at most 4,096 bytes); shorten it at the source")
        if self._rewrites is None or not risky_name_features(entry.name):
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
