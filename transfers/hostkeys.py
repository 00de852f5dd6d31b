"""SSH host-key trust: known_hosts files, pinned Clever Cloud keys, accept-new.

The policy is OpenSSH's ``StrictHostKeyChecking`` with ``accept-new`` as an opt-in:

* a key recorded in known_hosts for the host (``host`` on port 22, ``[host]:port``
  otherwise, plain or hashed entries) is trusted;
* a host matching a pinned pattern (Clever Cloud FSBucket servers,
  ``*.services.clever-cloud.com``) is trusted when its key's SHA256 fingerprint is one
  the provider publishes;
* a host known with *other* keys is refused as CHANGED, always (``accept_new`` never
  replaces a recorded key);
* a pinned host whose key is not among the published fingerprints is refused too, even
  with ``accept_new`` (a key recorded by hand in known_hosts still wins);
* an unknown host is refused with its key type and fingerprint, or, with
  ``accept_new``, trusted and appended to the user's known_hosts file once the
  connection proved the server holds that key (``record_accepted``).

Matching is by host name only, like OpenSSH's default ``CheckHostIP no``; a
``[host]:port`` lookup never falls back to the port-22 entry (asyncssh's own matcher
does, OpenSSH does not). ``@revoked`` and ``@cert-authority`` lines are passed to
asyncssh, which enforces them.

``~/.ssh/config`` is honoured as ``ssh`` honours it, for the host being reached:
``UserKnownHostsFile`` (the first file is read and recorded to, the others and
``GlobalKnownHostsFile`` are read) unless ``--known-hosts`` was given, and
``StrictHostKeyChecking accept-new`` (or ``no``) acts as ``--accept-new-host-key``. A
changed key is refused whatever the setting (OpenSSH's ``no`` would connect anyway).

asyncssh calls ``HostKeyChecker.known_hosts`` (its ``known_hosts=`` callable) before the
key exchange, which restricts the offered host-key algorithms to the recorded key types,
then ``HostKeyChecker.validate`` for any key not among the recorded ones.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from .backend import HostKeyError

#: Where Clever Cloud publishes the FSBucket SFTP host-key fingerprints.
CLEVER_CLOUD_FINGERPRINTS_SOURCE = (
    "https://www.clever-cloud.com/developers/doc/addons/fs-bucket/ "
    "(CleverCloud/documentation, content/doc/addons/fs-bucket.md)"
)

#: SHA256 fingerprints of the Clever Cloud FSBucket SFTP servers, copied from the table
#: "From your favorite SFTP client" of the page above (6 ED25519, 16 RSA 4096).
CLEVER_CLOUD_FINGERPRINTS: frozenset[str] = frozenset(
    {
        # ED25519 (256 bits)
        "SHA256:+ku6hhQb1O3OVzkZa2B+htPD+P+5K/X6QQYWXym/4Zo",
        "SHA256:8tZzRvA3Fh9poG7g1bu8m0LQS819UBh7AYcEXJYiPqw",
        "SHA256:HHGCP5cf0jQbQrIRXjiC9aYJGNQ+L9ijOmJUueLp+9A",
        "SHA256:Hyt6ox+v2Lrvdfl29jwe1/dBq9zh2fmq2DO6rqurl7o",
        "SHA256:drShQbl3Ox+sYYYP+urOCtuMiJFh7k1kECdvZ4hMuAE",
        "SHA256:h1oUNRkYaIycchUsyAXPQHnu6MtTF2YUEYuisu+vnOE",
        # RSA (4096 bits)
        "SHA256:+550bmBCNAHscjOmKrdweueVUz2E6h1KzmSV+0c0U7w",
        "SHA256:1O7d6cdmqj42Dw4nX90Y+6zIFTUI+aIwD0SLMQuj0ko",
        "SHA256:AkHQnQXJ1lFEtliLHl8hlG7NiIZZgVn/uuRMCZJOKJk",
        "SHA256:Atxhx7U0MOuZC7e4vs1tpyTJmNttB7d4+HNC5hiavFo",
        "SHA256:Bla7GeL6hggg+rf6iDlKMrzIhxEBYB3VL7Q6PYGJYt4",
        "SHA256:H5ZhQ/5JdMPSG49ojUNEhwSuRD663mnIJb/YDFFntyk",
        "SHA256:TZr6eFrzoJmn4RS55Tb6yTd+WV9lTGtW0q+uLVbI7IE",
        "SHA256:ZYFb1AsB+q++NRf7yW8E5rNOfxTRwjpJt6hqFP/NBNs",
        "SHA256:d+nTyowvYtcxF28mCUu1ilqPJuLMExGyJ16Sv/pvoVY",
        "SHA256:flpv4s3VxOrQFc/IG+BpR1s9dgDvR07A6zunNqO4Co0",
        "SHA256:hvZN8rgSG82weLOeMTXdh1VwhjuRv+MJNnUt/X9R39g",
        "SHA256:ls20B8C6Jdqx7RPQAjzVX7KmnrHizJum2sEvNhMcl60",
        "SHA256:u1AzFc2AdFmlPRdNIZsn0sQJ/CKbfC2ZmXnQfabPek4",
        "SHA256:wUPBX3X5gALgxXqD+IwG5qPRb0jbiOZ8/U1BOZeNhtk",
        "SHA256:yRHC/tAlBpHLlRZ5rwbZ1z+159Bj3yg0VxHf+hXINLg",
        "SHA256:yhn79aqxOGQZ+LXdN1/vIY+jwRIbBamlVT1+HdFoA6o",
    }
)


def accepts_new_keys(config: object) -> bool:
    """Whether ``~/.ssh/config``'s ``StrictHostKeyChecking`` for this host lets an
    unknown key be recorded (``accept-new``, ``no``/``off``); ``yes``/``ask`` (nothing to
    ask here) and no setting keep unknown keys refused."""
    get = getattr(config, "get", None)
    value = get("StrictHostKeyChecking", None) if get is not None else None
    if value is False:
        return True
    return isinstance(value, str) and value.lower() in ("accept-new", "no", "off")


def _teach_asyncssh_strict_host_key_checking() -> None:
    """asyncssh's config parser skips ``StrictHostKeyChecking`` (it has its own
    policy); registered here with its yes/no/word parser so ``options.config`` holds the
    value the matching ``Host``/``Match`` block gave. Without that table (another
    asyncssh), the setting is ignored and unknown keys stay refused (the safe side)."""
    from asyncssh import config as ssh_config

    table = getattr(ssh_config.SSHClientConfig, "_handlers", None)
    parse = getattr(ssh_config.SSHConfig, "_set_bool_or_str", None)
    if isinstance(table, dict) and parse is not None:
        table.setdefault("stricthostkeychecking", ("StrictHostKeyChecking", parse))


_teach_asyncssh_strict_host_key_checking()


@dataclass(frozen=True, slots=True)
class PinnedHosts:
    """Hosts whose keys are trusted by published fingerprint instead of known_hosts."""

    #: A shell-style pattern, matched case-insensitively against the host name.
    pattern: str
    fingerprints: frozenset[str]
    #: Who publishes the fingerprints and where (shown when a key does not match).
    source: str

    def matches(self, host: str) -> bool:
        return fnmatch.fnmatchcase(host.lower().rstrip("."), self.pattern.lower())


CLEVER_CLOUD_PINS = PinnedHosts(
    pattern="*.services.clever-cloud.com",
    fingerprints=CLEVER_CLOUD_FINGERPRINTS,
    source=f"Clever Cloud FSBucket fingerprints published at {CLEVER_CLOUD_FINGERPRINTS_SOURCE}",
)

DEFAULT_PINS: tuple[PinnedHosts, ...] = (CLEVER_CLOUD_PINS,)

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
GLOBAL_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")


def fingerprint(key: asyncssh.SSHKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key."""
    return key.get_fingerprint("sha256")


def key_type(key: asyncssh.SSHKey) -> str:
    return key.get_algorithm()


def known_hosts_name(host: str, port: int | None) -> str:
    """The name a known_hosts line uses: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def pins_for(host: str, pins: Sequence[PinnedHosts] = DEFAULT_PINS) -> PinnedHosts | None:
    for pin in pins:
        if pin.matches(host):
            return pin
    return None


@dataclass(frozen=True, slots=True)
class KnownHostKeys:
    """What known_hosts says about one host name."""

    host_keys: tuple[asyncssh.SSHKey, ...] = ()
    ca_keys: tuple[asyncssh.SSHKey, ...] = ()
    revoked: tuple[asyncssh.SSHKey, ...] = ()


class KnownHostsFile:
    """The known_hosts file that is read and appended to, plus read-only extras."""

    def __init__(self, path: str | Path | None = None, *,
                 extra: Sequence[str | Path] | None = None) -> None:
        if path is None:
            self.path = DEFAULT_KNOWN_HOSTS.expanduser()
            self._extra: tuple[Path, ...] = (GLOBAL_KNOWN_HOSTS,)
        else:
            self.path = Path(path).expanduser()
            self._extra = ()
        if extra is not None:
            self._extra = tuple(Path(p).expanduser() for p in extra)

    @classmethod
    def from_ssh_config(cls, config: object) -> KnownHostsFile | None:
        """The files ``~/.ssh/config`` names for this host (asyncssh's parsed config,
        ``options.config``), or None when it names none (the defaults apply)."""
        get = getattr(config, "get", None)
        if get is None:
            return None
        user_files = [str(f) for f in get("UserKnownHostsFile", None) or ()]
        if not user_files:
            return None
        global_files = [str(f) for f in get("GlobalKnownHostsFile", None) or ()]
        return cls(user_files[0], extra=[*user_files[1:], *global_files])

    def lookup(self, host: str, port: int | None) -> KnownHostKeys:
        name = known_hosts_name(host, port)
        table = asyncssh.SSHKnownHosts()
        for file in (self.path, *self._extra):
            try:
                text = file.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise HostKeyError(
                    f"cannot read known_hosts file {file}: {exc.strerror or exc}"
                ) from None
            for line in text.splitlines():
                try:
                    table.load(line)
                except (ValueError, asyncssh.KeyImportError):
                    continue  # a line asyncssh cannot parse (unknown key type...): skip it
        # Matching on the name alone (no address, no port argument) keeps "[host]:port"
        # from falling back to the port-22 entry.
        found = table.match(name, "", None)
        return KnownHostKeys(
            host_keys=tuple(found[0]), ca_keys=tuple(found[1]), revoked=tuple(found[2])
        )

    def record(self, host: str, port: int | None, key: asyncssh.SSHKey) -> None:
        """Append ``key`` for ``host``/``port`` unless an entry for it is already there."""
        if key in self.lookup(host, port).host_keys:
            return
        algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
        line = f"{known_hosts_name(host, port)} {algorithm} {blob}\n"
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a+b") as fh:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line
                fh.write(line.encode())
        except OSError as exc:
            raise HostKeyError(
                f"cannot record the host key of {known_hosts_name(host, port)} in "
                f"{self.path}: {exc.strerror or exc}"
            ) from None


@dataclass(eq=False)
class HostKeyChecker:
    """The host-key decision for one connection attempt (asyncssh calls into it)."""

    known_hosts: KnownHostsFile
    accept_new: bool = False
    pins: Sequence[PinnedHosts] = DEFAULT_PINS
    #: Set when the key was refused: the error to raise instead of asyncssh's.
    refusal: HostKeyError | None = None
    #: What known_hosts held for the host at the last lookup.
    on_record: KnownHostKeys = field(default_factory=KnownHostKeys)
    #: The host name and port asyncssh looked up (after ~/.ssh/config HostName/Port).
    target: tuple[str, int | None] | None = None
    _accepted: tuple[str, int | None, asyncssh.SSHKey] | None = None

    def known_hosts_callback(
        self, host: str, addr: str, port: int | None
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """asyncssh's ``known_hosts=`` callable: the keys on record for this host."""
        del addr  # host-name matching only (CheckHostIP no)
        self.target = (host, port)
        self.on_record = self.known_hosts.lookup(host, port)
        return (
            list(self.on_record.host_keys),
            list(self.on_record.ca_keys),
            list(self.on_record.revoked),
        )

    def validate(self, host: str, port: int | None, key: asyncssh.SSHKey) -> bool:
        """Decide on a key that is not among the recorded ones (True: trust it)."""
        name = known_hosts_name(host, port)
        fp = fingerprint(key)
        pin = pins_for(host, self.pins)
        if pin is not None and fp in pin.fingerprints:
            return True
        if self.on_record.host_keys:
            recorded = ", ".join(
                sorted({f"{key_type(k)} {fingerprint(k)}" for k in self.on_record.host_keys})
            )
            self.refusal = HostKeyError(
                f"host key for {name} CHANGED: the server offers {key_type(key)} {fp}, "
                f"but {self.known_hosts.path} has {recorded}; this is a possible attack "
                f"(or a reinstalled server): verify the new key with the server's owner, "
                f"then remove the old entry with ssh-keygen -R '{name}' "
                f"-f {self.known_hosts.path}"
            )
            return False
        if pin is not None:
            self.refusal = HostKeyError(
                f"host key for {name} ({key_type(key)} {fp}) is not one of the "
                f"{pin.source}; refusing to connect (possible attack). If the provider "
                f"published a new key, add it to {self.known_hosts.path}"
            )
            return False
        if self.accept_new:
            self._accepted = (host, port, key)
            return True
        self.refusal = HostKeyError(
            f"host key for {name} is unknown ({key_type(key)} {fp}); check this "
            f"fingerprint with the server's owner, then rerun with --accept-new-host-key "
            f"to trust it and record it in {self.known_hosts.path}"
        )
        return False

    def record_accepted(self) -> None:
        """Append the newly accepted key (call once the server proved it holds it)."""
        if self._accepted is not None:
            host, port, key = self._accepted
            self.known_hosts.record(host, port, key)
            self._accepted = None


@dataclass(eq=False)
class HostKeyProbe:
    """Learns which key a server offers, trusting nothing (the connection always fails).

    Used after a failed key exchange with a host on record: a server that no longer has
    a key of any recorded type drops the connection before showing a key at all.
    """

    offered: asyncssh.SSHKey | None = None

    def known_hosts_callback(
        self, host: str, addr: str, port: int | None
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        return [], [], []

    def validate(self, host: str, port: int | None, key: asyncssh.SSHKey) -> bool:
        self.offered = key
        return False
