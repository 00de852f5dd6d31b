"""The latency relay: delay in each direction, order, full-rate flow, faults, counters."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.servers.relay import start_relay

LISTEN = "127.0.0.11"
TARGET = "127.0.0.1"
DELAY = 0.05  # one way; a round trip is 2 * DELAY


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = _EchoServer((TARGET, 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def test_round_trip_is_delayed_both_ways_and_ordered(echo_port: int) -> None:
    listen_port = _free_port(LISTEN)
    with start_relay(
        listen_host=LISTEN,
        target_host=TARGET,
        ports={listen_port: echo_port},
        one_way_delay=DELAY,
    ) as relay:
        t0 = time.monotonic()
        with socket.create_connection((LISTEN, listen_port), timeout=5) as sock:
            # A fresh connection pays one round trip for the handshake, then one more.
            sock.sendall(b"warm")
            assert _recv_exactly(sock, 4) == b"warm"
            assert 4 * DELAY * 0.9 <= time.monotonic() - t0 < 4 * DELAY + 0.5
            t0 = time.monotonic()
            sock.sendall(b"ping")
            assert _recv_exactly(sock, 4) == b"ping"
            rtt = time.monotonic() - t0
            assert 2 * DELAY * 0.9 <= rtt < 2 * DELAY + 0.5

            # Many small writes in a row: they arrive in order, and all of them after
            # about one round trip, not one round trip each.
            messages = [f"{i:05d}".encode() for i in range(200)]
            t0 = time.monotonic()
            for m in messages:
                sock.sendall(m)
            got = _recv_exactly(sock, 5 * len(messages))
            elapsed = time.monotonic() - t0
            assert got == b"".join(messages)
            # One round trip each would take 200: a tenth of that is a margin no load
            # closes, and still proves they travel together.
            assert elapsed < 20 * 2 * DELAY

        stats = relay.stats()
        assert stats.to_target == stats.from_target == 8 + 5 * len(messages)
        assert stats.accepted == 1


def test_bulk_data_flows_at_full_rate(echo_port: int) -> None:
    listen_port = _free_port(LISTEN)
    payload = bytes(range(256)) * 4096 * 8  # 8 MiB
    with (
        start_relay(
            listen_host=LISTEN,
            target_host=TARGET,
            ports={listen_port: echo_port},
            one_way_delay=0.1,
        ),
        socket.create_connection((LISTEN, listen_port), timeout=10) as sock,
    ):
        got = bytearray()
        writer = threading.Thread(target=sock.sendall, args=(payload,))
        t0 = time.monotonic()
        writer.start()
        while len(got) < len(payload):
            chunk = sock.recv(1 << 20)
            assert chunk
            got += chunk
        elapsed = time.monotonic() - t0
        writer.join()
    assert bytes(got) == payload
    # 1 chunk per round trip would need 8 MiB / 256 KiB * 200 ms = 6.4 s at the very
    # least; full rate is one round trip plus the copying (half of that bound is room
    # for a loaded machine).
    assert elapsed < 3.2


def test_cut_all_and_refuse(echo_port: int) -> None:
    listen_port = _free_port(LISTEN)
    with start_relay(
        listen_host=LISTEN,
        target_host=TARGET,
        ports={listen_port: echo_port},
        one_way_delay=0.005,
    ) as relay:
        sock = socket.create_connection((LISTEN, listen_port), timeout=5)
        sock.sendall(b"hello")
        assert _recv_exactly(sock, 5) == b"hello"
        assert relay.stats().live == 1

        relay.cut_all()
        with pytest.raises(OSError):
            sock.sendall(b"x" * 65536)
            for _ in range(20):
                if not sock.recv(1):
                    raise ConnectionResetError("peer closed")
                sock.sendall(b"x")
        sock.close()
        assert relay.stats().live == 0

        relay.set_refuse(True)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LISTEN, listen_port), timeout=5).close()
        relay.set_refuse(False)
        with socket.create_connection((LISTEN, listen_port), timeout=5) as again:
            again.sendall(b"back")
            assert _recv_exactly(again, 4) == b"back"


def test_half_close_delivers_everything_then_eof(echo_port: int) -> None:
    listen_port = _free_port(LISTEN)
    with (
        start_relay(
            listen_host=LISTEN,
            target_host=TARGET,
            ports={listen_port: echo_port},
            one_way_delay=0.01,
        ) as relay,
        socket.create_connection((LISTEN, listen_port), timeout=5) as sock,
    ):
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert _recv_exactly(sock, 10) == b"last words"
        assert sock.recv(1) == b""  # the server's FIN came through after the data
        deadline = time.monotonic() + 5
        while relay.stats().live and time.monotonic() < deadline:
            time.sleep(0.01)
        assert relay.stats().live == 0


def test_the_benchmark_s_relay_loop_carries_data_in_order_and_counts_it(
    echo_port: int,
) -> None:
    """The benchmark runs its relays on uvloop's loop (benchmarks/environment.py), whose
    transports are not asyncio's classes: the same relay must carry data, in order, and
    count it there too."""
    from benchmarks.environment import relay_loop_factory

    factory = relay_loop_factory()
    assert factory.__module__.startswith("uvloop")  # installed with the test extra
    listen_port = _free_port(LISTEN)
    with start_relay(listen_host=LISTEN, target_host=TARGET, ports={listen_port: echo_port},
                     one_way_delay=0.005, loop_factory=factory) as relay:
        with socket.create_connection((LISTEN, listen_port), timeout=10) as sock:
            messages = [f"{i:05d}".encode() for i in range(200)]
            for m in messages:
                sock.sendall(m)
            assert _recv_exactly(sock, 5 * len(messages)) == b"".join(messages)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""  # the half-close came back through
        stats = relay.stats()
        assert stats.to_target == stats.from_target == 5 * len(messages)
        assert stats.accepted == 1
