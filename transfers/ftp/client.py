"""The FTP control and data connections, on ``aioftp.Client``, minus its slow habits.

What changes from aioftp's own client (and why):

- Commands and replies are UTF-8 with ``surrogateescape``: a name that is not UTF-8
  comes back from a listing as lone surrogates and goes out again as the same bytes.
- ``TYPE I`` is sent once per session, not before every transfer (one round trip less
  per file).
- Passive mode tries EPSV first and falls back to PASV for good once the server refuses
  EPSV. The data connection always goes to the *control connection's peer address*,
  never to the address in a PASV reply: servers behind NAT advertise a private address
  (curl's default since 7.74, rclone does the same), and with round-robin DNS the host
  name could resolve to another machine.
- Data connections get a large read buffer so a single ``read`` returns big blocks.

The TLS variant (``tls.FtpsClient``) overrides ``start_data_tls``.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aioftp
from aioftp.common import Code, ThrottleStreamIO

from ..together import mark_seen
from .data import DataStream, open_data_stream

#: StreamReader buffer limit of data connections (the default, 64 KiB, makes reads small).
DATA_BUFFER = 4 * 1024 * 1024
#: Bounds on one control-connection reply, so a hostile or broken server cannot make
#: fsmove hold an endless multi-line reply (FEAT, HELP and MLST replies are a few lines;
#: a line is at most the control stream's 64 KiB buffer). The whole reply must also
#: arrive within the session timeout, not each line (a trickle would never end).
MAX_REPLY_LINES = 1000
MAX_REPLY_BYTES = 256 * 1024


class ProtocolError(Exception):
    """The server sent something that is not an FTP reply (the session is unusable)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete FTP reply: the code and every line of text after it."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reply as one line (for messages): code and text, continuation lines joined."""
        parts = [ln.strip(" -") for ln in self.lines if ln.strip(" -")]
        return f"{self.code} " + " / ".join(parts)[:300]

    @property
    def last(self) -> str:
        return self.lines[-1] if self.lines else ""

    def is_preliminary(self) -> bool:
        return 100 <= self.code < 200

    def is_success(self) -> bool:
        return 200 <= self.code < 300


def _split_line(text: str) -> tuple[Code, str]:
    return Code(text[:3]), text[3:]


_PASV_RE = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


class FtpClient(aioftp.Client):
    """One control connection and the data connections it opens, one at a time."""

    def __init__(self, *, timeout: float) -> None:
        super().__init__(
            socket_timeout=timeout,
            connection_timeout=timeout,
            encoding="utf-8",
            passive_commands=("epsv", "pasv"),
        )
        self.timeout = timeout
        self.peer_ip: str | None = None
        #: None until a first passive command was answered; then "EPSV" or "PASV".
        self.passive_mode: str | None = None
        #: The address the last PASV reply advertised (for notes; never connected to).
        self.pasv_advertised: str | None = None
        #: A passive port asked with the login's last commands, and when (loop time):
        #: the session opens its first data connection to it ahead (``FtpStore``).
        self.port_at_login: tuple[int, float] | None = None
        #: The shortest command round trip seen (seconds): paces ABOR (``FtpSession``).
        self.rtt = 0.05
        #: Handlers of replies owed to commands sent without waiting (``owe``), oldest
        #: first: replies come back in the order the commands were sent.
        self._owed: deque[tuple[Callable[[Reply], None],
                                Callable[[BaseException], None] | None]] = deque()
        self._settling: asyncio.Task[None] | None = None

    # -- control connection -------------------------------------------------------------

    async def open(self, host: str, port: int, *, sock: socket.socket | None = None) -> Reply:
        """Connect the control connection and return the server's greeting. ``sock``:
        a socket already connected to ``host``:``port`` (``transfers/preconnect.py``),
        taken instead of connecting; the stream around it is aioftp's, as its
        ``connect`` builds it."""
        if sock is None:
            await aioftp.BaseClient.connect(self, host, port)
        else:
            self.server_host, self.server_port = host, port
            reader, writer = await asyncio.open_connection(sock=sock)
            self._stream = ThrottleStreamIO(reader, writer, throttles={"_": self.throttle},
                                            timeout=self.socket_timeout)
        peer = self.stream.writer.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else host
        reply = await self.reply()
        while reply.code == 120:  # "service ready in nnn minutes"
            reply = await self.reply()
        return reply

    async def parse_line(self) -> tuple[Code, str]:
        return _split_line(await self._line(asyncio.get_running_loop().time() + self.timeout))

    async def _line(self, deadline: float) -> str:
        """One line of a reply, straight from the StreamReader (aioftp's StreamIO wraps
        every read in wait_for, a new task per line). A line that already arrived is
        taken without arming a timer: replies to pipelined commands come back together,
        and a timer per line was a tenth of the client's time on small files. Only a
        wait for bytes not yet here runs under the reply's deadline."""
        reader = self.stream.reader
        try:
            # ``_buffer`` (like ``_limit`` below) is the StreamReader's own, unchanged
            # since Python 3.4: what arrived and was not read yet.
            if b"\n" in reader._buffer:  # type: ignore[attr-defined]
                line = await reader.readline()
            else:
                async with asyncio.timeout_at(deadline):
                    line = await reader.readline()
        except ValueError as exc:  # no end of line within the stream's buffer
            raise ProtocolError("reply line longer than the control buffer "
                                f"({reader._limit} bytes)") from exc  # type: ignore[attr-defined]
        if not line:
            self.stream.close()
            raise ConnectionResetError("control connection closed by the server")
        return line.decode("utf-8", "surrogateescape").rstrip("\r\n")

    async def send(self, line: str) -> None:
        """Send one command line (never logged: it may be PASS)."""
        if "\r" in line or "\n" in line:
            raise ValueError("an FTP command must not contain CR or LF")
        writer = self.stream.writer
        writer.write((line + "\r\n").encode("utf-8", "surrogateescape"))
        await self._drain(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        # A command line almost always leaves at once: only wait when it did not (and
        # never without a timeout); this skips a timer per command.
        if writer.transport.get_write_buffer_size() or writer.transport.is_closing():
            async with asyncio.timeout(self.timeout):
                await writer.drain()

    #: Where set (FTPS), a pipelined batch is written in pieces of at most this many
    #: bytes, cut between commands: each piece is a TLS record of its own.
    write_piece_max: int | None = None

    async def send_many(self, lines: list[str]) -> None:
        """Several commands in one write (pipelining); read their replies in order.
        Every batch goes through here (``passive_then`` too): on FTPS its pieces are
        cut at ``write_piece_max`` (a ``DELE``, ``EPSV`` and ``STOR`` of a 2,000-byte
        path written whole stalled proftpd and pure-ftpd over TLS at every attempt:
        session 36's adversarial pass)."""
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError("an FTP command must not contain CR or LF")
        encoded = [(line + "\r\n").encode("utf-8", "surrogateescape") for line in lines]
        writer = self.stream.writer
        for piece in _pieces(encoded, self.write_piece_max):
            writer.write(piece)
        await self._drain(writer)

    def owe(self, handler: Callable[[Reply], None],
            on_error: Callable[[BaseException], None] | None = None) -> None:
        """A command was just sent and nobody waits for its reply: it is read in the
        background as soon as it arrives and handed to ``handler`` (so what the handler
        starts, a data connection, starts at once). The next ``reply()`` waits for it
        first, so replies stay in step. If the connection fails first, ``on_error`` gets
        the error (for this reply and every one owed after it)."""
        self._owed.append((handler, on_error))
        if self._settling is None or self._settling.done():
            self._settling = asyncio.ensure_future(self._settle_owed())
            self._settling.add_done_callback(mark_seen)

    async def _settle_owed(self) -> None:
        try:
            while self._owed:
                reply = await self._read_reply()
                handler, _on_error = self._owed.popleft()
                handler(reply)
        except BaseException as exc:
            owed, self._owed = list(self._owed), deque()
            for _handler, on_error in owed:
                if on_error is not None:
                    on_error(exc)
            raise

    @property
    def owed_count(self) -> int:
        """How many owed replies have not been read yet."""
        return len(self._owed)

    @property
    def owes(self) -> bool:
        return bool(self._owed) or (self._settling is not None and not self._settling.done())

    async def settle(self) -> None:
        """Wait until every owed reply was read and handled; raise what broke that."""
        task = self._settling
        if task is None:
            return
        if task.done():
            task.result()  # raises what broke it, as awaiting it would
            self._settling = None  # settled: the next reply needs no check
            return
        # Shielded: a caller giving up must not cut the read in the middle (the session
        # is marked broken by its guard in that case anyway).
        await asyncio.shield(task)

    async def reply(self) -> Reply:
        """Read one complete (possibly multi-line) reply, after any owed ones."""
        if self._settling is not None:
            await self.settle()
        return await self._read_reply()

    async def parse_response(self) -> tuple[Code, list[str]]:
        """One reply, all its lines: aioftp's parser, bounded in lines, bytes and time
        (``MAX_REPLY_LINES``, ``MAX_REPLY_BYTES``, ``timeout`` for the whole reply)."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        code, rest = _split_line(await self._line(deadline))
        info = [rest]
        size = len(rest)
        current = code
        while rest.startswith("-") or not current.isdigit():
            current, rest = _split_line(await self._line(deadline))
            if not current.isdigit():
                glued = _glued_end(current + rest, code)
                if glued is not None:
                    info += glued
                    break
            info.append(rest if current.isdigit() else current + rest)
            size += len(current) + len(rest)
            if len(info) > MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                raise ProtocolError(
                    f"reply {code} longer than {MAX_REPLY_LINES} lines or "
                    f"{MAX_REPLY_BYTES} bytes: the server is broken or hostile")
            if current.isdigit() and current != code:
                raise ProtocolError(f"malformed multi-line reply {info[:3]!r:.200}")
        return code, info

    async def _read_reply(self) -> Reply:
        try:
            code, info = await self.parse_response()
        except aioftp.StatusCodeError as exc:
            raise ProtocolError(f"malformed multi-line reply {exc.info!r:.200}") from exc
        if not code.isdigit():
            raise ProtocolError(f"not an FTP reply: {code + ''.join(info[:1])!r:.200}")
        return Reply(int(code), tuple(info))

    async def cmd(self, line: str) -> Reply:
        await self.send(line)
        return await self.reply()

    async def final_reply(self) -> Reply:
        """The next reply that is not preliminary (1xx)."""
        reply = await self.reply()
        while reply.is_preliminary():
            reply = await self.reply()
        return reply

    # -- data connections ---------------------------------------------------------------

    async def passive(self, *, before: tuple[str, ...] = ()) -> tuple[Reply | None, int | None]:
        """Ask for a passive data port: (None, port) on success, (refusal, None) if not.
        EPSV first; after the server refused it once, PASV only. ``before``: commands
        sent in the same write as the first EPSV (a server that keeps order only; their
        replies are read and dropped, as ``passive_then`` does)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.passive_mode != "PASV":
            if before:
                await self.send_many([*before, "EPSV"])
                for _line in before:
                    await self.reply()
                reply = await self.reply()
            else:
                reply = await self.cmd("EPSV")
                self.rtt = min(self.rtt, loop.time() - started)
            if reply.code == 229:
                self.passive_mode = "EPSV"
                return None, self._port_of(reply)
            if not 500 <= reply.code < 600:
                return reply, None
        for line in before if self.passive_mode == "PASV" else ():
            await self.cmd(line)  # not sent above: PASV was known (callers pipeline then)
        reply = await self.cmd("PASV")
        if reply.code != 227:
            return reply, None
        self.passive_mode = "PASV"
        return None, self._port_of(reply)

    async def passive_then(
        self, command: str, *, before: tuple[str, ...] = ()
    ) -> tuple[Reply | None, int | None]:
        """EPSV/PASV (whichever worked before) and ``command`` in one write: the transfer
        command rides along instead of waiting a round trip for the port. On a refusal
        the command's own reply (425/503) is read too, so replies stay in step.
        ``before``: commands sent first in the same write (their replies are read and
        dropped; a 421 among them surfaces with the next command's reply)."""
        assert self.passive_mode is not None
        mode = self.passive_mode
        await self.send_many([*before, mode, command])
        for _line in before:
            await self.reply()  # ``before`` commands: their outcome is not needed here
        reply = await self.reply()
        if reply.code == (229 if mode == "EPSV" else 227):
            return None, self._port_of(reply)
        await self.final_reply()
        return reply, None

    def passive_port(self, reply: Reply) -> int | None:
        """The port of an EPSV/PASV reply in the mode in use, or None if it is a refusal."""
        if reply.code == (229 if self.passive_mode == "EPSV" else 227):
            return self._port_of(reply)
        return None

    def _port_of(self, reply: Reply) -> int:
        if reply.code == 229:
            try:
                return self.parse_epsv_response(reply.last)[1]
            except (IndexError, ValueError) as exc:
                raise ProtocolError(f"unparsable EPSV reply {reply.text!r}") from exc
        m = _PASV_RE.search(reply.last)
        if not m:
            raise ProtocolError(f"unparsable PASV reply {reply.text!r}")
        self.pasv_advertised = ".".join(m.group(i) for i in range(1, 5))
        return int(m.group(5)) * 256 + int(m.group(6))

    async def open_data(self, port: int) -> tuple[DataStream, DataStream]:
        """Connect to a passive port on the control connection's peer address. The pair
        is one ``DataStream`` under its two names (reader, writer)."""
        assert self.peer_ip is not None
        stream = await open_data_stream(self.peer_ip, port, connect_timeout=self.timeout,
                                        write_high_water=DATA_BUFFER)
        return stream, stream

    async def start_data_tls(self, writer: DataStream) -> None:
        """Secure a data connection after the transfer command was accepted (plain: no-op
        by design, there is nothing to secure)."""
        return None


#: pure-ftpd (1.0.50) cuts a reply line at exactly this many bytes, its end of line
#: included: measured with paths of 4,032 and 4,047 bytes, the same cut.
_CUT_LINE = 4134
#: pure-ftpd's last line of an MLST reply, the only glued end seen (``_glued_end``).
_GLUED_TEXT = "End."


def _glued_end(line: str, code: str) -> list[str] | None:
    """A line of a multi-line reply that the server cut at its buffer's size, end of
    line included, so that the reply's last line was glued to it: [the cut line, the
    last line's text], or None. pure-ftpd does so with the MLST answer for a path of
    ~4,030 bytes (``... /r/.../FFF.tx250 End.``); the reply never ended, the next
    reply's code read as a malformed line, and a placed file was failed as "session
    lost" (session 36's adversarial pass). Only that exact shape: the cut line's
    ``_CUT_LINE`` bytes, then the reply's code and pure-ftpd's "End.". Looser rules were
    fooled by names: any 1,000-byte line with the code near its end ("Invoice 250
    EUR.pdf" on a long path), then any 4,000-byte line ending so (a file named
    "a 250 End." 3,960 bytes deep): the reply ended at the name and every later reply
    was read one late (the second and third passes). A line of exactly that length
    cannot come uncut from pure-ftpd (it would be cut there and glued)."""
    end = f"{code} {_GLUED_TEXT}"
    if not line.endswith(end):
        return None
    if len(line[:-len(end)].encode("utf-8", "surrogateescape")) != _CUT_LINE:
        return None
    return [line[:-len(end)], _GLUED_TEXT]


def _pieces(encoded: list[bytes], most: int | None) -> list[bytes]:
    """The commands joined into pieces of at most ``most`` bytes (a longer command
    alone), or into one where ``most`` is None."""
    if most is None:
        return [b"".join(encoded)]
    pieces: list[bytes] = []
    current = b""
    for line in encoded:
        if current and len(current) + len(line) > most:
            pieces.append(current)
            current = b""
        current += line
    if current:
        pieces.append(current)
    return pieces
