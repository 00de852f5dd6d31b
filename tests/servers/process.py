"""Run a server binary as a foreground child: wait for its port, stop its whole tree."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .base import ServerStartError
from .ports import free_port

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 3
_POLL_INTERVAL = 0.02
_IN_USE_MARKERS = ("address already in use", "could not bind")


def _listening_sockets(host: str, port: int) -> set[str]:
    """The inodes of sockets listening on host:port, read from /proc/net/tcp."""
    wanted_ips = {socket.inet_aton(host)[::-1].hex().upper(), "00000000"}
    wanted_port = f"{port:04X}"
    inodes: set[str] = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            ip, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and hex_port == wanted_port and ip in wanted_ips:
                inodes.add(f"socket:[{fields[9]}]")
    return inodes


#: /proc/net/tcp states of a connection the server may still read from.
_ESTABLISHED = "01"
_OPEN_STATES = {_ESTABLISHED, "08"}  # ESTABLISHED, CLOSE_WAIT


def open_connections(host: str, control_port: int, data_ports: Sequence[int] = ()) -> int:
    """Connections through which the server listening on host:``control_port`` may
    still receive file bytes from a client. Once there are none, a server whose client
    died has written all it will write.

    Without ``data_ports`` (SFTP) the files travel on the control connection: every
    connection the server has not closed counts, ESTABLISHED or CLOSE_WAIT (the peer is
    gone, the server still reads what it sent).

    With ``data_ports`` (FTP's passive range) the files travel on data connections:
    every one the server holds counts, and so does one still waiting in a passive
    listener's queue (no inode yet: not accepted) -- it may carry bytes the server has
    yet to read. A control connection counts only while ESTABLISHED. One in CLOSE_WAIT
    can bring no file bytes any more, but the server may keep it for a long time:
    vsftpd that received a STOR from a client killed before it connected the data
    connection waits ``accept_timeout`` (60 s by default, 10 s in these servers) for
    that connection before it lets go.

    Only sockets that the server's processes hold count: a client socket of another
    test (or of another server) whose ephemeral local port happens to fall inside this
    server's passive range is someone else's connection, and it may stay open for the
    whole session."""
    held = _sockets_of(_server_processes(host, control_port))
    wanted_ip = socket.inet_aton(host)[::-1].hex().upper()
    control = f"{control_port:04X}"
    data = {f"{port:04X}" for port in data_ports}
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            ip, _, hex_port = fields[1].partition(":")
            state, inode = fields[3], fields[9]
            if ip != wanted_ip or state not in _OPEN_STATES:
                continue
            if hex_port == control:
                if f"socket:[{inode}]" in held and (not data or state == _ESTABLISHED):
                    count += 1
            elif hex_port in data and (inode == "0" or f"socket:[{inode}]" in held):
                count += 1
    return count


def _server_processes(host: str, port: int) -> list[int]:
    """The processes holding the socket listening on host:port, and every process below
    them (an FTP server's session children)."""
    inodes = _listening_sockets(host, port)
    owners = [pid for pid, held in _all_sockets().items() if held & inodes]
    return [p for pid in owners for p in (pid, *descendants(pid))]


def _all_sockets() -> dict[int, set[str]]:
    """pid -> the socket inodes it holds, for every process this user may read."""
    out: dict[int, set[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            out[int(entry.name)] = _sockets_of([int(entry.name)])
    return out


def _sockets_of(pids: Sequence[int]) -> set[str]:
    held: set[str] = set()
    for pid in pids:
        try:
            fds = list(os.scandir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd.path)
            except OSError:
                continue
            if target.startswith("socket:"):
                held.add(target)
    return held


def _listens(pid: int, host: str, port: int) -> bool:
    """Whether ``pid`` (or a process it forked) holds a socket listening on host:port.

    Read from /proc instead of connecting: a probe connection would count against an
    FTP server's max_clients while its session process winds down, and would show up in
    the server's log. Owning the socket matters: another program may hold the port.
    """
    inodes = _listening_sockets(host, port)
    if not inodes:
        return False
    for candidate in [pid, *descendants(pid)]:
        try:
            fds = list(os.scandir(f"/proc/{candidate}/fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd.path) in inodes:
                    return True
            except OSError:
                continue
    return False


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    return text[-limit:].strip() or "(no output)"


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (sshd's session children leave its group)."""
    children = _children_by_parent()
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _signal_all(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def stop_tree(proc: subprocess.Popen[bytes], *, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the server and everything it forked, SIGKILL what is left after timeout."""
    tree = descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _signal_all(tree, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(_POLL_INTERVAL)
    _signal_all([pid for pid in tree if _alive(pid)], signal.SIGKILL)


def _wait_listening(
    proc: subprocess.Popen[bytes], *, host: str, port: int, timeout: float
) -> str | None:
    """None once the server listens, else why not (it exited, or time ran out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with code {proc.returncode}"
        if _listens(proc.pid, host, port):
            return None
        time.sleep(_POLL_INTERVAL)
    return f"not listening after {timeout:.0f} s"


@contextmanager
def serve(
    *,
    name: str,
    host: str,
    make_argv: Callable[[int], Sequence[str]],
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> Iterator[int]:
    """Start ``make_argv(port)`` on a free port of ``host``; yield the port once it listens.

    ``make_argv`` writes the server's config for that port and returns the command line
    (never with a secret in it). A port taken between picking and binding is retried with
    another one. The child gets its own session; on exit it and all it forked are stopped.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port(host)
        argv = list(make_argv(port))
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            failure = _wait_listening(proc, host=host, port=port, timeout=timeout)
        except BaseException:
            stop_tree(proc)
            raise
        if failure is None:
            try:
                yield port
            finally:
                stop_tree(proc)
            return
        stop_tree(proc)
        output = _tail(log_path)
        # The port was taken between picking and binding? (vsftpd says nothing then.)
        taken = _listening_sockets(host, port) or any(
            marker in output.lower() for marker in _IN_USE_MARKERS
        )
        if attempt < PORT_ATTEMPTS and taken:
            continue
        raise ServerStartError(
            f"{name} did not come up on {host}:{port} ({failure}); "
            f"command: {' '.join(argv)}; its output ({log_path}):\n{output}"
        )
    raise AssertionError("unreachable")
