"""Free TCP ports on a loopback address: one for a listener, a range for passive data."""

from __future__ import annotations

import errno
import random
import socket

#: Passive ranges are drawn below Linux's ephemeral range (32768-60999), so the ports the
#: kernel hands out for port-0 binds and outgoing connections never land in them.
PASV_LOW = 10000
PASV_HIGH = 32000
PASV_SIZE = 256  # 32 connections per side must not exhaust it


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def free_port_range(host: str = "127.0.0.1", *, size: int = PASV_SIZE) -> tuple[int, int]:
    """A random range of ``size`` consecutive free ports (inclusive bounds).

    Random so that servers started at the same time, by this session or another one on
    the machine, do not share passive ports.
    """
    rng = random.SystemRandom()
    for _ in range(200):
        low = rng.randrange(PASV_LOW, PASV_HIGH - size)
        if all(_is_free(host, port) for port in range(low, low + size)):
            return low, low + size - 1
    raise RuntimeError(f"no {size} consecutive free ports on {host} in {PASV_LOW}-{PASV_HIGH}")
