"""Print the lowest allowed version of each runtime dependency, pinned (`name==X`), read
from pyproject.toml's `>=` bounds: what `bash run.sh test` installs into a second venv to
prove the lower bounds still work (pip has no "lowest" resolution of its own)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def lowest_pins(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for spec in deps:
        found = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)", spec)
        if found is None:
            sys.exit(f"lowest-deps: {spec!r} has no >= lower bound to test")
        pins.append(f"{found.group(1)}=={found.group(2)}")
    return pins


if __name__ == "__main__":
    print("\n".join(lowest_pins(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
