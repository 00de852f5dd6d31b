"""FTP and FTPS (explicit ``AUTH TLS``): the store and its sessions.

Speed rules (FACTS.md): never let aioftp LIST a directory per file (its ``stat``,
``exists``, ``download`` and ``upload`` do, 31 files/s against vsftpd); single-file
commands only (``MLST``, or ``SIZE`` + ``MDTM`` pipelined in one round trip); data moves
in big blocks; ``TYPE I`` once per session.

Where each job lives:

- ``store.py``: ``FtpStore``: login, the capability probe once per store, spare sessions.
- ``session.py``: ``FtpSession``, the Session protocol whole, built in layers:
  ``control.py`` (the operation guard, health, raw commands) < ``transfer.py`` (data
  connections: passive mode, REST, ABOR, connections opened ahead) < ``folders.py``
  (stat, listings, folder checks before a write) < ``file_io.py`` (read and write a
  file's bytes) < ``session.py`` (mkdir, rename, place, remove, set mtime).
- ``client.py``: the control connection on aioftp's client (replies, pipelining,
  EPSV/PASV); ``tls.py``: explicit FTPS; ``data.py``: data connections that receive
  straight into piece buffers.
- ``listing.py``: parsing ``LIST`` lines, ``MLSD`` facts and time stamps (no network).
- ``probe.py``: FEAT and the live probe of the write semantics.
- ``errors.py``: FTP replies and network failures to the backend error taxonomy.
"""

from .session import FtpSession
from .store import FtpStore
from .tls import TlsSetupError, make_ssl_context

__all__ = ["FtpSession", "FtpStore", "TlsSetupError", "make_ssl_context"]
