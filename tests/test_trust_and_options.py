"""Small promises of the command line: an untrusted FTPS certificate is trust
configuration (exit 5) and says how to fix it; `--ca-file` names a bad file; a timeout
that is not a finite positive number is refused; a local root that is itself a symlink
is followed (the user chose it), links below it never are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.cli import app
from tests.copy_harness import put_files, side_for, tree_digests
from tests.servers import RunningServer


@pytest.mark.interop
def test_an_untrusted_ftps_certificate_is_exit_5_naming_the_fix(
    vsftpd_tls_server: RunningServer, fresh_subdir: Callable[[RunningServer], RunningServer],
    tmp_path: Path,
) -> None:
    server = fresh_subdir(vsftpd_tls_server)
    put_files(None, tmp_path / "src", {"a.txt": b"a"})
    dst = side_for("vsftpd_tls", server, server.root, "dst")
    result = CliRunner().invoke(app, ["copy", str(tmp_path / "src"), dst.url, "-q",
                                      "--journal", str(tmp_path / "j.db")], env=dict(dst.env))
    assert result.exit_code == 5, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "not trusted" in line
    assert "--ca-file" in line and "--insecure-tls" in line


@pytest.mark.parametrize("command", ["copy", "verify"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused(
    tmp_path: Path, command: str, value: str
) -> None:
    result = CliRunner().invoke(app, [command, str(tmp_path / "a"), str(tmp_path / "b"),
                                      "--timeout", value])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "fsmove: error: --timeout must be a positive number of seconds"


def test_resume_refuses_a_nan_timeout(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["resume", "x", "--timeout", "nan"])
    assert result.exit_code == 2, result.output


def test_ca_file_that_is_missing_or_not_pem_is_named(tmp_path: Path) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    for path, why in ((tmp_path / "missing.pem", "no such file"), (not_pem, "not a PEM"),
                      (tmp_path, "a folder, not a file"),
                      (Path("/dev/null"), "not a regular file")):
        result = CliRunner().invoke(app, ["copy", str(tmp_path / "a"), "ftps://u@127.0.0.1/x",
                                          "--ca-file", str(path)],
                                    env={"FSMOVE_DST_PASSWORD": "x"})
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"fsmove: error: --ca-file {path}: {why}")


def test_a_root_that_is_a_symlink_is_followed_but_never_a_link_below(tmp_path: Path) -> None:
    real_src, real_dst = tmp_path / "real-src", tmp_path / "real-dst"
    put_files(None, real_src, {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    outside = tmp_path / "outside"
    put_files(None, outside, {"secret.txt": b"not part of the source"})
    (real_src / "link-out").symlink_to(outside)
    real_dst.mkdir()
    src_link, dst_link = tmp_path / "src", tmp_path / "dst"
    src_link.symlink_to(real_src)
    dst_link.symlink_to(real_dst)
    result = CliRunner().invoke(app, ["copy", str(src_link), str(dst_link), "-q",
                                      "--journal", str(tmp_path / "j.db")])
    assert result.exit_code == 0, result.output
    assert dst_link.is_symlink()  # still the user's link, written through
    assert tree_digests(real_dst) == {k: v for k, v in tree_digests(real_src).items()
                                      if not k.startswith("link-out")}
    assert not (real_dst / "link-out").exists()
    checked = CliRunner().invoke(app, ["verify", str(src_link), str(dst_link), "-q"])
    assert checked.exit_code == 0, checked.output
