"""What a side holds that is not the user's tree, left out by copy, ``--delete`` and
verify alike (the options recorded with the job stay the user's):

* fsmove's own state inside a local side (``state_dir.own_state_excludes``);
* a server's own bookkeeping in an account's root: pure-ftpd's quota file
  ``/.ftpquota`` (kept by the server when quotas are on; it answers "553 Prohibited
  file name" to any RETR or DELE of it). Before session 33 a copy from such a root
  ended partial on every run, verify called it a difference, and ``--delete`` to it
  could never finish;
* an FTP server's uploads in flight, in any folder: pure-ftpd (with quotas) writes each
  upload to ``.pureftpd-upload.<id>`` and renames it when done. A listing taken
  meanwhile (this run's own probe, or the live app's upload at a source) showed one:
  a partial file to copy, a difference to report, a file to delete that was gone.
"""

from __future__ import annotations

from pathlib import Path

from .endpoint import Endpoint
from .state_dir import own_state_excludes

#: Files an FTP server keeps for itself at the root of an account.
FTP_ROOT_FILES = ("/.ftpquota",)
#: Files an FTP server makes in any folder (a name pattern, at any depth).
FTP_FILES = (".pureftpd-upload.*",)


def server_files(endpoint: Endpoint) -> tuple[str, ...]:
    """Patterns for the server's own files at ``endpoint``: its uploads in flight, and
    where the URL names the account's root (a pure-ftpd login lands there; a subfolder
    has no quota file) its bookkeeping there."""
    if endpoint.scheme not in ("ftp", "ftps"):
        return ()
    if endpoint.path.strip("/") == "":
        return FTP_ROOT_FILES + FTP_FILES
    return FTP_FILES


def not_the_tree(src: Endpoint, dst: Endpoint, journal: Path) -> tuple[str, ...]:
    """The exclude patterns, for both sides, of fsmove's own state in a local side. A
    server's own files are per side (``server_files``, ``TreeRules.server_files``):
    excluded from both sides they hid a user's local ``.pureftpd-upload.notes``, not
    copied, and verify agreed (session 33, the pass on its own changes)."""
    found: list[str] = []
    for e in (src, dst):
        if e.is_local:
            found += own_state_excludes(e.path, journal)
    return tuple(dict.fromkeys(found))
