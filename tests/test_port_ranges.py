"""The passive port ranges the test servers get: disjoint while held, machine-wide
(``tests/servers/ports.py``), so one server's client never lands on another's listener."""

from __future__ import annotations

import fcntl
import os

import pytest

from tests.servers import ports


def test_ranges_held_at_once_are_disjoint_locked_and_given_back() -> None:
    held = [ports.free_port_range() for _ in range(6)]
    try:
        seen: set[int] = set()
        for low, high in held:
            assert high - low + 1 == ports.PASV_SIZE
            assert ports.PASV_LOW <= low and high < ports.PASV_HIGH
            span = set(range(low, high + 1))
            assert not span & seen
            seen |= span
            # Another process (another open file, as here) cannot take the slot.
            slot = (low - ports.PASV_LOW) // ports.PASV_SIZE
            fd = os.open(ports._SLOTS_DIR / f"{ports.PASV_SIZE}-{slot}", os.O_RDWR)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
    finally:
        for ports_range in held:
            ports.release_port_range(ports_range)
    assert not any(r in ports._held for r in held)
    ports.release_port_range(held[0])  # again: nothing happens
