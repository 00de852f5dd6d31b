"""A source file whose name holds a CR or a LF is refused on its own; its folder's other
files are copied.

Before session 32, on a vsftpd source, such a name failed its whole folder: a LF cut
its listing line in two ("unknown LIST line format ... not supported"), a CR made the
name's MDTM fail ("unsafe path"), and at the source's root a run could even end "the
source folder does not exist". Names are the server's to list (pure-ftpd leaves them
out of its listings altogether: nothing fsmove can see, README).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.copy_harness import Served, run_copy_inprocess, side_for, tree_digests

ODD = ["bad\rname", "bad\nname", "ends\r"]


@pytest.mark.interop
@pytest.mark.parametrize("server_fixture", ["vsftpd_server", "proftpd_server",
                                            "pyftpdlib_server"])
def test_names_with_cr_or_lf_are_refused_alone(server_fixture: str,
                                               served: Served,
                                               tmp_path: Path) -> None:
    _server, src = served(server_fixture, "src")
    files = {"a.txt": b"a", "sub/b.txt": b"b"}
    odd = {name: b"odd" for name in ODD} | {f"sub/{name}": b"odd" for name in ODD}
    src.put(files | odd, mtime=1_600_000_000)
    (tmp_path / "dst").mkdir()
    dst = side_for("local", None, tmp_path / "dst", "dst")
    result = run_copy_inprocess(src, dst, journal=tmp_path / "job.db")
    assert result.exit_code == 3, result.output
    refused = sorted(path for path, _why in result.summary["refused"])  # type: ignore[union-attr]
    assert refused == sorted(repr_path(p) for p in odd), result.output
    assert set(tree_digests(dst.root)) == set(files), result.output


def repr_path(path: str) -> str:
    """How the summary names a path that cannot be printed as is."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/{name!r}" if folder else repr(name)
