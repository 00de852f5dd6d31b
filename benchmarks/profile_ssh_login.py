"""What an SFTP session costs before its first request, directly and over the WAN relay.

``python -m benchmarks.profile_ssh_login [--rounds 5] [--one-way-ms 30]`` starts the test
sshd, a latency relay in front of it, and times asyncssh's three steps the SFTP store
takes for every session (``transfers/sftp/store.py``): connect (TCP, key exchange,
public-key auth), ``start_sftp_client`` (channel open, subsystem, SFTP init and the
``limits@openssh.com`` request), then one ``stat``. The first round of each link is a
warm-up and not printed. It is the measured floor behind the SFTP first-byte figures of
the benchmark (benchmarks/README.md, "Profile: first byte over SFTP").

Host keys are not checked here (the relay listens on another port than the one the
test known_hosts names); this script only times the handshake, it never copies data.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncssh

from tests.servers.base import RunningServer

from .ssh_link import sshd_behind_relay

try:
    from fsmove.transfers.sftp.quick_start import ask_password_first, start_sftp
except ImportError:  # run from a tree without it: only the "asyncssh" rows
    ask_password_first = start_sftp = None  # type: ignore[assignment]
try:
    from fsmove.transfers.sftp.quick_start import auth_behind_service_request
except ImportError:  # a tree before session 18: no "password-early" rows
    auth_behind_service_request = None  # type: ignore[assignment]


class _PasswordFirst(asyncssh.SSHClient):
    """Session 15's client: a given password is tried first."""

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        ask_password_first(conn)


class _PasswordEarly(asyncssh.SSHClient):
    """fsmove's client (transfers/sftp/store.py): the password first, sent right behind
    the request for the auth service."""

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        ask_password_first(conn)
        auth_behind_service_request(conn)


async def _rounds(host: str, port: int, server: RunningServer, rounds: int, how: str
                  ) -> list[tuple[float, float, float]]:
    """``how``: "asyncssh" (its own calls, public-key auth as before), or "password" /
    "password-quick" / "password-early" (password auth; "-quick": session 15's start,
    "-early": fsmove's, with the auth request behind the service request;
    quick_start.py)."""
    out: list[tuple[float, float, float]] = []
    for _ in range(rounds + 1):
        t0 = time.monotonic()
        if how == "asyncssh":
            conn = await asyncssh.connect(
                host, port, username=server.user, client_keys=[str(server.client_key)],
                known_hosts=None,
            )
        else:
            conn = await asyncssh.connect(
                host, port, username=server.user, password=server.password,
                client_keys=None, agent_path=None, known_hosts=None,
                client_factory={"password-quick": _PasswordFirst,
                                "password-early": _PasswordEarly}.get(how),
            )
        t1 = time.monotonic()
        if how != "password":
            sftp = (await start_sftp(conn, version_timeout=30.0)).client
        else:
            sftp = await conn.start_sftp_client()
        t2 = time.monotonic()
        await sftp.stat(server.url_path)
        t3 = time.monotonic()
        out.append((t1 - t0, t2 - t1, t3 - t2))
        conn.close()
        await conn.wait_closed()
    return out[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--one-way-ms", type=float, default=30.0)
    args = parser.parse_args()
    with sshd_behind_relay(args.one_way_ms) as link:
        server = link.server
        links = (("direct", server.host, server.port),
                 (f"RTT {2 * args.one_way_ms:g} ms", "127.0.0.1", link.relay_port))
        print("link | how | connect+auth ms | SFTP start ms | stat ms (medians)")
        hows = ["asyncssh", "password"] + (["password-quick"] if start_sftp else []) + (
            ["password-early"] if auth_behind_service_request else [])
        for label, host, port in links:
            for how in hows:
                got = asyncio.run(_rounds(host, port, server, args.rounds, how))
                med = [statistics.median(x[i] for x in got) * 1000 for i in range(3)]
                print(f"{label} | {how} | {med[0]:.0f} | {med[1]:.0f} | {med[2]:.0f}")

if __name__ == "__main__":
    main()
