"""A scratch folder for server configs and roots that the test account can reach."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def servers_workdir(prefix: str = "fsmove-servers-") -> Iterator[Path]:
    """A fresh folder in the system temp dir, mode 0711, removed on exit.

    pytest's ``tmp_path`` lives under a 0700 folder the test account cannot traverse,
    so server roots go here instead. 0711: the account may pass through, not list.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o711)
        yield path
    finally:
        shutil.rmtree(path)
