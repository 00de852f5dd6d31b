"""asyncssh's searches for optional C libraries, answered without subprocesses where the
library is absent.

When imported, asyncssh looks for liboqs (post-quantum key exchanges) and libnettle
(UMAC) with ``ctypes.util.find_library``: ``oqs``, ``liboqs``, ``nettle``,
``libnettle``, ``libnettle-6``. On Linux each lookup runs ``ldconfig -p`` and, when
that finds nothing, ``gcc`` and ``ld``: up to three subprocesses per name, measured at
30-80 ms of every SFTP run's start before its first connection (more on a loaded
machine; ``benchmarks/README.md``, "Session 18"). Two of those names can never be found
(``find_library("liboqs")`` looks for ``libliboqs.so``).

Those names are answered here from what the subprocesses would read: the dynamic
loader's cache (``/etc/ld.so.cache``, every library ``ldconfig -p`` lists is named in
it) and the folders a linker and the loader search (``LD_LIBRARY_PATH``,
``LIBRARY_PATH`` and the usual system folders). Where none of them holds a
``lib<name>.`` file the answer is None, as ``find_library`` gives; where one does (or
the cache cannot be read) ``find_library`` itself answers, so a machine with the
library gets exactly what asyncssh would have found. Other names, and systems other
than Linux, are never touched. Installed once, when ``transfers.sftp`` is first
imported (before asyncssh).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable

#: The names asyncssh asks (asyncssh/crypto/pq.py and umac.py).
NAMES = frozenset({"oqs", "liboqs", "nettle", "libnettle", "libnettle-6"})
#: The dynamic loader's cache on Linux.
LOADER_CACHE = "/etc/ld.so.cache"
_MACHINE = os.uname().machine
#: Folders a linker searches without being told (Debian's and Fedora's), besides the
#: environment's.
SYSTEM_FOLDERS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
                  "/usr/local/lib64", f"/lib/{_MACHINE}-linux-gnu",
                  f"/usr/lib/{_MACHINE}-linux-gnu")


def may_exist(name: str, *, cache: str = LOADER_CACHE,
              folders: tuple[str, ...] | None = None,
              environ: dict[str, str] | None = None) -> bool:
    """False only when the loader's cache and every folder searched were read and none
    names a ``lib<name>.`` file (what ``find_library(name)`` looks for)."""
    prefix = f"lib{name}."
    try:
        with open(cache, "rb") as f:
            if prefix.encode() in f.read():
                return True
    except OSError:
        return True  # cannot tell: let find_library look
    env = os.environ if environ is None else environ
    searched = [*(folders if folders is not None else SYSTEM_FOLDERS)]
    for var in ("LD_LIBRARY_PATH", "LIBRARY_PATH"):
        searched += [d for d in env.get(var, "").split(":") if d]
    for folder in searched:
        try:
            names = os.listdir(folder)
        except OSError:
            continue  # not there: nothing to find in it
        if any(entry.startswith(prefix) for entry in names):
            return True
    return False


def install() -> None:
    """Wrap ``ctypes.util.find_library`` for asyncssh's names (Linux only; once)."""
    if not sys.platform.startswith("linux"):
        return
    find: Callable[[str], str | None] = ctypes.util.find_library
    if getattr(find, "_fsmove_lookup", False):
        return
    absent: dict[str, bool] = {}

    def find_library(name: str) -> str | None:
        if name in NAMES:
            if name not in absent:
                absent[name] = not may_exist(name)
            if absent[name]:
                return None
        return find(name)

    find_library._fsmove_lookup = True  # type: ignore[attr-defined]
    ctypes.util.find_library = find_library
