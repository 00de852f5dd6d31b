"""A dangling symbolic link at the destination where the source has a folder fails that
folder only, on every FTP server, and no rerun is stuck on it.

proftpd's MLSD leaves dangling links out of its listings, so fsmove did not know the
name was taken: its MKD got "550 ... File exists" and, before session 32, that stopped
the whole copy ("fsmove: error: mkdir 'd' ...", exit 1), leaving partial files behind,
and every rerun stopped the same way.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from tests.copy_harness import Served, run_copy_inprocess, side_for


@pytest.mark.interop
@pytest.mark.parametrize("server_fixture", ["proftpd_server", "vsftpd_server",
                                            "pureftpd_server"])
def test_a_dangling_link_where_a_folder_goes_fails_that_folder(
        server_fixture: str, served: Served,
        tmp_path: Path) -> None:
    server, dst = served(server_fixture, "dst")
    for name in ("d", "e"):
        os.symlink("nowhere", server.root / name)
        os.lchown(server.root / name, *server.owner)
    (tmp_path / "src").mkdir()
    src = side_for("local", None, tmp_path / "src", "src")
    files = {f"f{i:02d}.txt": os.urandom(100) for i in range(20)}
    src.put({**files, "d/g.txt": b"below the link"}, mtime=1_600_000_000)
    (src.root / "e").mkdir()  # an empty folder: made after the files, by itself
    journal = tmp_path / "job.db"
    for _run in range(2):
        result = run_copy_inprocess(src, dst, journal=journal)
        assert result.exit_code == 3, result.output
        failed = {p for p, _why in result.summary["failed"]}  # type: ignore[union-attr]
        refused = {p for p, _why in result.summary["refused"]}  # type: ignore[union-attr]
        assert failed | refused <= {"d", "d/g.txt", "e"}, result.output
        assert {"d", "d/g.txt"} & (failed | refused), result.output
        for name, data in files.items():
            assert (dst.root / name).read_bytes() == data, result.output
        assert os.readlink(server.root / "d") == os.readlink(server.root / "e") == "nowhere"
        assert not (tmp_path / "nowhere").exists()


@pytest.mark.interop
@pytest.mark.parametrize("server_fixture", ["sshd_server", "vsftpd_server", "proftpd_server",
                                            "pureftpd_server"])
def test_delete_looks_again_at_the_folders_above_what_it_deletes(
        server_fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The walk saw ``d`` as a folder; by the time ``--delete`` runs (hours later on a
    big tree) another writer replaced it by a link to elsewhere. Before session 34 the
    file of that name there was deleted (on all four servers); now every folder above a
    deletion is looked at again right before it: refused, named."""
    from fsmove.transfers.backend import Entry, EntryKind, LinkRefusedError
    from fsmove.transfers.copy.deletion import delete_files, remove_folders
    from fsmove.transfers.pool import SessionPool
    from tests.conformance_stores import run, store_for
    from tests.servers import make_tree, new_subdir

    base = request.getfixturevalue(server_fixture)
    server = new_subdir(base, f"seen-again-{tmp_path.name}")
    make_tree(server, {"dst/d/victim.txt": b"walked", "dst/d/e/x.txt": b"x",
                       "dst/ok/gone.txt": b"to delete", "outside/victim.txt": b"not ours",
                       "outside/e/x.txt": b"not ours either"})
    (server.root / "dst" / "d").rename(server.root / "moved-away")
    (server.root / "dst" / "d").symlink_to("../outside")
    os.lchown(server.root / "dst" / "d", *server.owner)
    dst = replace(server, root=server.root / "dst", url_path=server.path("dst"))

    async def go() -> list[tuple[str, object]]:
        pool = SessionPool(store_for(dst), max_sessions=2)
        try:
            entries = [Entry(p, EntryKind.FILE) for p in ("d/victim.txt", "d/e/x.txt",
                                                          "ok/gone.txt")]
            done = [(e.path, err) async for e, err in delete_files(pool, entries,
                                                                    journal=None)]
            await remove_folders(pool, ["d/e", "ok"])
            return done
        finally:
            await pool.aclose()

    done = dict(run(go))
    assert isinstance(done["d/victim.txt"], LinkRefusedError)
    assert isinstance(done["d/e/x.txt"], LinkRefusedError)
    assert done["ok/gone.txt"] is None
    assert (server.root / "outside" / "victim.txt").read_bytes() == b"not ours"
    assert (server.root / "outside" / "e" / "x.txt").exists()
    assert not (server.root / "dst" / "ok").exists()
