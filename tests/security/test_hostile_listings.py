"""Hostile or broken listings never make fsmove write outside the destination root:
each such entry is refused (or its folder failed) and reported, the rest is copied.

The FTP cases run against ``hostile_ftpd`` (a real FTP server over sockets that sends
crafted MLSD lines); the local cases use a real folder with a symlink loop and names
Linux allows but fsmove refuses (newline, bytes that are not UTF-8).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from tests.faults.fsmove_run import FsmoveRunner, Run
from tests.faults.hostile_ftpd import HostileDir, HostileFile, mlsd_line, start_hostile_ftpd

FAST = ("--timeout", "3", "--retries", "1", "--retry-delay", "0.1", "--json")

#: folder name -> the hostile name listed in it (beside an honest "ok.txt").
def hostile_names(token: bytes) -> dict[bytes, bytes]:
    return {
        b"dotdot": b"../" + token,
        b"dotdot-deep": b"../../../../../../tmp/" + token,
        b"slash": b"sub/" + token,
        b"absolute": b"/tmp/" + token,
        b"newline": b"evil\n" + token,
        b"nul": b"evil\x00" + token,
        b"not-utf8": b"caf\xe9-" + token,
        b"too-long": token + b"x" * 300,
        b"dot": b".",
        b"dotdot-file": b"..",
    }


#: Folders whose hostile entry the walk itself refuses (siblings are always copied).
ENTRY_REFUSED = {b"not-utf8", b"too-long", b"dot", b"dotdot-file"}


def _hostile_tree(token: bytes) -> dict[bytes, HostileFile | HostileDir]:
    names = hostile_names(token)
    tree: dict[bytes, HostileFile | HostileDir] = {
        b"/": HostileDir((*(mlsd_line("dir", d) for d in names), mlsd_line("file", b"top.txt", 3),
                          mlsd_line("dir", b"repeat"))),
        b"/top.txt": HostileFile(b"top"),
        # A listing that repeats an entry: copied once.
        b"/repeat": HostileDir((mlsd_line("file", b"twice.txt", 5),
                                mlsd_line("file", b"twice.txt", 5))),
        b"/repeat/twice.txt": HostileFile(b"twice"),
    }
    for folder, name in names.items():
        tree[b"/" + folder] = HostileDir((mlsd_line("file", name, 5),
                                          mlsd_line("file", b"ok.txt", 2)))
        tree[b"/" + folder + b"/" + name] = HostileFile(b"EVIL!")
        tree[b"/" + folder + b"/ok.txt"] = HostileFile(b"ok")
    return tree


def _all_names(root: Path) -> list[str]:
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files]


def _check_reported(run: Run, folders: list[bytes]) -> None:
    """Each hostile folder shows up in the summary: refused entry or failed folder."""
    summary = run.summary
    reported = [str(p) for p, _why in summary["refused"]]  # type: ignore[union-attr]
    reported += [str(p) for p, _why in summary["failed"]]  # type: ignore[union-attr]
    for folder in folders:
        name = folder.decode()
        assert any(p == name or p.startswith(name + "/") for p in reported), (
            f"{name}: hostile entry not reported in {reported}")


def test_hostile_ftp_listing_never_escapes_the_destination(
    fsmove: FsmoveRunner, tmp_path: Path
) -> None:
    token = b"fsmove-escape-" + secrets.token_hex(6).encode()
    outer = tmp_path / "outer"
    dst = outer / "dst"
    outer.mkdir()
    with start_hostile_ftpd(_hostile_tree(token)) as server:
        fsmove.secret(server.password)
        env = {"FSMOVE_SRC_PASSWORD": server.password}
        run = fsmove.run("copy", server.url(), str(dst), *FAST, env=env)
        assert "Traceback" not in run.stderr, str(run)
        # Nothing outside the destination root, nothing named after the token anywhere.
        assert os.listdir(outer) == ["dst"]
        assert not any(token.decode() in p for p in _all_names(tmp_path))
        assert not Path("/tmp", token.decode()).exists()
        assert not Path("/", token.decode()).exists()
        assert not any(os.path.islink(p) for p in _all_names(dst))
        folders = [f for f in hostile_names(token) if f not in (b"dot", b"dotdot-file")]
        _check_reported(run, folders)
        summary = run.summary
        # Exit 3 exactly when some folder could not be listed (its files are missing).
        assert run.code == (3 if summary["failed"] else 0), str(run)
        # The honest neighbours of an entry the walk refused are copied; the repeated
        # entry once; nothing else lands in the destination.
        for folder in ENTRY_REFUSED:
            assert (dst / folder.decode() / "ok.txt").read_bytes() == b"ok"
            assert os.listdir(dst / folder.decode()) == ["ok.txt"]
        assert (dst / "repeat" / "twice.txt").read_bytes() == b"twice"
        assert (dst / "top.txt").read_bytes() == b"top"
        for path in _all_names(dst):
            if os.path.isfile(path):
                assert Path(path).read_bytes() != b"EVIL!", path
        # A rerun refuses the same entries again and moves nothing new.
        again = fsmove.run("copy", server.url(), str(dst), *FAST, env=env)
        assert again.code == run.code, str(again)
        assert again.summary["files_copied"] == 0
        assert os.listdir(outer) == ["dst"]


def _bytes_path(root: Path, name: bytes) -> bytes:
    return os.fsencode(root) + b"/" + name


def test_local_symlink_loop_and_unusable_names_are_refused(
    fsmove: FsmoveRunner, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "loop").mkdir(parents=True)
    (src / "loop" / "file.txt").write_bytes(b"inside the loop folder")
    os.symlink("..", src / "loop" / "up")  # loop/up/loop/up/... forever if followed
    os.symlink("self", src / "self")  # a link to itself
    os.symlink("/etc", src / "outside")  # a link leading out of the source
    with open(_bytes_path(src, b"line\nbreak.txt"), "wb") as fh:
        fh.write(b"newline")
    with open(_bytes_path(src, b"latin1-\xe9t\xe9.txt"), "wb") as fh:
        fh.write(b"not utf-8")
    (src / "plain.txt").write_bytes(b"plain")
    dst = tmp_path / "outer" / "dst"
    run = fsmove.run("copy", str(src), str(dst), *FAST)
    # Files with unusable names are data not copied: partial (3). Symlinks alone are not.
    assert run.code == 3, str(run)
    failed = [str(p) for p, _why in run.summary["failed"]]  # type: ignore[union-attr]
    assert len(failed) == 2 and not any("link" in p for p in failed), failed
    refused = {str(p): str(why) for p, why in run.summary["refused"]}  # type: ignore[union-attr]
    for name in ("loop/up", "self", "outside"):
        assert name in refused and "link" in refused[name], refused
    assert any("UTF-8" in why for why in refused.values()), refused
    assert any("newline" in why for why in refused.values()), refused
    assert sorted(_all_names(dst)) == sorted(
        str(dst / p) for p in ("loop", "loop/file.txt", "plain.txt"))
    assert os.listdir(dst.parent) == ["dst"]


@pytest.mark.parametrize("streamed", [b"short", b"much longer than claimed"],
                         ids=["streams-less", "streams-more"])
def test_size_that_disagrees_with_the_stream_fails_that_file_only(
    fsmove: FsmoveRunner, tmp_path: Path, streamed: bytes
) -> None:
    tree = {
        b"/": HostileDir(auto=True),
        b"/liar.bin": HostileFile(streamed, claimed_size=12),
        b"/honest.txt": HostileFile(b"honest"),
    }
    dst = tmp_path / "dst"
    with start_hostile_ftpd(tree) as server:
        fsmove.secret(server.password)
        env = {"FSMOVE_SRC_PASSWORD": server.password}
        run = fsmove.run("copy", server.url(), str(dst), *FAST, env=env)
        assert run.code == 3, str(run)
        assert "Traceback" not in run.stderr
        failed = {str(p): str(why) for p, why in run.summary["failed"]}  # type: ignore[union-attr]
        assert list(failed) == ["liar.bin"], failed
        assert "bytes" in failed["liar.bin"] or "grew" in failed["liar.bin"]
        # Nothing at the final name that could pass for the file.
        assert not (dst / "liar.bin").exists()
        assert (dst / "honest.txt").read_bytes() == b"honest"
        # The server stops lying: the rerun completes.
        server.stop_lying()
        again = fsmove.run("copy", server.url(), str(dst), *FAST, env=env)
        assert again.code == 0, str(again)
        assert (dst / "liar.bin").read_bytes() == streamed
        assert [n for n in os.listdir(dst) if n.startswith(".fsmove.")] == []
