"""LIST / MLSD line parsing and FTP time values (no network)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsmove.transfers.backend import Entry, EntryKind
from fsmove.transfers.ftp.listing import (
    MAX_LINE,
    LineSplitter,
    ListingLineError,
    format_timeval,
    parse_list_line,
    parse_mlsx_line,
    parse_timeval,
)

# -- unix ls -l ---------------------------------------------------------------------------


def test_vsftpd_line_with_time() -> None:
    line = b"-rw-r--r--    1 1002     0             100 Nov 25 18:25 f100"
    assert parse_list_line(line) == Entry(path="f100", kind=EntryKind.FILE, size=100)


def test_line_with_year_keeps_the_name_after_one_space() -> None:
    line = b"-rw-r--r--    1 ftp      ftp        123456 Jan  3  2019 old report.pdf"
    got = parse_list_line(line)
    assert got == Entry(path="old report.pdf", kind=EntryKind.FILE, size=123456)


def test_name_with_leading_and_inner_spaces() -> None:
    got = parse_list_line(b"-rw-r--r--  1 u g 5 Mar  1 09:07   two  spaces ")
    assert got is not None and got.name == "  two  spaces "


def test_name_that_looks_like_a_time() -> None:
    got = parse_list_line(b"-rw-r--r-- 1 1000 1000 7 Feb 29 2020 12:30 lunch")
    assert got is not None and (got.name, got.size) == ("12:30 lunch", 7)


def test_directory_and_symlink() -> None:
    d = parse_list_line(b"drwxr-xr-x    2 1002     0            4096 Nov 25 18:25 sub dir")
    assert d == Entry(path="sub dir", kind=EntryKind.DIR)
    link = parse_list_line(b"lrwxrwxrwx    1 1002     0   4 Nov 25 18:25 my link -> f100")
    # The target is cut off the name (fsmove never follows a link, nor keeps its target).
    assert link == Entry(path="my link", kind=EntryKind.LINK)


def test_devices_and_odd_types_are_other() -> None:
    dev = parse_list_line(b"crw-rw-rw-   1 root  root  1,   3 Apr  1  2020 null")
    assert dev == Entry(path="null", kind=EntryKind.OTHER)
    fifo = parse_list_line(b"prw-r--r--   1 u g 0 Apr  1 10:00 pipe")
    assert fifo is not None and fifo.kind is EntryKind.OTHER


def test_no_group_column_and_acl_marker() -> None:
    got = parse_list_line(b"-rw-r--r--+ 1 owner 2048 Dec 31 23:59 acl.txt")
    assert got == Entry(path="acl.txt", kind=EntryKind.FILE, size=2048)


def test_numeric_owner_and_group() -> None:
    got = parse_list_line(b"-rw-r--r-- 1 1000 1000 0 Jul  4 12:00 empty")
    assert got == Entry(path="empty", kind=EntryKind.FILE, size=0)


def test_iso_dates() -> None:
    got = parse_list_line(b"-rw-r--r-- 1 u g 42 2021-06-01 08:09 iso name")
    assert got == Entry(path="iso name", kind=EntryKind.FILE, size=42)


def test_localised_month() -> None:
    got = parse_list_line("-rw-r--r-- 1 u g 9 Mär  5 10:00 März.txt".encode())
    assert got == Entry(path="März.txt", kind=EntryKind.FILE, size=9)


def test_utf8_and_undecodable_names() -> None:
    got = parse_list_line("-rw-r--r-- 1 u g 3 Jan  1 00:00 été 日本.txt".encode())
    assert got is not None and got.name == "été 日本.txt"
    raw = b"-rw-r--r-- 1 u g 3 Jan  1 00:00 caf\xe9.txt"  # latin-1, not UTF-8
    got = parse_list_line(raw)
    assert got is not None
    assert got.name.encode("utf-8", "surrogateescape") == b"caf\xe9.txt"


def test_list_entries_have_no_mtime() -> None:
    got = parse_list_line(b"-rw-r--r-- 1 u g 3 Jan  1 00:00 x")
    assert got is not None and got.mtime is None


# -- DOS / IIS ----------------------------------------------------------------------------


def test_dos_lines() -> None:
    assert parse_list_line(b"01-02-20  03:04PM       <DIR>          My Folder") == Entry(
        path="My Folder", kind=EntryKind.DIR
    )
    assert parse_list_line(b"12-31-2019  11:59AM             1234 report 2019.xlsx") == Entry(
        path="report 2019.xlsx", kind=EntryKind.FILE, size=1234
    )
    assert parse_list_line(b"07-04-21  09:15        1,234,567 big.bin") == Entry(
        path="big.bin", kind=EntryKind.FILE, size=1234567
    )


# -- noise and garbage --------------------------------------------------------------------


@pytest.mark.parametrize("line", [b"total 12", b"TOTAL 0", b"", b"   ", b"\r"])
def test_noise_lines_are_skipped(line: bytes) -> None:
    assert parse_list_line(line) is None


@pytest.mark.parametrize(
    "line",
    [b"hello world", b"-rw-r--r-- 1 u g notasize Jan 1 00:00 x", b"550 error", b"drwx"],
)
def test_garbage_lines_raise(line: bytes) -> None:
    with pytest.raises(ListingLineError):
        parse_list_line(line)


# -- MLSD ---------------------------------------------------------------------------------


def test_mlsd_lines() -> None:
    got = parse_mlsx_line(b"type=file;size=5;modify=20200913122640;UNIX.mode=0644; a b;c.txt")
    assert got == Entry(path="a b;c.txt", kind=EntryKind.FILE, size=5, mtime=1_600_000_000.0)
    assert parse_mlsx_line(b"type=cdir;modify=20200101000000; .") is None
    assert parse_mlsx_line(b"type=pdir;modify=20200101000000; ..") is None
    d = parse_mlsx_line(b"Type=dir;Modify=20200101000000;sizd=4096; sub")
    assert d is not None and (d.kind, d.size) == (EntryKind.DIR, 0)
    link = parse_mlsx_line(b"type=OS.unix=slink:/target;size=6; ln")
    assert link is not None and link.kind is EntryKind.LINK
    frac = parse_mlsx_line(b"type=file;size=1;modify=20200913122640.250; f")
    assert frac is not None and frac.mtime == 1_600_000_000.25


def test_mlsd_garbage_raises() -> None:
    with pytest.raises(ListingLineError):
        parse_mlsx_line(b"no facts here")


# -- time values --------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_timeval_round_trip(seconds: int) -> None:
    assert parse_timeval(format_timeval(seconds)) == seconds


def test_timeval_is_utc() -> None:
    assert parse_timeval("19700101000000") == 0
    assert format_timeval(1_000_000_000) == time.strftime(
        "%Y%m%d%H%M%S", time.gmtime(1_000_000_000)
    )
    with pytest.raises(ValueError):
        parse_timeval("2020-01-01")


# -- properties: any name survives the unix and MLSD formats -------------------------------

_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=60,
).filter(lambda n: n not in (".", "..") and " -> " not in n and n.strip() != "")


@given(
    name=_names,
    size=st.integers(min_value=0, max_value=2**63),
    recent=st.booleans(),
    day=st.integers(min_value=1, max_value=31),
)
def test_any_name_survives_a_unix_line(name: str, size: int, recent: bool, day: int) -> None:
    stamp = f"Jun {day:2d} 12:34" if recent else f"Jun {day:2d}  2019"
    line = f"-rw-r--r--    1 owner    group {size:>12} {stamp} {name}".encode()
    assert parse_list_line(line) == Entry(path=name, kind=EntryKind.FILE, size=size)


@given(name=_names, size=st.integers(min_value=0, max_value=2**63))
def test_any_name_survives_an_mlsd_line(name: str, size: int) -> None:
    line = f"type=file;size={size};modify=20200101000000; {name}".encode()
    got = parse_mlsx_line(line)
    assert got is not None and (got.name, got.size) == (name, size)


# -- streaming ----------------------------------------------------------------------------


@given(
    lines=st.lists(st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"")),
                   max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=17), min_size=1, max_size=10),
)
def test_splitter_gives_the_same_lines_however_chunked(
    lines: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(ln + b"\r\n" for ln in lines)
    splitter = LineSplitter()
    got: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        got += splitter.feed(data[pos : pos + step])
        pos += step
        i += 1
    got += splitter.finish()
    assert got == lines


def _fed(splitter: LineSplitter, data: bytes, cuts: list[int]) -> list[bytes]:
    got: list[bytes] = []
    pos = i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        got += splitter.feed(data[pos : pos + step])
        pos += step
        i += 1
    return got + splitter.finish()


@given(
    lines=st.lists(st.binary(min_size=0, max_size=40).filter(lambda b: b"\r\n" not in b),
                   min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=17), min_size=1, max_size=10),
)
def test_a_crlf_listing_keeps_bare_lf_and_cr_inside_lines(
    lines: list[bytes], cuts: list[int]
) -> None:
    """Lines ending in CR LF are cut there only: a name holding a LF or a CR (a file
    named "bad\\nname" on a vsftpd source) stays one line, even when the first chunk
    ends between that LF and the line's end (vsftpd, pure-ftpd, proftpd end lines so)."""
    data = b"".join(ln + b"\r\n" for ln in lines)
    assert _fed(LineSplitter(), data, cuts) == lines


@given(
    lines=st.lists(st.binary(min_size=0, max_size=40)
                   .filter(lambda b: b"\n" not in b and not b.endswith(b"\r")),
                   min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=17), min_size=1, max_size=10),
)
def test_a_listing_with_bare_lf_line_ends_is_cut_at_lf(lines: list[bytes],
                                                       cuts: list[int]) -> None:
    data = b"".join(ln + b"\n" for ln in lines)
    assert _fed(LineSplitter(), data, cuts) == lines


def test_a_name_with_a_lf_or_cr_is_one_entry() -> None:
    body = (b"-rw-r--r--    1 1001     1001            1 Sep 13  2020 bad\nname\r\n"
            b"-rw-r--r--    1 1001     1001            1 Sep 13  2020 x\r\r\n"
            b"-rw-r--r--    1 1001     1001            1 Sep 13  2020 ok\r\n")
    lines = _fed(LineSplitter(), body, [60])
    names = [e.name for e in map(parse_list_line, lines) if e is not None]
    assert names == ["bad\nname", "x\r", "ok"]
    mlsd = parse_mlsx_line(b"type=file;size=1;modify=20200101000000; a\nb\r")
    assert mlsd is not None and mlsd.name == "a\nb\r"


def test_splitter_handles_a_last_line_without_newline() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\r\nb") == [b"a"]
    assert splitter.finish() == [b"b"]


def test_splitter_refuses_an_endless_line() -> None:
    splitter = LineSplitter()
    with pytest.raises(ListingLineError):
        for _ in range(MAX_LINE // 4096 + 2):
            splitter.feed(b"x" * 4096)


def test_ten_thousand_lines_parse_fast() -> None:
    body = b"".join(
        b"-rw-r--r--    1 1002     0        %8d Nov 25 18:25 file %05d.bin\r\n" % (i, i)
        for i in range(10_000)
    )
    started = time.perf_counter()
    splitter = LineSplitter()
    names = []
    for pos in range(0, len(body), 65536):
        for line in splitter.feed(body[pos : pos + 65536]):
            listed = parse_list_line(line)
            assert listed is not None
            names.append(listed.name)
    assert splitter.finish() == []
    assert len(names) == 10_000 and names[-1] == "file 09999.bin"
    assert time.perf_counter() - started < 2.0
