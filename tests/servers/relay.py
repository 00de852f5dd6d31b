"""A userspace TCP latency relay: a WAN on loopback, for tests, fault tests and benchmarks.

Kernel ``netem`` is not available here, so latency is simulated in userspace. The relay
listens on ``listen_host`` for each given port and forwards every accepted connection
to the same port (or a mapped one) on ``target_host``. Every chunk is held for
``one_way_delay`` seconds in each direction, in order, through a timestamped queue per
direction: data flows at full rate and is only *delayed*, it is never sent one chunk
per round trip.

How much may be in flight per direction and connection is bounded by ``window`` bytes
(the relay stops reading from the sender above it, which gives TCP back-pressure). Like
a TCP window on a real link, it caps one connection's throughput at about
``window / one_way_delay`` (4 MiB at 30 ms: ~140 MB/s per connection).

FTP through the relay: listen on another loopback address (e.g. 127.0.0.11) for the
control port *and* the server's whole passive port range, and have the server advertise
the relay's address in its PASV replies (vsftpd ``pasv_address``); EPSV works as is.
SFTP is one port.

A new connection costs one round trip before the client's first byte can reach the
server, as a TCP handshake over the link would: the relay connects upstream one delay
after accepting, and holds the client's first bytes until three delays after it.

Fault controls: ``cut_all()`` drops every live connection at once, ``set_refuse(True)``
closes the listening sockets (new connections are refused) until ``set_refuse(False)``.
``stats()`` counts the bytes received per direction.

    with start_relay(listen_host="127.0.0.11", target_host="127.0.0.10",
                     ports=[2121, *range(30000, 30050)], one_way_delay=0.030) as relay:
        ...  # connect to 127.0.0.11
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass

DEFAULT_WINDOW = 4 * 1024 * 1024
_READ_SIZE = 256 * 1024


@dataclass(frozen=True)
class RelayStats:
    """Bytes the relay received from each side, and connections accepted / still open."""

    to_target: int
    from_target: int
    accepted: int
    live: int


class _Counters:
    def __init__(self) -> None:
        self.to_target = 0
        self.from_target = 0
        self.accepted = 0


_EOF = b""  # queue marker: half-close the receiving side once the delay has passed


class _DelayedPipe:
    """One direction of one connection: a timestamped FIFO from a source to a sink."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, delay: float, window: int) -> None:
        self._loop = loop
        self._delay = delay
        self._window = window
        self._queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self._buffered = 0
        self._timer: asyncio.Handle | None = None
        self.source: _Side | None = None
        self.sink: _Side | None = None
        self._source_paused_for_queue = False
        self._sink_paused = False
        self.closed = False
        #: nothing is delivered before this loop time (the simulated TCP handshake)
        self.not_before = 0.0

    # -- input side -------------------------------------------------------------------
    def push(self, data: bytes | None) -> None:
        """Queue data (``_EOF`` for a half-close, ``None`` for a full close)."""
        if self.closed:
            return
        self._queue.append((max(self._loop.time() + self._delay, self.not_before), data))
        if data:
            self._buffered += len(data)
            if self._buffered > self._window and not self._source_paused_for_queue:
                self._source_paused_for_queue = True
                self._update_source()
        if self._timer is None:
            self._schedule()

    # -- output side ------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._queue or self._sink_paused or self.sink is None:
            return
        if self.sink.transport is None:
            return
        when = self._queue[0][0]
        if when <= self._loop.time():
            self._timer = self._loop.call_soon(self._flush)
        else:
            self._timer = self._loop.call_at(when, self._flush)

    def _flush(self) -> None:
        self._timer = None
        side = self.sink
        if side is None or side.transport is None or self.closed:
            return
        sink = side.transport
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now and not self._sink_paused:
            _, data = self._queue.popleft()
            if data is None:
                self.closed = True
                sink.close()
                return
            if data == _EOF:
                side.eof_out = True
                if sink.is_closing():
                    continue
                if side.eof_in or not sink.can_write_eof():
                    sink.close()
                else:
                    try:
                        sink.write_eof()
                    except OSError:  # the peer is already gone (reset)
                        sink.abort()
                continue
            self._buffered -= len(data)
            if not sink.is_closing():
                sink.write(data)
        if self._source_paused_for_queue and self._buffered <= self._window // 2:
            self._source_paused_for_queue = False
            self._update_source()
        self._schedule()

    def sink_pause(self) -> None:
        self._sink_paused = True
        self._update_source()

    def sink_resume(self) -> None:
        self._sink_paused = False
        self._update_source()
        if self._timer is None:
            self._schedule()

    def _update_source(self) -> None:
        src = self.source.transport if self.source is not None else None
        if src is None or src.is_closing():
            return
        if self._source_paused_for_queue or self._sink_paused:
            if src.is_reading():
                src.pause_reading()
        elif not src.is_reading():
            src.resume_reading()

    def drop(self) -> None:
        self.closed = True
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Side(asyncio.Protocol):
    """One TCP end of a relayed connection; ``outbound`` carries what it receives."""

    def __init__(
        self,
        *,
        conn: _Connection,
        outbound: _DelayedPipe,
        inbound: _DelayedPipe,
        to_target: bool,
    ) -> None:
        self._conn = conn
        self._outbound = outbound
        self._inbound = inbound
        self._to_target = to_target
        self.transport: asyncio.Transport | None = None
        self.eof_in = False  # this end sent us its FIN
        self.eof_out = False  # we forwarded a FIN to this end
        outbound.source = self
        inbound.sink = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = transport  # type: ignore[assignment]
        self._inbound.sink_resume()

    def data_received(self, data: bytes) -> None:
        counters = self._conn.counters
        if self._to_target:
            counters.to_target += len(data)
        else:
            counters.from_target += len(data)
        self._outbound.push(data)

    def eof_received(self) -> bool:
        self.eof_in = True
        self._outbound.push(_EOF)
        if self.eof_out and self.transport is not None:
            self.transport.close()
        return True  # keep the other direction open until it is finished too

    def connection_lost(self, exc: Exception | None) -> None:
        self._outbound.push(None)
        self._inbound.drop()
        self._conn.side_lost()

    def pause_writing(self) -> None:
        self._inbound.sink_pause()

    def resume_writing(self) -> None:
        self._inbound.sink_resume()


class _Connection:
    """A client connection and its upstream, joined by two delayed pipes."""

    def __init__(self, *, relay: _RelayCore, target: tuple[str, int]) -> None:
        self.relay = relay
        self.counters = relay.counters
        self.target = target
        loop = relay.loop
        self.up = _DelayedPipe(loop=loop, delay=relay.delay, window=relay.window)
        self.down = _DelayedPipe(loop=loop, delay=relay.delay, window=relay.window)
        self.client = _Side(conn=self, outbound=self.up, inbound=self.down, to_target=True)
        self.server = _Side(conn=self, outbound=self.down, inbound=self.up, to_target=False)
        self._lost = 0
        self.aborted = False
        if relay.delay:
            # The TCP handshake a real link would cost: the client may send only after a
            # round trip, so its first bytes reach the server three one-way delays after
            # connect(); the server sees the connection one delay after it.
            self.up.not_before = loop.time() + 3 * relay.delay

    async def open_upstream(self) -> None:
        if self.relay.delay:
            await asyncio.sleep(self.relay.delay)
        if self.aborted:
            return
        try:
            await self.relay.loop.create_connection(lambda: self.server, *self.target)
        except OSError:
            self.abort()
            return
        if self.aborted and self.server.transport is not None:
            self.server.transport.abort()

    def side_lost(self) -> None:
        self._lost += 1
        if self._lost >= 2 or self.server.transport is None:
            self.relay.live.discard(self)

    def abort(self) -> None:
        self.aborted = True
        self.up.drop()
        self.down.drop()
        for side in (self.client, self.server):
            if side.transport is not None:
                side.transport.abort()
        self.relay.live.discard(self)


class _RelayCore:
    """The relay's state, owned by its event loop thread."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        listen_host: str,
        target_host: str,
        port_map: Mapping[int, int],
        delay: float,
        window: int,
    ) -> None:
        self.loop = loop
        self.listen_host = listen_host
        self.target_host = target_host
        self.port_map = dict(port_map)
        self.delay = delay
        self.window = window
        self.counters = _Counters()
        self.live: set[_Connection] = set()
        self.servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _factory(self, target_port: int) -> _Side:
        self.counters.accepted += 1
        conn = _Connection(relay=self, target=(self.target_host, target_port))
        self.live.add(conn)
        task = self.loop.create_task(conn.open_upstream())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return conn.client

    async def listen(self) -> None:
        try:
            for listen_port, target_port in self.port_map.items():
                server = await self.loop.create_server(
                    lambda tp=target_port: self._factory(tp),
                    self.listen_host,
                    listen_port,
                    reuse_address=True,
                    backlog=256,
                )
                self.servers.append(server)
        except BaseException:
            await self.stop_listening()
            raise

    async def stop_listening(self) -> None:
        servers, self.servers = self.servers, []
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()

    async def cut_all(self) -> None:
        for conn in list(self.live):
            conn.abort()

    async def shutdown(self) -> None:
        await self.stop_listening()
        await self.cut_all()
        for task in list(self._tasks):
            task.cancel()


class Relay:
    """Handle on a running relay (thread-safe; use it from any thread)."""

    def __init__(self, core: _RelayCore, thread: threading.Thread) -> None:
        self._core = core
        self._thread = thread
        self._refusing = False

    @property
    def listen_host(self) -> str:
        return self._core.listen_host

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(self._core.port_map)

    @property
    def one_way_delay(self) -> float:
        return self._core.delay

    def _call(self, coro: Coroutine[object, object, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._core.loop).result(timeout=30)

    def cut_all(self) -> None:
        """Drop every live connection now (both ends see a reset)."""
        self._call(self._core.cut_all())

    def set_refuse(self, refuse: bool) -> None:
        """Refuse new connections (listening sockets closed) or accept them again."""
        if refuse == self._refusing:
            return
        self._refusing = refuse
        self._call(self._core.stop_listening() if refuse else self._core.listen())

    def stats(self) -> RelayStats:
        c = self._core.counters
        return RelayStats(
            to_target=c.to_target,
            from_target=c.from_target,
            accepted=c.accepted,
            live=len(self._core.live),
        )

    def __repr__(self) -> str:
        return (
            f"Relay({self._core.listen_host} -> {self._core.target_host}, "
            f"{len(self._core.port_map)} ports, delay={self._core.delay}s)"
        )


def _port_map(ports: Iterable[int] | Mapping[int, int]) -> dict[int, int]:
    if isinstance(ports, Mapping):
        mapping = {int(k): int(v) for k, v in ports.items()}
    else:
        mapping = {int(p): int(p) for p in ports}
    if not mapping:
        raise ValueError("start_relay needs at least one port")
    return mapping


@contextlib.contextmanager
def start_relay(
    *,
    listen_host: str,
    target_host: str,
    ports: Iterable[int] | Mapping[int, int],
    one_way_delay: float = 0.0,
    window: int = DEFAULT_WINDOW,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
) -> Iterator[Relay]:
    """Run a latency relay in a background thread with its own event loop.

    ``ports`` is either the ports to forward one to one, or a mapping
    ``{listen_port: target_port}``. The relay is listening when the block starts and is
    fully stopped (listeners closed, connections dropped, thread joined) when it ends.
    ``loop_factory`` makes its loop (the benchmark passes uvloop's: the same relay at
    a lower CPU cost per chunk, so a cell measures the clients rather than the relay).
    """
    if one_way_delay < 0:
        raise ValueError("one_way_delay must be >= 0")
    port_map = _port_map(ports)
    loop = loop_factory()
    core = _RelayCore(
        loop=loop,
        listen_host=listen_host,
        target_host=target_host,
        port_map=port_map,
        delay=one_way_delay,
        window=window,
    )
    ready = threading.Event()
    thread = threading.Thread(
        target=_run_loop, args=(loop, ready), name=f"relay-{listen_host}", daemon=True
    )
    thread.start()
    ready.wait()
    relay = Relay(core, thread)
    try:
        asyncio.run_coroutine_threadsafe(core.listen(), loop).result(timeout=30)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        raise
    try:
        yield relay
    finally:
        asyncio.run_coroutine_threadsafe(core.shutdown(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
