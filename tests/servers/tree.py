"""Files and folders that tests put into a server's root, owned by the server's account.

Tests run as root; a file root creates in a server root belongs to root and the server
(running as the test account) could not overwrite, rename or delete it. Go through
``make_tree`` and ``new_subdir`` instead of writing into ``server.root`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from .base import RunningServer


def _owned_dirs(server: RunningServer, folder: Path) -> None:
    """mkdir -p ``folder`` below ``server.root``, each new level owned by the account."""
    missing: list[Path] = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir(mode=0o755)
        os.chown(path, *server.owner)


def _inside(server: RunningServer, relative: str) -> Path:
    path = server.root / relative
    if os.path.isabs(relative) or ".." in Path(relative).parts:
        raise ValueError(f"{relative!r} is not a relative path inside the server root")
    return path


def make_tree(
    server: RunningServer, files: Mapping[str, bytes], *, mtime: float | None = None
) -> None:
    """Write ``files`` (relative path -> content) below ``server.root``.

    Folders are created as needed; files and folders belong to the server's account.
    ``mtime``, when given, is set on every written file.
    """
    for relative, content in files.items():
        path = _inside(server, relative)
        _owned_dirs(server, path.parent)
        path.write_bytes(content)
        path.chmod(0o644)
        os.chown(path, *server.owner)
        if mtime is not None:
            os.utime(path, (mtime, mtime))


def new_subdir(server: RunningServer, name: str) -> RunningServer:
    """An empty folder ``name`` in the server's root, as a server whose root it is.

    ``root`` and ``url_path`` point at the new folder; everything else is unchanged.
    """
    path = _inside(server, name)
    if path.exists():
        raise FileExistsError(f"{path} already exists: pick a fresh name")
    _owned_dirs(server, path)
    return replace(server, root=path, url_path=server.path(name))
