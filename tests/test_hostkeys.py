"""Host-key trust without a network: pins, known_hosts matching, accept-new, changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

import asyncssh
import pytest

from fsmove.transfers.backend import HostKeyError
from fsmove.transfers.hostkeys import (
    CLEVER_CLOUD_FINGERPRINTS,
    CLEVER_CLOUD_PINS,
    HostKeyChecker,
    KnownHostsFile,
    PinnedHosts,
    fingerprint,
    known_hosts_name,
    pins_for,
)

BUCKET_HOST = "bucket-01234567-0123-0123-0123-012345678987-fsbucket.services.clever-cloud.com"


def new_key(kind: str = "ssh-ed25519") -> asyncssh.SSHKey:
    return asyncssh.generate_private_key(kind).convert_to_public()


def line(name: str, key: asyncssh.SSHKey) -> str:
    algorithm, blob = key.export_public_key().decode().split()[:2]
    return f"{name} {algorithm} {blob}\n"


def checker(path: Path, *, accept_new: bool = False, **kw: object) -> HostKeyChecker:
    return HostKeyChecker(KnownHostsFile(path), accept_new=accept_new, **kw)  # type: ignore[arg-type]


def decide(c: HostKeyChecker, host: str, port: int | None, key: asyncssh.SSHKey) -> bool:
    """What asyncssh does: look up the host, trust a recorded key, else ask validate."""
    recorded, _, _ = c.known_hosts_callback(host, "127.0.0.1", port)
    return key in recorded or c.validate(host, port, key)


# -- the published pins ------------------------------------------------------------------


def test_clever_cloud_fingerprints_are_the_published_table() -> None:
    assert len(CLEVER_CLOUD_FINGERPRINTS) == 22  # 6 ED25519 + 16 RSA in the docs table
    for fp in CLEVER_CLOUD_FINGERPRINTS:
        assert fp.startswith("SHA256:")
        raw = base64.b64decode(fp.removeprefix("SHA256:") + "=")
        assert len(raw) == 32


@pytest.mark.parametrize(
    ("host", "pinned"),
    [
        (BUCKET_HOST, True),
        (BUCKET_HOST.upper(), True),
        (BUCKET_HOST + ".", True),
        ("services.clever-cloud.com", False),
        ("evil.example", False),
        ("bucket-x-fsbucket.services.clever-cloud.com.evil.example", False),
        ("services.clever-cloud.com-evil.example", False),
    ],
)
def test_pins_apply_to_clever_cloud_service_hosts_only(host: str, pinned: bool) -> None:
    assert (pins_for(host) is CLEVER_CLOUD_PINS) is pinned


def test_pinned_fingerprint_is_trusted_without_known_hosts(tmp_path: Path) -> None:
    key = new_key()
    pins = (PinnedHosts("*.example.test", frozenset({fingerprint(key)}), "test pins"),)
    c = checker(tmp_path / "known_hosts", pins=pins)
    assert decide(c, "bucket.example.test", None, key)
    c.record_accepted()
    assert not (tmp_path / "known_hosts").exists()  # pins are not copied into the file


def test_unpublished_key_on_a_pinned_host_is_refused_even_with_accept_new(
    tmp_path: Path,
) -> None:
    key = new_key()
    c = checker(tmp_path / "known_hosts", accept_new=True)
    assert not decide(c, BUCKET_HOST, None, key)
    assert c.refusal is not None
    assert fingerprint(key) in str(c.refusal) and "Clever Cloud" in str(c.refusal)
    c.record_accepted()
    assert not (tmp_path / "known_hosts").exists()


def test_a_recorded_key_wins_on_a_pinned_host(tmp_path: Path) -> None:
    key = new_key()
    known = tmp_path / "known_hosts"
    known.write_text(line(BUCKET_HOST, key))
    assert decide(checker(known), BUCKET_HOST, None, key)


# -- known_hosts -------------------------------------------------------------------------


def test_known_hosts_name_uses_brackets_off_port_22() -> None:
    assert known_hosts_name("h.example", None) == "h.example"
    assert known_hosts_name("h.example", 22) == "h.example"
    assert known_hosts_name("h.example", 2222) == "[h.example]:2222"


def test_unknown_key_is_refused_with_type_fingerprint_and_the_way_out(tmp_path: Path) -> None:
    key = new_key()
    c = checker(tmp_path / "known_hosts")
    assert not decide(c, "h.example", 2222, key)
    message = str(c.refusal)
    assert isinstance(c.refusal, HostKeyError)
    assert "[h.example]:2222" in message and "ssh-ed25519" in message
    assert fingerprint(key) in message and "--accept-new-host-key" in message
    assert "\n" not in message


def test_accept_new_records_once_with_the_port(tmp_path: Path) -> None:
    known = tmp_path / "dir" / "known_hosts"
    key = new_key()
    c = checker(known, accept_new=True)
    assert decide(c, "h.example", 2222, key)
    assert not known.exists()  # recorded only once the connection proved the key
    c.record_accepted()
    c.record_accepted()
    assert known.read_text() == line("[h.example]:2222", key)
    assert known.stat().st_mode & 0o777 == 0o600
    # A second connection finds the key on record; another store recording it again
    # (parallel first connections) does not duplicate the line.
    again = checker(known, accept_new=True)
    assert decide(again, "h.example", 2222, key)
    KnownHostsFile(known).record("h.example", 2222, key)
    assert known.read_text().count("\n") == 1


def test_record_appends_after_a_last_line_without_newline(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    first, second = new_key(), new_key()
    known.write_text(line("a.example", first).rstrip("\n"))
    KnownHostsFile(known).record("b.example", None, second)
    assert known.read_text() == line("a.example", first) + line("b.example", second)


def test_changed_key_is_refused_even_with_accept_new(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    old, new = new_key(), new_key()
    known.write_text(line("[h.example]:2222", old))
    c = checker(known, accept_new=True)
    assert not decide(c, "h.example", 2222, new)
    message = str(c.refusal)
    assert "CHANGED" in message and "possible attack" in message
    assert "ssh-keygen -R '[h.example]:2222'" in message
    assert fingerprint(new) in message and fingerprint(old) in message
    c.record_accepted()
    assert known.read_text() == line("[h.example]:2222", old)


def test_a_port_22_entry_does_not_match_another_port(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    key = new_key()
    known.write_text(line("h.example", key))
    c = checker(known)
    assert decide(c, "h.example", None, key)
    c = checker(known)
    assert not decide(c, "h.example", 2222, key)
    assert "unknown" in str(c.refusal)  # not CHANGED: nothing is on record for 2222


def test_hashed_entries_and_unparsable_lines(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    key = new_key("ecdsa-sha2-nistp256")
    salt = os.urandom(20)
    digest = hmac.new(salt, b"[h.example]:2222", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    known.write_text(
        "# comment\nh.example ssh-unknown-type AAAAnotakey\ngarbage\n" + line(hashed, key)
    )
    assert decide(checker(known), "h.example", 2222, key)


def test_revoked_keys_are_passed_to_asyncssh(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    key = new_key()
    known.write_text("@revoked " + line("h.example", key))
    c = checker(known, accept_new=True)
    trusted, _, revoked = c.known_hosts_callback("h.example", "", None)
    assert trusted == [] and revoked == [key]


def test_unreadable_known_hosts_is_a_host_key_error(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.mkdir()  # a directory where the file should be
    with pytest.raises(HostKeyError, match="cannot read known_hosts"):
        checker(known).known_hosts_callback("h.example", "", None)
