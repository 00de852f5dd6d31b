"""lftp, tuned: ``mirror --parallel=32`` from one server to the other, through the client.

The script (it holds the passwords in its URLs) is a 0600 file fed on stdin, never argv.
FXP (server-to-server FTP) is switched off so lftp copies through the client as the
other tools do; TLS is not attempted on the plain-FTP test servers. SFTP goes through
lftp's ``ssh`` connect program, with the client key and the pinned known_hosts.
"""

from __future__ import annotations

import os
import shlex
from urllib.parse import quote

from ..environment import Location
from ..measure import Command, version_of
from .base import CopyJob, private_file

PARALLEL = 32


def _url(loc: Location) -> str:
    if loc.scheme == "file":
        return loc.path
    auth = f"{quote(loc.user, safe='')}:{quote(loc.password, safe='')}"
    return f"{loc.scheme}://{auth}@{loc.host}:{loc.port}{quote(loc.path)}"


def _lftp_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class LftpRunner:
    name = "lftp"

    def version(self) -> str:
        return version_of(["lftp", "--version"])

    def files_in_flight(self) -> int | None:
        return PARALLEL  # mirror --parallel

    def command(self, job: CopyJob) -> Command:
        ssh = ["ssh", "-a", "-x", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=no"]
        known = [loc.known_hosts for loc in (job.src, job.dst) if loc.known_hosts]
        if known:
            known_file = job.scratch / "known_hosts"
            known_file.write_text("".join(p.read_text() for p in known))
            ssh += ["-o", f"UserKnownHostsFile={known_file}"]
        keys = {loc.client_key for loc in (job.src, job.dst) if loc.client_key}
        for key in sorted(keys):
            ssh += ["-i", str(key)]
        mirror = ["mirror", f"--parallel={PARALLEL}"]
        if job.resume:
            mirror.append("--continue")
        lines = [
            "set cmd:fail-exit yes",
            "set ftp:use-fxp no",
            "set ftp:ssl-allow no",
            "set net:max-retries 3",
            "set net:reconnect-interval-base 1",
            "set net:timeout 60",
            f"set sftp:connect-program {_lftp_quote(shlex.join(ssh))}",
            " ".join(mirror) + f" {_lftp_quote(_url(job.src))} {_lftp_quote(_url(job.dst))}",
            "exit",
        ]
        script = private_file(job.scratch / "lftp.script", "\n".join(lines) + "\n")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(job.scratch),
            "LANG": "C.UTF-8",
        }
        return Command(argv=("lftp",), env=env, stdin_path=script, cwd=job.scratch)
