"""Free TCP ports on a loopback address: one for a listener, a range for passive data."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


#: One lock file per aligned range of ``PASV_SIZE`` ports, shared by every test process on
#: the machine (pytest-xdist workers, a second suite): a range is handed out only while
#: its slot's ``flock`` is held, so two servers running at once never share passive
#: ports. Shared ports let a client of one server that connects to a stale data port
#: land on the other server's listener, which takes it as its own data connection (a
#: proftpd probe once saw its data port refused that way under load). The lock is
#: released with ``release_port_range`` or when the process ends (the kernel drops it).
_SLOTS_DIR = Path(tempfile.gettempdir()) / "fsmove-test-pasv-slots"
_held: dict[tuple[int, int], int] = {}


def _reserve_slot(host: str, size: int, rng: random.Random) -> tuple[int, int] | None:
    slots = list(range((PASV_HIGH - PASV_LOW) // size))
    rng.shuffle(slots)
    try:
        _SLOTS_DIR.mkdir(mode=0o1777, exist_ok=True)
    except OSError:
        return None
    for slot in slots:
        low = PASV_LOW + slot * size
        try:
            fd = os.open(_SLOTS_DIR / f"{size}-{slot}", os.O_CREAT | os.O_RDWR, 0o666)
        except OSError:
            continue  # another user's slot file: not ours to take
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if all(_is_free(host, port) for port in range(low, low + size)):
            _held[(low, low + size - 1)] = fd
            return low, low + size - 1
        os.close(fd)  # in use by something else: the lock goes with the fd
    return None


def free_port_range(host: str = "127.0.0.1", *, size: int = PASV_SIZE) -> tuple[int, int]:
    """A range of ``size`` consecutive free ports (inclusive bounds), reserved for this
    process until ``release_port_range`` (see ``_SLOTS_DIR``); random among the free
    ones. If every slot is taken, an unreserved random range of free ports."""
    rng = random.SystemRandom()
    reserved = _reserve_slot(host, size, rng)
    if reserved is not None:
        return reserved
    for _ in range(200):
        low = rng.randrange(PASV_LOW, PASV_HIGH - size)
        if all(_is_free(host, port) for port in range(low, low + size)):
            return low, low + size - 1
    raise RuntimeError(f"no {size} consecutive free ports on {host} in {PASV_LOW}-{PASV_HIGH}")


def release_port_range(ports: tuple[int, int] | None) -> None:
    """Give back a range from ``free_port_range`` (its server stopped); idempotent."""
    fd = _held.pop(ports, None) if ports is not None else None
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def port_range_released(ports: tuple[int, int]) -> Iterator[None]:
    """Release ``ports`` when the block ends, however it ends."""
    try:
        yield
    finally:
        release_port_range(ports)
