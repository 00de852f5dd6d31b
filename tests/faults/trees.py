"""Test trees and the fast options the fault suites share."""

from __future__ import annotations

import random
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
FAST = ("--timeout", "3", "--retry-delay", "0.1", "--json")


def random_files(count: int, size: int, *, seed: int, prefix: str = "f") -> dict[str, bytes]:
    rnd = random.Random(seed)
    return {f"{prefix}{i:02d}.bin": rnd.randbytes(size) for i in range(count)}


def write_local(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
