"""Text for a terminal or a log: what a tree's names may hold made visible, not obeyed.

A file name can hold any character but "/" and NUL: an escape sequence (ESC ``[2J``
clears a screen, OSC sets a terminal's title or worse), a bell, a carriage return that
overwrites the line before it, a right-to-left override that shows ``gpj.exe`` as
``exe.jpg``. fsmove prints names from servers it does not control, so every line meant
for people (stderr, stdout's reports, ``--log-file``, the live display) shows such
characters as Python escapes (``\\x1b``, ``\\t``, ``\\u202e``); the line breaks of a
multi-line message are kept. JSON output is escaped by ``json.dumps`` already and keeps
the names exactly.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on or hide shown escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        # A byte of a name that is not UTF-8 (surrogateescape): shown as the byte it
        # is, ``lat\xe9``, not as a code point that does not exist there.
        return f"\\x{code - 0xDC00:02x}"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
