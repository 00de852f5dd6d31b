"""Turn what the user typed into a ready ``Store``: URL, credentials, TLS and host keys.

Where a password comes from, first match wins:

1. the URL itself (``ftp://user:pass@host/``): accepted, but it shows in your shell
   history and process list, so fsmove masks it everywhere and prefers the others;
2. ``FSMOVE_SRC_PASSWORD`` / ``FSMOVE_DST_PASSWORD`` in the environment;
3. ``~/.netrc`` (or ``$NETRC``): ``machine HOST login USER password PASS``; it may also
   supply the user when the URL has none;
4. an interactive prompt, only when stdin is a terminal.

FTP with no user at all logs in as ``anonymous``. SFTP with no password uses keys (the
agent, ``~/.ssh`` keys or the IdentityFile of ``~/.ssh/config``); it never prompts.
"""

from __future__ import annotations

import getpass
import math
import netrc
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fsmove.transfers.backend import Store
from fsmove.transfers.endpoint import Endpoint, parse_endpoint

from .errors import ConfigError

#: Which side of a copy an endpoint is (it names the password variable to read).
EndpointSide = Literal["src", "dst"]


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach endpoints: timeouts, TLS trust, SSH host keys."""

    timeout: float = 30.0
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    ssh_config: Path | None = None
    identity_files: tuple[Path, ...] = ()
    ca_file: Path | None = None
    insecure_tls: bool = False


def password_env_var(side: EndpointSide) -> str:
    return f"FSMOVE_{side.upper()}_PASSWORD"


_warned_netrc: set[Path] = set()


def netrc_permission_problem(path: Path) -> str | None:
    """Why ``path`` should not hold passwords (group or others may read or write it), or
    None. curl warns about the same; OpenSSH-style tools refuse."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o044:
        return None
    return (f"{path} can be read by other users (mode {mode:04o}): its passwords are not "
            f"private; run: chmod 600 {path}")


def warn_if_readable_by_others(path: Path) -> None:
    """One warning line on stderr per file and process, when fsmove reads ``path``."""
    problem = netrc_permission_problem(path)
    if problem is not None and path not in _warned_netrc:
        _warned_netrc.add(path)
        print(f"fsmove: warning: {problem}", file=sys.stderr, flush=True)


def _from_netrc(host: str, user: str | None) -> tuple[str | None, str | None]:
    path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
    if not os.path.exists(path):
        return None, None
    warn_if_readable_by_others(Path(path))
    try:
        auth = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.__class__.__name__}; fix or remove it"
        ) from None
    if not auth:
        return None, None
    login, _account, password = auth
    if user and login and login != user:
        return None, None
    return login or None, password or None


def resolve(endpoint: Endpoint, *, side: EndpointSide, interactive: bool | None = None) -> Endpoint:
    """Fill in the user and password of ``endpoint`` as the module docstring says."""
    if endpoint.is_local or endpoint.password is not None:
        return endpoint
    env = os.environ.get(password_env_var(side))
    if env is not None:
        return endpoint.with_password(_sendable(env, where=password_env_var(side)))
    user, password = _from_netrc(endpoint.host, endpoint.user)
    if password is not None:
        from dataclasses import replace

        return replace(endpoint.with_password(password), user=endpoint.user or user)
    if endpoint.scheme == "sftp":
        return endpoint  # key authentication
    if endpoint.user is None or endpoint.user == "anonymous":
        return endpoint  # anonymous FTP
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        raise ConfigError(
            f"no password for {endpoint.display}: set {password_env_var(side)}, "
            "add it to ~/.netrc, or run in a terminal to be asked"
        )
    try:
        typed = getpass.getpass(f"Password for {endpoint.display}: ")
    except UnicodeDecodeError:
        typed = "\udcff"  # bytes the terminal's charset cannot read: said below
    return endpoint.with_password(_sendable(typed, where="the password typed"))


def _sendable(password: str, *, where: str) -> str:
    """``password`` if it can be sent (servers take UTF-8); a clear error if it holds
    bytes this locale's charset could not read (``p\xe4ss`` set in a latin-1 shell,
    read under a UTF-8 locale): an internal error before session 33."""
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{where} holds bytes that are not {sys.getfilesystemencoding()} text (this "
            "locale's charset): set it in the charset of the locale fsmove runs in"
        ) from None
    return password


def _early_place(endpoint: Endpoint) -> tuple[str, int, bytes]:
    """Where a store's first connection goes (host, port) and the line its protocol
    sends first (asyncssh's version line over SFTP, none over FTP): the key under which
    ``connect_early`` starts it and ``open_store`` finds it."""
    from fsmove.transfers.preconnect import asyncssh_hello

    if endpoint.scheme == "sftp":
        return endpoint.host, endpoint.port or 22, asyncssh_hello()
    return endpoint.host, endpoint.effective_port or 21, b""


def connect_early(texts: Iterable[str], *, timeout: float) -> None:
    """Start the first connection of each SFTP endpoint among ``texts`` (as typed) now,
    before the code that copies is imported (~0.1 s, then asyncssh's ~0.1 s): a command
    calls it as soon as it has its arguments, and ``open_store`` takes the connection
    (``transfers/preconnect.py``). Before, the destination's started only after the
    source's store had imported asyncssh. Anything that does not parse, or a
    ``clever://`` URL, is left to the command, which says what is wrong; so is a bad
    ``timeout``. Only asyncssh's version line is sent.

    Not over FTP: started this early, the FTP side's first byte got later, not earlier
    (small-ftp-60ms, 9 alternating rounds: ~1.0 s in most runs against ~0.8 s with the
    connect started in ``open_store``; ``benchmarks/README.md``, "Session 19"). FTP's
    start later, once the copy's code is imported (``connect_ftp_early``)."""
    from fsmove.transfers import preconnect
    from fsmove.transfers.endpoint import EndpointError

    if not (math.isfinite(timeout) and timeout > 0):
        return
    for text in texts:
        try:
            endpoint = parse_endpoint(text)
        except EndpointError:
            continue
        if endpoint.scheme == "sftp" and endpoint.host:
            host, port, hello = _early_place(endpoint)
            preconnect.start_early(host, port, timeout=timeout, hello=hello)


def connect_ftp_early(endpoints: Iterable[Endpoint], *, timeout: float) -> None:
    """Start the first control connection of each FTP endpoint now, all of them before
    the first ``open_store`` imports the FTP backend (~0.1 s): the destination's used
    to start only once the source's store was built. Called by a command right before
    it opens its stores (``open_store`` takes them); measured, 6 alternating rounds
    behind the 60 ms relay: first byte large-ftp-60ms 0.78 -> 0.69 s, real-ftp-60ms
    1.09 -> 1.03 s, small-ftp-60ms the same (benchmarks/README.md "Session 20")."""
    from fsmove.transfers import preconnect

    if not (math.isfinite(timeout) and timeout > 0):
        return
    for endpoint in endpoints:
        if endpoint.scheme in ("ftp", "ftps") and endpoint.host:
            host, port, hello = _early_place(endpoint)
            preconnect.start_early(host, port, timeout=timeout, hello=hello)


def open_store(endpoint: Endpoint, options: ConnectOptions, *, writable: bool = True) -> Store:
    """Build the store for a resolved endpoint (nothing connects yet). ``writable=False``
    for a store that is only read: nothing is ever written to it, not even a probe."""
    if endpoint.scheme == "file":
        from fsmove.transfers.local import LocalStore

        return LocalStore(endpoint)
    if endpoint.scheme in ("ftp", "ftps"):
        # As for SFTP below: the first control connection's TCP handshake runs while
        # the FTP backend is imported (transfers/preconnect.py).
        from fsmove.transfers import preconnect

        host, port, hello = _early_place(endpoint)
        early = preconnect.early_for(host, port, timeout=options.timeout, hello=hello)
        from fsmove.transfers.ftp import FtpStore, make_ssl_context

        ctx = None
        if endpoint.scheme == "ftps":
            try:
                ctx = make_ssl_context(
                    cafile=str(options.ca_file) if options.ca_file else None,
                    insecure=options.insecure_tls,
                )
            except BaseException:
                early.close()
                raise
        return FtpStore(
            endpoint, tls=endpoint.scheme == "ftps", timeout=options.timeout, ssl_context=ctx,
            read_only=not writable, preconnect=early,
        )
    if endpoint.scheme == "sftp":
        # The first connection's TCP handshake runs while asyncssh is imported
        # (transfers/preconnect.py): started first, before that import.
        # The thread sends asyncssh's version line too: the server's key-exchange
        # offer is then waiting when asyncssh starts.
        from fsmove.transfers import preconnect

        host, port, hello = _early_place(endpoint)
        early = preconnect.early_for(host, port, timeout=options.timeout, hello=hello)
        from fsmove.transfers.sftp import SftpStore

        return SftpStore(
            endpoint,
            known_hosts=options.known_hosts,
            accept_new_host_key=options.accept_new_host_key,
            client_keys=list(options.identity_files) or None,
            ssh_config=options.ssh_config,
            timeout=options.timeout,
            preconnect=early,
            read_only=not writable,
        )
    raise ConfigError(f"unsupported scheme {endpoint.scheme!r}")


def endpoint_from_text(text: str, *, side: EndpointSide,
                       interactive: bool | None = None) -> Endpoint:
    """``clever://ADDON[/path]`` asks the `clever` CLI for the bucket's FTP host and
    credentials (fsmove/clever/bucket.py); every other form is parsed and resolved here."""
    from fsmove.clever.bucket import is_clever_url

    if is_clever_url(text):
        from fsmove.clever.bucket import resolve_clever_endpoint

        return resolve_clever_endpoint(text)
    return resolve(parse_endpoint(text), side=side, interactive=interactive)


def resolved_endpoint(value: str | Endpoint, *, side: EndpointSide) -> Endpoint:
    """``value`` as typed (see ``endpoint_from_text``), or an endpoint a caller resolved
    already, taken as it is."""
    endpoint = value if isinstance(value, Endpoint) else endpoint_from_text(value, side=side)
    if endpoint.is_local:
        warn_of_locale_charset()
    return endpoint


_warned_charset: list[str] = []


def warn_of_locale_charset() -> None:
    """Once per process, where a side is local and the locale's charset is not UTF-8:
    local names are read and written in that charset (as every POSIX tool does), and
    stored as UTF-8 on servers. A tree named in UTF-8 under an ISO-8859-1 locale then
    reaches a server as ``cafÃ©`` while ``verify`` in the same locale agrees (session
    33's adversarial pass). fsmove cannot know which the bytes meant; it says so."""
    charset = sys.getfilesystemencoding()
    if charset.lower().replace("-", "").replace("_", "") in ("utf8", "ascii") \
            or _warned_charset:
        return
    _warned_charset.append(charset)
    print(f"fsmove: warning: this locale's charset is {charset}: local file names are "
          f"read and written as {charset} (and stored as UTF-8 on servers); if your file "
          "names are UTF-8, run fsmove under a UTF-8 locale (LC_ALL=C.UTF-8)",
          file=sys.stderr, flush=True)
