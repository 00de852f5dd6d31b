"""What a copy refuses to do, run as the real CLI on local folders (issue 14):

* item 4: two runs into one destination under different job ids (another ``--journal``,
  a symlinked path) — the second refuses with a one-line error (exit 1) while the first
  runs, and the first ends with correct files;
* item 5: ``--delete`` never deletes below a path the source holds as a symlink;
* item 9: a destination inside the source through a symlinked path is refused;
* item 11: a mistyped URL never shows its password (stdout, stderr, journals, ``fsmove
  status``) and is never taken as a local path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fsmove.transfers.destination_lock import destination_key
from fsmove.transfers.endpoint import parse_endpoint

MiB = 1024 * 1024


def fsmove_env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMOVE_")}
    return {**env, "XDG_STATE_HOME": str(state)}


def fsmove(*args: str, state: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], env=fsmove_env(state),
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)


def one_line_error(run: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert run.returncode == code, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fsmove: error:"), run.stderr
    assert "Traceback" not in run.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


# ---------------------------------------------------------------------------------------
# Item 4: one destination, two job ids.
# ---------------------------------------------------------------------------------------


def test_a_second_job_into_the_same_destination_refuses(tmp_path: Path) -> None:
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    src.mkdir()
    for i in range(4):
        (src / f"f{i}.bin").write_bytes(os.urandom(4 * MiB))
    dst.mkdir()
    (tmp_path / "dst-link").symlink_to(dst)
    first = subprocess.Popen(
        [sys.executable, "-m", "fsmove.cli", "copy", str(src), str(dst), "--json",
         "--bwlimit", "2M", "--journal", str(tmp_path / "one.db")],
        env=fsmove_env(state), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        for line in first.stdout:  # until the first run holds the destination and copies
            if line.startswith("{") and json.loads(line).get("type") == "file_started":
                break
        else:
            pytest.fail(f"the first run never started a file: {first.stderr.read()}")  # type: ignore[union-attr]
        first.send_signal(signal.SIGSTOP)  # it holds its locks while stopped
        try:
            for other_dst, journal in ((str(dst), "two.db"),
                                       (str(tmp_path / "dst-link"), "three.db")):
                second = fsmove("copy", str(src), other_dst, "--journal",
                                str(tmp_path / journal), state=state)
                one_line_error(second, 1, "another fsmove", "is copying into")
                assert not (tmp_path / journal).exists()  # refused before any journal
        finally:
            first.send_signal(signal.SIGCONT)
        _out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err
    assert tree(dst) == tree(src)
    # The lock went with the first run: the same copy now runs (and moves nothing).
    again = fsmove("copy", str(src), str(dst), "--journal", str(tmp_path / "two.db"), "-q",
                   state=state)
    assert again.returncode == 0, again.stderr


def test_destination_spellings_share_one_lock() -> None:
    def key(url: str) -> str:
        return destination_key(parse_endpoint(url))

    assert key("ftp://h/x") == key("ftp://H:21/x/") == key("ftps://h:21/x")
    assert key("ftp://bob@h/x") == key("ftp://alice@h/./x")
    assert key("ftp://h/x") != key("ftp://h:2121/x") != key("sftp://h/x")


# ---------------------------------------------------------------------------------------
# Item 5: --delete and a source symlink.
# ---------------------------------------------------------------------------------------


def test_delete_never_descends_where_the_source_has_a_link(tmp_path: Path) -> None:
    src, dst, real, state = (tmp_path / n for n in ("src", "dst", "real", "state"))
    (real / "deep").mkdir(parents=True)
    (real / "a.jpg").write_bytes(b"a")
    src.mkdir()
    (src / "keep.txt").write_bytes(b"keep")
    (src / "media").symlink_to(real)
    (dst / "media/deep").mkdir(parents=True)
    (dst / "media/a.jpg").write_bytes(b"the destination's own a.jpg")
    (dst / "media/deep/b.jpg").write_bytes(b"b")
    (dst / "stale.txt").write_bytes(b"not in the source")

    planned = fsmove("copy", str(src), str(dst), "--delete", "--dry-run", "--json",
                     state=state)
    assert planned.returncode == 0, planned.stderr
    events = [json.loads(line) for line in planned.stdout.splitlines()
              if line.startswith("{")]
    would = sorted(str(e.get("path")) for e in events if e.get("type") == "deleted")
    assert would == ["stale.txt"]

    done = fsmove("copy", str(src), str(dst), "--delete", "-q", state=state)
    assert done.returncode == 0, done.stderr
    assert (dst / "media/a.jpg").read_bytes() == b"the destination's own a.jpg"
    assert (dst / "media/deep/b.jpg").exists()
    assert not (dst / "stale.txt").exists()
    assert (dst / "keep.txt").read_bytes() == b"keep"


# ---------------------------------------------------------------------------------------
# Item 9: source and destination compared as real paths.
# ---------------------------------------------------------------------------------------


def test_destination_inside_the_source_through_a_symlink_is_refused(tmp_path: Path) -> None:
    src, state = tmp_path / "src", tmp_path / "state"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (tmp_path / "src-link").symlink_to(src)
    (tmp_path / "sub-link").symlink_to(src / "sub")
    before = tree(src)
    cases = [
        (str(src), str(tmp_path / "src-link" / "copy"), "inside the source"),
        (str(src), str(tmp_path / "sub-link"), "inside the source"),
        (str(tmp_path / "src-link"), str(src), "same folder"),
        (str(tmp_path / "sub-link"), str(tmp_path / "src-link"), "source is inside"),
    ]
    for a, b, words in cases:
        one_line_error(fsmove("copy", a, b, "-q", state=state), 2, words)
    assert tree(src) == before
    assert sorted(p.name for p in src.iterdir()) == ["a.txt", "sub"]


@pytest.mark.parametrize("kind", ["sshd_server", "vsftpd_server", "proftpd_server"])
def test_roots_nested_through_a_link_on_the_server_are_refused(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """``/n/real`` and ``/n/alias/sub`` on one server, ``alias`` a link to ``real``:
    the URLs differ, the folders nest. Before session 34 the copy wrote into the source
    and ``--delete`` (source inside the destination) deleted the source's files; the
    server now names both roots, links resolved, before anything is written."""
    from tests.servers import RunningServer, make_tree, new_subdir

    base: RunningServer = request.getfixturevalue(kind)
    server = new_subdir(base, f"nest-{tmp_path.name}")
    make_tree(server, {"real/a.txt": b"hello", "real/keep/only.txt": b"only copy"})
    (server.root / "alias").symlink_to("real")
    os.lchown(server.root / "alias", *server.owner)
    before = tree(server.root / "real")
    env_extra = ("--known-hosts", str(server.known_hosts)) if server.known_hosts else ()
    state = tmp_path / "state"
    cases = [
        (server.url("real"), server.url("alias/sub"), "the destination is inside the source"),
        (server.url("real/keep"), server.url("alias"), "the source is inside the destination"),
        (server.url("alias"), server.url("real"), "same folder"),
    ]
    for a, b, words in cases:
        run = subprocess.run(
            [sys.executable, "-m", "fsmove.cli", "copy", a, b, "--delete", "-q", *env_extra],
            env={**fsmove_env(state), "FSMOVE_SRC_PASSWORD": server.password,
                 "FSMOVE_DST_PASSWORD": server.password},
            capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
        one_line_error(run, 2, words, "on the server")
    assert tree(server.root / "real") == before
    assert sorted(p.name for p in (server.root / "real").iterdir()) == ["a.txt", "keep"]


# ---------------------------------------------------------------------------------------
# Item 11: URL typos.
# ---------------------------------------------------------------------------------------

TYPOS = [
    ("ftp://bob:Zq9S3cr3t/Pw7x@127.0.0.1/x", ("Zq9S3cr3t", "Pw7x")),
    ("ftp://bob:4242/Pw7x@127.0.0.1/x", ("4242", "Pw7x")),
    ("ftp:/bob:Zq9pw1@127.0.0.1/x", ("Zq9pw1",)),
    ("sftp//bob:Zq9pw2@127.0.0.1/x", ("Zq9pw2",)),
    ("ftp:bob:Zq9pw3@127.0.0.1/x", ("Zq9pw3",)),
    ("ftp//127.0.0.1", ()),
    # A port typed twice (before session 32: "cannot resolve host", exit 1), an IPv6
    # address without brackets, and one left unclosed (its mask garbled the address).
    ("ftp://bob:Zq9pw4@127.0.0.1:2121:21/x", ("Zq9pw4",)),
    ("ftp://bob:Zq9pw5@::1/x", ("Zq9pw5",)),
    ("ftp://bob:Zq9pw6@[::1/x", ("Zq9pw6",)),
]


def _files_holding(root: Path, secret: str) -> list[str]:
    found = []
    for p in root.rglob("*"):
        if secret in p.name:
            found.append(str(p))
        elif p.is_file() and secret.encode() in p.read_bytes():
            found.append(str(p))
    return found


@pytest.mark.parametrize(("url", "secrets"), TYPOS, ids=[u for u, _ in TYPOS])
def test_url_typos_are_refused_without_showing_the_password(
    tmp_path: Path, url: str, secrets: tuple[str, ...]
) -> None:
    src, state, cwd = tmp_path / "src", tmp_path / "state", tmp_path / "cwd"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    cwd.mkdir()
    runs = [
        fsmove("copy", str(src), url, state=state, cwd=cwd),
        fsmove("copy", url, str(tmp_path / "dst"), state=state, cwd=cwd),
        fsmove("verify", url, str(src), state=state, cwd=cwd),
        fsmove("copy", str(src), url, "--dry-run", state=state, cwd=cwd),
    ]
    status = fsmove("status", state=state, cwd=cwd)
    for run in runs:
        one_line_error(run, 2, "malformed endpoint")
    assert list(cwd.iterdir()) == []  # never taken as a local path
    assert not (tmp_path / "dst").exists()
    for secret in secrets:
        for run in (*runs, status):
            assert secret not in run.stdout + run.stderr, (secret, run.stderr)
        assert _files_holding(tmp_path, secret) == []


# ---------------------------------------------------------------------------------------
# A file where the source has a folder, a folder where it has a file.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("delete", [False, True])
def test_kind_conflicts_are_refused_one_by_one_and_the_rest_is_copied(
        tmp_path: Path, delete: bool) -> None:
    """Before, the folder's mkdir failed and stopped the whole copy (exit 1, files in
    flight left as temporary files). Now each conflict is refused (exit 3), the rest is
    copied, the destination's entries are left as they are (a run with a failure
    deletes nothing, even with --delete), and once they are removed a rerun copies."""
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    (src / "x").mkdir(parents=True)
    (src / "x" / "in.txt").write_bytes(b"in a folder")
    (src / "y").write_bytes(b"a file")
    (src / "z").write_bytes(b"no conflict")
    dst.mkdir()
    (dst / "x").write_bytes(b"the destination's file")
    (dst / "y").mkdir()
    (dst / "y" / "keep").write_bytes(b"the destination's folder")
    extra = ["--delete"] if delete else []
    run = fsmove("copy", str(src), str(dst), "--json", *extra, state=state)
    assert run.returncode == 3, run.stderr
    summary = json.loads(run.stdout.splitlines()[-1])
    reasons = dict(summary["refused"])
    assert set(reasons) == {"x", "y"}
    assert "holds a file where the source has this folder" in reasons["x"]
    assert "holds a folder where the source has this file" in reasons["y"]
    assert tree(dst) == {"x": b"the destination's file", "y/keep": b"the destination's folder",
                         "z": b"no conflict"}
    (dst / "x").unlink()
    (dst / "y" / "keep").unlink()
    (dst / "y").rmdir()
    again = fsmove("copy", str(src), str(dst), *extra, state=state)
    assert again.returncode == 0, again.stderr
    assert tree(dst) == tree(src)


@pytest.mark.parametrize("dry_run", [False, True])
def test_delete_from_a_source_holding_no_file_deletes_nothing(
        tmp_path: Path, dry_run: bool) -> None:
    """`fsmove copy NEW OLD --delete` with NEW still empty (SRC and DST swapped) used to
    delete every file of OLD, maybe the only copy. Refused now, one line, exit 1; a
    source with one file deletes the rest as asked."""
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    (src / "empty-folder").mkdir(parents=True)
    dst.mkdir()
    for i in range(3):
        (dst / f"old-{i}.txt").write_bytes(b"the only copy")
    args = ["--dry-run"] if dry_run else []
    run = fsmove("copy", str(src), str(dst), "--delete", *args, state=state)
    one_line_error(run, 1, "source holds no file", "3 files", "nothing deleted")
    assert tree(dst) == {f"old-{i}.txt": b"the only copy" for i in range(3)}
    (src / "new.txt").write_bytes(b"new")
    ok = fsmove("copy", str(src), str(dst), "--delete", state=state)
    assert ok.returncode == 0, ok.stderr
    assert tree(dst) == {"new.txt": b"new"}


def test_delete_never_removes_fsmove_s_own_state_inside_the_destination(
        tmp_path: Path) -> None:
    """``--journal`` inside the destination: before session 32 ``--delete`` removed the
    journal, its WAL and its lock at every run (a rerun never a no-op, the job's lock
    defeated), and a state folder there (a home folder mirrored) lost every job."""
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    src.mkdir()
    dst.mkdir()
    (src / "a.txt").write_bytes(b"a")
    (dst / "stale.txt").write_bytes(b"old")
    journal = dst / "job.db"
    first = fsmove("copy", str(src), str(dst), "--journal", str(journal), "--delete",
                   "--json", state=state, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert journal.exists() and not (dst / "stale.txt").exists()
    again = fsmove("copy", str(src), str(dst), "--journal", str(journal), "--delete",
                   "--json", state=state, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert (summary["files_copied"], summary["files_deleted"]) == (0, 0), summary
    checked = fsmove("verify", str(src), str(dst), "--journal", str(journal), "-q",
                     state=state, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
