"""Bad input: every mistake a user can type ends in the documented exit code with a
one-line ``fsmove: error:`` (no traceback), before anything is written."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.fsmove_run import FsmoveRunner, check_clean_failure, check_partial
from tests.servers import RunningServer, make_tree

QUICK = ("--timeout", "3", "--retries", "0", "-q")


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    (path / "sub").mkdir(parents=True)
    (path / "a.txt").write_bytes(b"a")
    (path / "sub" / "b.txt").write_bytes(b"b")
    return path


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp:/host/path", ["malformed", "two slashes"]),
        ("ftp:///path", ["malformed", "no host"]),
        ("ftp://@host/", ["malformed", "empty user"]),
        ("ftp://user@host:99999/", ["malformed", "port"]),
        ("ftp://user@host:abc/", ["malformed", "port"]),
        ("sftp://user@[::1/", ["malformed", "unclosed"]),
        ("file://relative/path", ["malformed", "file:///"]),
        ("", ["empty endpoint"]),
        # %-escapes that are not UTF-8 (latin-1's e-acute): decoded with replacement they
        # named another folder, and x%fe and x%ff were one job.
        ("sftp://user@host/caf%e9", ["malformed", "path", "not UTF-8"]),
        ("ftp://user:p%e9ss@host/", ["malformed", "password", "not UTF-8"]),
        ("file:///tmp/x%ff", ["malformed", "path", "not UTF-8"]),
    ],
)
def test_malformed_urls_are_usage_errors(
    fsmove: FsmoveRunner, tmp_path: Path, url: str, words: list[str]
) -> None:
    run = fsmove.run("copy", url, str(tmp_path / "dst"), *QUICK)
    check_clean_failure(run, 2, *words)
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("url", ["s3://bucket/key", "gs://whatever", "webdav://host/x"])
def test_unknown_schemes_are_usage_errors(
    fsmove: FsmoveRunner, tmp_path: Path, src: Path, url: str
) -> None:
    """A scheme fsmove does not know is refused on either side, naming the ones it knows
    (``clever://`` add-ons are tested with the real CLI in tests/test_clever_*.py)."""
    for args in (("copy", url, str(tmp_path / "dst")), ("copy", str(src), url)):
        run = fsmove.run(*args, *QUICK)
        scheme = url.split(":", 1)[0]
        check_clean_failure(run, 2, "unknown scheme", repr(scheme), "ftp://")
    assert not (tmp_path / "dst").exists()


def test_missing_credentials_are_a_config_error(
    fsmove: FsmoveRunner, tmp_path: Path, vsftpd_server: RunningServer
) -> None:
    """No password in the URL, the environment or ~/.netrc, and no terminal to ask."""
    run = fsmove.run("copy", vsftpd_server.url(), str(tmp_path / "dst"), *QUICK)
    check_clean_failure(run, 5, "no password", "FSMOVE_SRC_PASSWORD")


@pytest.mark.parametrize("server_fixture", ["vsftpd_server", "proftpd_server", "sshd_server"])
def test_wrong_password_is_an_auth_error(
    fsmove: FsmoveRunner, tmp_path: Path, request: pytest.FixtureRequest, server_fixture: str
) -> None:
    server: RunningServer = request.getfixturevalue(server_fixture)
    wrong = "Wr0ng-" + server.password[::-1]
    fsmove.secret(wrong)
    extra = ("--known-hosts", str(server.known_hosts)) if server.known_hosts else ()
    run = fsmove.run("copy", server.url(), str(tmp_path / "dst"), *extra, *QUICK,
                     env={"FSMOVE_SRC_PASSWORD": wrong})
    check_clean_failure(run, 5)
    assert not (tmp_path / "dst").exists()


def test_password_in_the_url_is_masked_in_errors(fsmove: FsmoveRunner, tmp_path: Path,
                                                  vsftpd_server: RunningServer) -> None:
    wrong = "InUrl-" + vsftpd_server.password[::-1]
    fsmove.secret(wrong)
    url = vsftpd_server.url().replace("@", f":{wrong}@", 1)
    run = fsmove.run("copy", url, str(tmp_path / "dst"), *QUICK)
    check_clean_failure(run, 5)
    bad_port = f"ftp://someone:{wrong}@127.0.0.1:99999/"
    run = fsmove.run("copy", bad_port, str(tmp_path / "dst"), *QUICK)
    check_clean_failure(run, 2, "***")


@pytest.fixture
def sftp_source(sshd_server: RunningServer,
                fresh_subdir: Callable[[RunningServer], RunningServer]) -> RunningServer:
    server = fresh_subdir(sshd_server)
    make_tree(server, {"a.txt": b"over sftp"})
    return server


def test_unknown_sftp_host_key_is_refused_unless_accepted(
    fsmove: FsmoveRunner, tmp_path: Path, sftp_source: RunningServer
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    env = {"FSMOVE_SRC_PASSWORD": sftp_source.password}
    dst = tmp_path / "dst"
    args = ("copy", sftp_source.url(), str(dst), "--known-hosts", str(known), *QUICK)
    run = fsmove.run(*args, env=env)
    check_clean_failure(run, 5, "SHA256:")
    assert not dst.exists()
    accepted = fsmove.run(*args, "--accept-new-host-key", env=env)
    assert accepted.code == 0, str(accepted)
    assert (dst / "a.txt").read_bytes() == b"over sftp"
    assert f"[127.0.0.1]:{sftp_source.port}" in known.read_text()
    again = fsmove.run(*args, env=env)  # now known: no option needed
    assert again.code == 0, str(again)


def test_changed_sftp_host_key_is_refused_even_with_accept_new(
    fsmove: FsmoveRunner, tmp_path: Path, sftp_source: RunningServer
) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    fake = other.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sftp_source.port} {' '.join(fake)}\n"
                     f"127.0.0.1 {' '.join(fake)}\n")
    env = {"FSMOVE_SRC_PASSWORD": sftp_source.password}
    for extra in ((), ("--accept-new-host-key",)):
        run = fsmove.run("copy", sftp_source.url(), str(tmp_path / "dst"), "--known-hosts",
                         str(known), *extra, *QUICK, env=env)
        check_clean_failure(run, 5, "SHA256:")
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize(
    ("rel_dst", "words"),
    [(".", ["same folder"]), ("sub", ["inside the source"]), ("sub/deeper", ["inside"]),
     ("..", ["source is inside the destination"])],
)
def test_source_and_destination_must_be_apart(
    fsmove: FsmoveRunner, src: Path, rel_dst: str, words: list[str]
) -> None:
    dst = (src / rel_dst).resolve() if rel_dst == ".." else src / rel_dst
    run = fsmove.run("copy", str(src), str(dst), *QUICK)
    check_clean_failure(run, 2, *words)
    assert not (src / "sub" / "deeper").exists()


def test_same_remote_folder_twice_is_refused(fsmove: FsmoveRunner,
                                             vsftpd_server: RunningServer) -> None:
    env = {"FSMOVE_SRC_PASSWORD": "x", "FSMOVE_DST_PASSWORD": "x"}
    url = vsftpd_server.url()
    run = fsmove.run("copy", url, url + "inner", *QUICK, env=env)
    check_clean_failure(run, 2, "inside the source")


@pytest.mark.parametrize("spelling", ["localhost-name", "dot-segments"])
def test_one_remote_folder_spelt_two_ways_is_refused(fsmove: FsmoveRunner,
                                                     vsftpd_server: RunningServer,
                                                     spelling: str) -> None:
    """Before session 32 ``localhost`` and ``127.0.0.1`` were two servers (the probe's
    files landed in the source, each rerun nested one level deeper), and ``/x/../n1/sub``
    was not inside ``/n1`` (it copied itself, and made a folder ``x``)."""
    env = {"FSMOVE_SRC_PASSWORD": "x", "FSMOVE_DST_PASSWORD": "x"}
    src = vsftpd_server.url("n1")
    if spelling == "localhost-name":
        dst = src.replace("@127.0.0.1:", "@localhost:") + "/sub"
    else:
        dst = vsftpd_server.url("x/../n1/sub")
    run = fsmove.run("copy", src, dst, *QUICK, env=env)
    check_clean_failure(run, 2, "inside the source")
    assert not (vsftpd_server.root / "x").exists()


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_destination_that_is_not_writable(fsmove: FsmoveRunner, src: Path,
                                          read_only_disk: Path) -> None:
    """Root ignores file modes, so a read-only filesystem is the honest test here. The
    first folder fsmove must create fails the run (exit 1); with nothing to create, each
    file fails (exit 3)."""
    run = fsmove.run("copy", str(src), str(read_only_disk / "new"), *QUICK)
    check_clean_failure(run, 1, "cannot create the destination folder", "read-only")
    run = fsmove.run("copy", str(src), str(read_only_disk), *QUICK)
    check_clean_failure(run, 1, "sub", "read-only")
    run = fsmove.run("copy", str(src), str(read_only_disk), "--exclude", "sub", "--json",
                     "--timeout", "3", "--retries", "0")
    reasons = check_partial(run, "a.txt")
    assert all("read-only" in why.lower() for why in reasons.values()), reasons


def test_remote_destination_that_is_not_writable(
    fsmove: FsmoveRunner, src: Path, vsftpd_server: RunningServer,
    fresh_subdir: Callable[[RunningServer], RunningServer],
) -> None:
    server = fresh_subdir(vsftpd_server)
    server.root.chmod(0o555)  # the account may list it, not write into it
    try:
        env = {"FSMOVE_DST_PASSWORD": server.password}
        run = fsmove.run("copy", str(src), server.url(), *QUICK, env=env)
        check_clean_failure(run, 1, "sub", "not writable")
        run = fsmove.run("copy", str(src), server.url(), "--exclude", "sub", "--json",
                         "--timeout", "3", "--retries", "0", env=env)
        check_partial(run, "a.txt")
        assert list(server.root.iterdir()) == []
    finally:
        server.root.chmod(0o755)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "10X"])
def test_invalid_bwlimit_is_a_usage_error(fsmove: FsmoveRunner, tmp_path: Path, src: Path,
                                          value: str) -> None:
    run = fsmove.run("copy", str(src), str(tmp_path / "dst"), "--bwlimit", value, *QUICK)
    check_clean_failure(run, 2, "--bwlimit")
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("args", [("--workers", "0"), ("--timeout", "0"), ("--frobnicate",),
                                  ("--retries", "-1")])
def test_invalid_options_are_usage_errors(fsmove: FsmoveRunner, tmp_path: Path, src: Path,
                                          args: tuple[str, ...]) -> None:
    """Option parsing errors come from Typer: exit 2, usage shown, no traceback."""
    run = fsmove.run("copy", str(src), str(tmp_path / "dst"), *args, "-q")
    assert run.code == 2, str(run)
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "dst").exists()
