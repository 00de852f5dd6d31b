"""rclone, tuned: 32 transfers, 32 checkers; remotes defined in the environment only.

The remotes ``src:`` and ``dst:`` come from ``RCLONE_CONFIG_<NAME>_*`` variables, the
password obscured by ``rclone obscure -`` (read from stdin) and passed in the
environment: never in argv, never in a file.
"""

from __future__ import annotations

import functools
import os
import subprocess

from ..environment import Location
from ..measure import Command, version_of
from .base import CopyJob

PARALLEL = 32


@functools.cache
def obscure(password: str) -> str:
    out = subprocess.run(
        ["rclone", "obscure", "-"],
        input=password,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def _remote_env(name: str, loc: Location) -> dict[str, str]:
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    if loc.scheme == "file":
        return {prefix + "TYPE": "local"}
    env = {
        prefix + "TYPE": loc.scheme,
        prefix + "HOST": loc.host,
        prefix + "PORT": str(loc.port),
        prefix + "USER": loc.user,
        prefix + "PASS": obscure(loc.password),
    }
    if loc.scheme == "sftp" and loc.known_hosts:
        env[prefix + "KNOWN_HOSTS_FILE"] = str(loc.known_hosts)
    return env


class RcloneRunner:
    name = "rclone"

    def version(self) -> str:
        return version_of(["rclone", "version"])

    def files_in_flight(self) -> int | None:
        return PARALLEL  # --transfers

    def command(self, job: CopyJob) -> Command:
        config = job.scratch / "rclone.conf"
        config.touch()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(job.scratch),
            "RCLONE_CONFIG": str(config),
            **_remote_env("src", job.src),
            **_remote_env("dst", job.dst),
        }
        argv = [
            "rclone",
            "copy",
            f"src:{job.src.path}",
            f"dst:{job.dst.path}",
            "--transfers",
            str(PARALLEL),
            "--checkers",
            str(PARALLEL),
            "--ftp-concurrency",
            str(2 * PARALLEL),
            "--stats",
            "0",
            "-q",
        ]
        return Command(argv=tuple(argv), env=env, cwd=job.scratch)
