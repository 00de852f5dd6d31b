"""What the benchmark's WAN relay lets through, with nothing else in the way.

``python -m benchmarks.relay_ceiling [--relays 2] [--connections 2] [--one-way-ms 30]
[--mib 512]`` starts ``--relays`` latency relays in this process (threads on uvloop,
as ``benchmarks.run`` runs them: one interpreter for all) in front of sinks in a child
process, and pushes ``--mib`` MiB through each of ``--connections`` connections per
relay from that child (plain ``sendall`` of 1 MiB, ``recv_into`` a reused buffer: as
little CPU as a client can spend). It prints the total rate: the ceiling a cell's link
model sets, against which a client's rate is judged (benchmarks/README.md, "Session
19": large-ftp-60ms).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys

from tests.servers.relay import start_relay

from .environment import relay_loop_factory

_CHILD = """
import socket, sys, threading, time
fds, targets, per, size = eval(sys.argv[1])
def drain(conn):
    view = memoryview(bytearray(1 << 20))
    while conn.recv_into(view):
        pass
def accept(sink):
    for _ in range(per):
        conn, _ = sink.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()
for fd in fds:
    threading.Thread(target=accept, args=(socket.socket(fileno=fd),), daemon=True).start()
def send(address):
    with socket.create_connection(address) as conn:
        chunk = b"x" * (1 << 20)
        for _ in range(size >> 20):
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
start = time.monotonic()
threads = [threading.Thread(target=send, args=(t,)) for t in targets for _ in range(per)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
total = len(threads) * size
print(f"{len(targets)} relay(s) x {per} connection(s): {total / took / 1e6:,.0f} MB/s "
      f"in all, {total / took / 1e6 / len(threads):,.0f} per connection ({took:.2f} s)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relays", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2, help="per relay")
    parser.add_argument("--one-way-ms", type=float, default=30.0)
    parser.add_argument("--mib", type=int, default=512, help="per connection")
    args = parser.parse_args()
    sinks = [socket.create_server(("127.0.0.1", 0)) for _ in range(args.relays)]
    listen = [f"127.0.0.{21 + i}" for i in range(args.relays)]
    targets = [(host, sink.getsockname()[1]) for host, sink in zip(listen, sinks, strict=True)]
    spec = repr(([s.fileno() for s in sinks], targets, args.connections, args.mib << 20))
    with contextlib.ExitStack() as stack:
        for host, sink in zip(listen, sinks, strict=True):
            stack.enter_context(start_relay(
                listen_host=host, target_host="127.0.0.1", ports=[sink.getsockname()[1]],
                one_way_delay=args.one_way_ms / 1000, loop_factory=relay_loop_factory()))
        child = subprocess.run([sys.executable, "-c", _CHILD, spec],
                               pass_fds=[s.fileno() for s in sinks], timeout=600,
                               check=False)
    for sink in sinks:
        sink.close()
    raise SystemExit(child.returncode)


if __name__ == "__main__":
    main()
