"""Endpoint URLs: ``ftp://``, ``ftps://``, ``sftp://``, ``file://`` and plain paths.

A parsed ``Endpoint`` is a frozen value with the password wrapped in ``Secret`` so that
no ``repr``, log line, journal key or exception can show it. ``display`` is the one
form of an endpoint that may be printed.

Paths keep every byte the user typed: spaces, UTF-8, ``#`` and ``%`` survive. In URLs,
``%XX`` escapes are decoded (so ``%23`` is ``#`` and ``%25`` is ``%``); an unescaped
``#`` or ``?`` is part of the path (we never treat them as fragment or query, since no
store has either). A plain path is taken literally, no decoding at all.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from .backend import BackendError

SCHEMES = ("ftp", "ftps", "sftp", "file")
DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}


class EndpointError(BackendError):
    """A malformed endpoint URL or an unknown scheme (a usage error)."""


class Secret:
    """A string that never shows itself: ``repr``/``str`` print ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    #: Root folder. For remote schemes an absolute server path ("/" by default); for
    #: ``file`` an absolute local path.
    path: str
    host: str = ""
    port: int | None = None
    user: str | None = None
    password: Secret | None = field(default=None, compare=False)

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def effective_port(self) -> int | None:
        return self.port or DEFAULT_PORTS.get(self.scheme)

    @property
    def display(self) -> str:
        """The endpoint as a URL with no password in it (safe to print and store)."""
        if self.is_local:
            return self.path
        user = f"{quote(self.user, safe='')}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{user}{host}{port}{quote(self.path, safe='/')}"

    @property
    def identity(self) -> str:
        """A stable key for this endpoint (journal naming): display form, no secret."""
        return self.display

    def with_password(self, password: str | None) -> Endpoint:
        return replace(self, password=Secret(password) if password is not None else None)

    def __repr__(self) -> str:  # never show the password, even masked
        return f"Endpoint({self.display!r})"


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: What a mistyped URL looks like: ``ftp:/h``, ``ftp:h``-style (a scheme, a colon, not
#: two slashes) or ``sftp//h`` (a known scheme, no colon). Never a local path: taken as
#: one, ``sftp//bob:pw@h/x`` made a folder named after the password.
_TYPO_RE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*:(?!//)/|(?:" + "|".join((*SCHEMES, "clever")) + r"):(?!//)"
    r"|(?:" + "|".join((*SCHEMES, "clever")) + r")/{2,})",
    re.IGNORECASE,
)


def parse_endpoint(text: str) -> Endpoint:
    """Parse an endpoint URL or plain path. Raises EndpointError with a one-line reason
    that never shows a password, whatever the text got wrong (``mask_url``)."""
    if not text:
        raise EndpointError("empty endpoint: give a URL like ftp://user@host/path or a path")
    m = _SCHEME_RE.match(text)
    if not m:
        if _TYPO_RE.match(text):
            raise EndpointError(
                f"malformed endpoint {mask_url(text)!r}: write scheme://host/path (a colon "
                "and two slashes); for a local folder of that name, write ./ before it"
            )
        return Endpoint(scheme="file", path=os.path.abspath(os.path.expanduser(text)))
    scheme = m.group(1).lower()
    rest = text[m.end() :]
    if scheme not in SCHEMES:
        raise EndpointError(
            f"unknown scheme {scheme!r} in endpoint: use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
            + " or a plain path"
        )
    if scheme == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        if not rest.startswith("/"):
            raise EndpointError("malformed file URL: write file:///absolute/path")
        return Endpoint(scheme="file",
                        path=os.path.normpath(_unquoted(rest, "path", text)) or "/")

    # authority = everything up to the first "/" after the last "@" before that slash.
    # Passwords may contain "/" or "@" only when %-escaped, as in every URL.
    slash = rest.find("/")
    authority, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" not in authority and "@" in path and ":" in authority:
        # ``ftp://bob:S3cr3t/Pw@h/x``: a password holding '/' (its head would pass for a
        # host and port, its tail for a path, and show in every message). Ambiguous
        # with ``ftp://h:2121/a@b``, which can be written ``a%40b``: refused.
        raise EndpointError(
            f"malformed endpoint {mask_url(text)!r}: an '@' after the host: write a '/' "
            "in a password as %2F (better: give the password in FSMOVE_SRC_PASSWORD / "
            "FSMOVE_DST_PASSWORD or ~/.netrc), an '@' in a path as %40"
        )
    user = password = None
    if "@" in authority:
        userinfo, hostport = authority.rsplit("@", 1)
        if ":" in userinfo:
            user, password = userinfo.split(":", 1)
            password = _unquoted(password, "password", text)
        else:
            user = userinfo
        user = _unquoted(user, "user name", text)
        if not user:
            raise EndpointError(f"malformed endpoint {mask_url(text)!r}: empty user name")
    else:
        hostport = authority
    host, port = _split_hostport(hostport, text)
    if not host:
        raise EndpointError(f"malformed endpoint {mask_url(text)!r}: no host name")
    path = _unquoted(path, "path", text)
    if "\x00" in path:
        raise EndpointError("malformed endpoint: NUL byte in path")
    # Dot segments removed as a URL's are (RFC 3986 5.2.4, as curl does): ``/x/../n1``
    # is ``/n1``, never a folder ``x`` made on the way, and ``/a//b`` is ``/a/b``.
    path = posixpath.normpath("/" + path.strip("/")) if path.strip("/") else "/"
    path = "/" + path.lstrip("/")
    return Endpoint(
        scheme=scheme,
        host=host,
        port=port,
        user=user,
        password=Secret(password) if password is not None else None,
        path=path,
    )


def _unquoted(part: str, what: str, text: str) -> str:
    """``part`` with its %-escapes decoded as UTF-8. An escape that is not UTF-8 text
    (``caf%e9``, latin-1) is refused: decoded with replacement it named another folder
    (``caf`` and U+FFFD), and ``x%fe`` and ``x%ff`` became one job."""
    try:
        return unquote(part, errors="strict")
    except UnicodeDecodeError:
        raise EndpointError(
            f"malformed endpoint {mask_url(text)!r}: its {what} holds %-escapes that are "
            "not UTF-8 text: write them as UTF-8 (%C3%A9, not latin-1's %E9)"
        ) from None


def _split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise EndpointError(f"malformed endpoint {mask_url(text)!r}: unclosed '[' in host")
        host, tail = hostport[1:end], hostport[end + 1 :]
        if tail and not tail.startswith(":"):
            raise EndpointError(f"malformed endpoint {mask_url(text)!r}: junk after host")
        port_text = tail[1:] if tail else ""
    elif ":" in hostport:
        host, port_text = hostport.rsplit(":", 1)
        if ":" in host:
            # ``h:2121:21`` (a port typed twice) or an IPv6 address without brackets:
            # before session 32 taken as the host "h:2121", "cannot resolve host" (1).
            raise EndpointError(
                f"malformed endpoint {mask_url(text)!r}: more than one ':' after the host "
                "(one port only; an IPv6 address goes in brackets: ftp://[::1]:21/)")
    else:
        host, port_text = hostport, ""
    if port_text == "":
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        # The "port" may be a password typed where the parse did not expect one: the
        # message shows neither (mask_url hides what follows the colon).
        raise EndpointError(
            f"malformed endpoint {mask_url(text)!r}: the port is not a number 1-65535"
        )
    return host, int(port_text)


def _port_like(authority: str) -> bool:
    """Whether ``authority`` (no '@') is a host with at most a numeric port."""
    if authority.startswith("["):
        tail = authority[authority.find("]") + 1 :] if "]" in authority else ":x"
        return tail == "" or (tail.startswith(":") and tail[1:].isdigit())
    return ":" not in authority or authority.rsplit(":", 1)[1].isdigit()


_URL_HEAD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*(?::/*|/{2,}))(.*)$", re.DOTALL)


def mask_url(text: str) -> str:
    """``text`` safe to print: whatever looks like a password is replaced by ``***``,
    even in a malformed URL (``ftp://u:p/w@h``, ``ftp:/u:p@h``, ``sftp//u:p@h``).

    It masks generously: from the first ':' of the user part to the *last* '@' (a
    password may hold '/' or '@'), and, with no '@' at all, anything after a ':' in the
    host part that is not a port number. A message may lose a piece of a path; it never
    shows a password."""
    m = _URL_HEAD.match(text)
    if m is None:
        return text
    head, rest = m.groups()
    at = rest.rfind("@")
    if at >= 0:
        userinfo, tail = rest[:at], rest[at:]
        colon = userinfo.find(":")
        if colon >= 0:
            userinfo = userinfo[: colon + 1] + "***"
        return head + userinfo + tail
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if authority.startswith("["):  # an IPv6 host (no user part: no password here)
        return text
    if not _port_like(authority):
        authority = authority[: authority.find(":") + 1] + "***"
    return head + authority + path
