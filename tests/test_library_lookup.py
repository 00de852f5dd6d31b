"""asyncssh's searches for optional C libraries at import (liboqs, libnettle), answered
without subprocesses where the library is absent (transfers/sftp/library_lookup.py),
and by ``find_library`` itself where it may be present."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fsmove.transfers.sftp.library_lookup import NAMES, may_exist


def _cache(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "ld.so.cache"
    path.write_bytes(content)
    return str(path)


def test_absent_only_when_the_cache_and_every_folder_were_read_without_it(tmp_path: Path
                                                                        ) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "libssl.so.3").write_bytes(b"")
    (folder / "liboqsx.so.1").write_bytes(b"")  # another library's name, not liboqs.
    cache = _cache(tmp_path, b"glibc-ld.so.cache1.1\0libssl.so.3\0/usr/lib/libssl.so.3\0")
    assert not may_exist("oqs", cache=cache, folders=(str(folder), "/no/such/folder"),
                         environ={})


def test_a_cache_that_names_it_or_cannot_be_read_leaves_it_to_find_library(tmp_path: Path
                                                                         ) -> None:
    named = _cache(tmp_path, b"glibc-ld.so.cache1.1\0liboqs.so.5\0/usr/lib/liboqs.so.5\0")
    assert may_exist("oqs", cache=named, folders=(), environ={})
    assert not may_exist("liboqs", cache=named, folders=(), environ={})  # libliboqs.
    assert may_exist("oqs", cache=str(tmp_path / "missing"), folders=(), environ={})


def test_a_library_in_a_searched_folder_or_the_environment_s_paths_is_found(tmp_path: Path
                                                                           ) -> None:
    cache = _cache(tmp_path, b"glibc-ld.so.cache1.1\0")
    lib = tmp_path / "local-lib"
    lib.mkdir()
    (lib / "libnettle.so.8").write_bytes(b"")
    assert may_exist("nettle", cache=cache, folders=(str(lib),), environ={})
    for var in ("LD_LIBRARY_PATH", "LIBRARY_PATH"):
        assert may_exist("nettle", cache=cache, folders=(), environ={var: f"/no/such:{lib}"})
    assert not may_exist("oqs", cache=cache, folders=(str(lib),), environ={})


_IMPORT_AND_COUNT = """
import ctypes.util, json, subprocess, sys
real_find = ctypes.util.find_library
started = []
real_init = subprocess.Popen.__init__
def counting(self, args, *a, **k):
    started.append(args)
    real_init(self, args, *a, **k)
subprocess.Popen.__init__ = counting
{imports}
count = len(started)
from asyncssh.crypto import pq, umac
subprocess.Popen.__init__ = real_init
def found(name):
    try:
        return bool(real_find(name))
    except OSError:  # ctypes' gcc path on a name never there (liblibnettle.a)
        return False
present = [name for name in {names!r} if found(name)]
print(json.dumps([count, pq.sntrup_available, pq.mlkem_available,
                  hasattr(umac, "umac64"), present]))
"""


def _run(imports: str) -> list[object]:
    script = _IMPORT_AND_COUNT.format(imports=imports, names=sorted(NAMES))
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", script],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def test_importing_the_sftp_backend_starts_fewer_subprocesses_and_keeps_the_algorithms(
) -> None:
    """asyncssh alone runs ldconfig (then gcc and ld) for each name; through fsmove only
    a library that is there is asked of find_library (one ``ldconfig -p`` finds it),
    and asyncssh ends with the same algorithms."""
    alone = _run("import asyncssh")
    ours = _run("import fsmove.transfers.sftp")
    assert ours[1:] == alone[1:]
    present = ours[4]
    assert isinstance(present, list)
    assert alone[0] > len(present)  # what the lookup saves (if not, it guards nothing)
    assert ours[0] <= len(present), (ours, alone)
