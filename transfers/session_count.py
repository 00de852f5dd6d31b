"""How many sessions a side opens when the user did not choose (``--src-connections`` /
``--dst-connections``): a policy of the pool, from facts the store reports.

A store only measures (``Capabilities.round_trip``, ``tls_per_transfer``); it never
decides how many of its sessions are worth opening. Today only FTP measures a round
trip (at login), and the figures below were measured on FTP, one operation per session:
a store that reports no round trip keeps the per-scheme default.
"""

from __future__ import annotations

from .backend import Capabilities

#: A login round trip under this means a LAN.
LAN_ROUND_TRIP = 0.005
#: Sessions worth opening on a LAN: a file costs CPU there, not waiting, and more sessions
#: only add overhead (measured: 16 sessions moved small files 15 % faster than 32 at
#: RTT 0).
LAN_SESSIONS = 16
#: Over a WAN each file waits several round trips and only more files in flight hide them
#: (Little's law; 64 sessions: +33 % at 60 ms, what rclone's --ftp-concurrency allows).
WAN_SESSIONS = 64
#: FTPS over a WAN: each data connection is a TLS handshake, so fewer.
WAN_TLS_SESSIONS = 32


def sessions_worth_opening(caps: Capabilities) -> int | None:
    """The cap for a side from its store's facts; None: no fact to go by (keep the
    default)."""
    if caps.round_trip is None:
        return None
    if caps.round_trip < LAN_ROUND_TRIP:
        return LAN_SESSIONS
    return WAN_TLS_SESSIONS if caps.tls_per_transfer else WAN_SESSIONS
