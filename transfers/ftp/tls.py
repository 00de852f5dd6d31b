"""Explicit FTPS (``AUTH TLS``), done the way vsftpd and proftpd require it.

aioftp's own TLS mode opens each data connection *with* TLS, handshaking before the
transfer command is sent, and with a fresh TLS session. vsftpd and proftpd wait for the
command first and, by default, demand that the data connection resume the control
connection's TLS session: aioftp hangs. Here the data connection is opened plain, the
command (RETR/STOR/LIST...) is sent and accepted (1xx), and only then is the data socket
upgraded with ``start_tls``, resuming the control connection's session (as ftplib does
when ``ntransfercmd`` passes ``session=``).
"""

from __future__ import annotations

import ssl

from aioftp.common import SSLSessionBoundContext

from ..backend import AuthError, ConnectError
from .client import FtpClient, Reply
from .data import DataStream


class TlsSetupError(ConnectError):
    """TLS cannot be set up: an untrusted certificate, or a server without AUTH TLS. A
    configuration problem, so it is not retried."""

    retryable = False


class UntrustedCertificateError(TlsSetupError, AuthError):
    """The server's certificate does not verify: trust configuration, like an unknown SSH
    host key (an AuthError: exit 5), never retried."""


def make_ssl_context(*, cafile: str | None, insecure: bool) -> ssl.SSLContext:
    """The TLS context for FTPS.

    Default: verify the server's certificate and host name against the system CA store.
    ``cafile``: trust exactly the CAs in that PEM file instead (a private CA or a
    self-signed server certificate). ``insecure=True`` turns verification off; the CLI
    must only pass it on an explicit flag.
    """
    if insecure:
        if cafile is not None:
            raise ValueError("give either a CA file or insecure=True, not both")
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)


class FtpsClient(FtpClient):
    """An FTP client that secures the control connection and every data connection."""

    #: proftpd (1.3.8, mod_tls) reads its control connection 4 KiB at a time and then
    #: waits for the socket: the rest of a TLS record it already decrypted was never
    #: read, and a placing batch of long paths (~740-byte paths, six commands) waited
    #: for its replies until the timeout, every retry (session 35's adversarial pass).
    #: Records of at most 4,000 bytes are read whole.
    write_piece_max = 4000

    def __init__(self, *, timeout: float, ssl_context: ssl.SSLContext) -> None:
        super().__init__(timeout=timeout)
        self.ssl_context = ssl_context

    async def secure_control(self, server_hostname: str) -> Reply:
        """Send AUTH TLS and handshake; returns the AUTH reply when the server refused it
        (the caller turns it into an error), else the 234 reply."""
        reply = await self.cmd("AUTH TLS")
        if reply.code != 234:
            return reply
        await self.stream.start_tls(sslcontext=self.ssl_context, server_hostname=server_hostname)
        return reply

    async def start_data_tls(self, writer: DataStream) -> None:
        """Upgrade an accepted data connection, resuming the control TLS session."""
        control = self.stream.writer.transport.get_extra_info("ssl_object")
        if control is None:
            raise ssl.SSLError("the control connection is not secured")
        bound = SSLSessionBoundContext(
            ssl.PROTOCOL_TLS_CLIENT, context=control.context, session=control.session
        )
        await writer.start_tls(
            bound, server_hostname=self.server_host, ssl_handshake_timeout=self.timeout
        )
