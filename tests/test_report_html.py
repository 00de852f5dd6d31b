"""The HTML verification report, opened in a real browser (Debian's headless Chromium).

The report is rendered from ``Verification`` values built here (plain frozen values; the
verifier that produces them from real stores is tested in ``test_verify.py``). Chromium
loads the file, runs its script, and ``--dump-dom`` gives back the DOM as the user would
see it; the fragment (``#q=...&sort=...``) drives search and sort the way a click would.
A screenshot is kept in ``tests/output/`` for people to look at.
"""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fsmove.transfers.backend import EntryKind
from fsmove.verify.digest import ALGORITHM, digest_bytes
from fsmove.verify.html_report import PAGE, render_html, write_html
from fsmove.verify.verifier import (
    Category,
    How,
    PathResult,
    Side,
    SkippedPath,
    Tier,
    Totals,
    Verification,
)

OUTPUT = Path(__file__).parent / "output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

HOSTILE = "weird/<img src=x onerror=alert(1)> & \"quoted\" 'é' ü &amp; ☃.txt"

D1, D2 = digest_bytes(b"source bytes"), digest_bytes(b"source bytez")

PROBLEMS = (
    PathResult(
        path="docs/corrupt.bin",
        kind=EntryKind.FILE,
        category=Category.DIFFERS,
        src_size=10240,
        dst_size=10240,
        src_digest=D1,
        dst_digest=D2,
        reason="content differs: the digests do not match",
        how_src=How.READ,
        how_dst=How.READ,
    ),
    PathResult(
        path="docs/truncated.txt",
        kind=EntryKind.FILE,
        category=Category.DIFFERS,
        src_size=1500,
        dst_size=1000,
        reason="size differs: 1500 bytes in the source, 1000 in the destination",
        how_src=How.LISTING,
        how_dst=How.LISTING,
    ),
    PathResult(
        path="deleted.dat",
        kind=EntryKind.FILE,
        category=Category.ONLY_SRC,
        src_size=36,
        reason="missing from the destination",
        how_src=How.LISTING,
    ),
    PathResult(
        path="secret/locked.txt",
        kind=EntryKind.FILE,
        category=Category.UNREADABLE,
        src_size=20,
        dst_size=20,
        dst_digest=D1,
        reason="source: secret/locked.txt: permission denied",
        how_src=How.READ,
        how_dst=How.READ,
    ),
    PathResult(
        path="extra.txt",
        kind=EntryKind.FILE,
        category=Category.ONLY_DST,
        dst_size=9,
        reason="not in the source",
        how_dst=How.LISTING,
    ),
    PathResult(
        path=HOSTILE,
        kind=EntryKind.FILE,
        category=Category.ONLY_DST,
        dst_size=3,
        reason="not in the source",
        how_dst=How.LISTING,
    ),
)


def make_verification(results: tuple[PathResult, ...], *, identical: int = 1200) -> Verification:
    counts = {c: sum(r.category is c for r in results) for c in Category}
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return Verification(
        src_display="ftp://alice@bucket.example:2121/data",
        dst_display="sftp://bob@127.0.0.1:2222/srv/bucket",
        tier=Tier.SAMPLE,
        sample_pct=10.0,
        seed=424242,
        algorithm=ALGORITHM,
        started=start,
        finished=start + timedelta(seconds=83.5),
        listing_seconds=4.25,
        results=results,
        skipped=(SkippedPath(side=Side.SOURCE, path="current", reason="symlink: not compared"),),
        totals=Totals(
            identical=identical,
            only_src=counts[Category.ONLY_SRC],
            only_dst=counts[Category.ONLY_DST],
            differs=counts[Category.DIFFERS],
            unreadable=counts[Category.UNREADABLE],
            files=identical + len(results),
            dirs=0,
            content_compared=130,
            size_only=1072,
            files_read_src=129,
            files_read_dst=131,
            bytes_read_src=5_000_000,
            bytes_read_dst=5_000_010,
            skipped=1,
        ),
    )


# ---------------------------------------------------------------------------------------
# Chromium and the dumped DOM.
# ---------------------------------------------------------------------------------------


def chromium(tmp_path: Path, url: str, *extra: str) -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("chromium is missing: apt-get install -y chromium")
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        *extra,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(html.parser.HTMLParser):
    """The rows of the problems table and a few attributes, from Chromium's DOM dump."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.attrs_of: dict[str, dict[str, str | None]] = {}
        self._in_tbody = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.attrs_of[str(a["id"])] = a
        if tag == "html":
            self.attrs_of["html"] = a
        if tag == "tbody" and a.get("id") == "fsmove-tbody":
            self._in_tbody = True
        elif self._in_tbody and tag == "tr":
            self.rows.append([])
        elif self._in_tbody and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def dump(tmp_path: Path, page: Path, fragment: str = "") -> Dom:
    dom = Dom()
    dom.feed(chromium(tmp_path, page.as_uri() + fragment, "--dump-dom"))
    return dom


# ---------------------------------------------------------------------------------------
# Tests.
# ---------------------------------------------------------------------------------------


def test_problems_are_shown_in_chromium(tmp_path: Path) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page = OUTPUT / "verify-report.html"
    write_html(make_verification(PROBLEMS), page)

    dom = dump(tmp_path, page)
    assert dom.attrs_of["html"]["data-rendered"] == str(len(PROBLEMS))  # the script ran
    shown = {row[1]: row for row in dom.rows}
    assert set(shown) == {r.path for r in PROBLEMS}  # exact text, markup and all
    assert [row[0] for row in dom.rows] == ["*", "*", "+", "!", "-", "-"]  # worst first
    assert shown["docs/corrupt.bin"][4].startswith(D1[:12])
    assert shown["docs/truncated.txt"][2:4] == ["1.5 KiB", "1000 B"]
    assert shown["secret/locked.txt"][6] == "source: secret/locked.txt: permission denied"
    assert "onerror" not in str(dom.attrs_of)  # the hostile name stayed text

    shot = OUTPUT / "verify-report.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, page.as_uri(), f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_search_sort_and_category_filter(tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    write_html(make_verification(PROBLEMS), page)

    only_hostile = dump(tmp_path, page, "#q=" + "%3Cimg")
    assert [row[1] for row in only_hostile.rows] == [HOSTILE]

    by_digest = dump(tmp_path, page, "#q=" + D2[:10])
    assert [row[1] for row in by_digest.rows] == ["docs/corrupt.bin"]

    by_path = dump(tmp_path, page, "#sort=path")
    paths = [row[1] for row in by_path.rows]
    assert paths == sorted(paths)
    assert by_path.attrs_of["html"]["data-rendered"] == "6"

    by_size_desc = dump(tmp_path, page, "#sort=-src_size")
    assert [row[1] for row in by_size_desc.rows][:2] == ["docs/corrupt.bin", "docs/truncated.txt"]

    unreadable = dump(tmp_path, page, "#only=!")
    assert [row[1] for row in unreadable.rows] == ["secret/locked.txt"]


def test_self_contained_and_escaped() -> None:
    page = render_html(make_verification(PROBLEMS))
    assert not re.search(r"<link|<img|<iframe|@import|url\(|https?://", page, re.I)
    assert "src=" not in page.replace("src=x onerror", "")  # no external script
    assert "<img src=x" not in page  # escaped in the noscript rows, \u003c in the data
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;" in page
    assert "bob@127.0.0.1" in page and "seed" in page.lower() and "424242" in page
    assert page.index('id="verdict"') < page.index('id="summary"') < page.index('id="problems"')


def test_match_verdict(tmp_path: Path) -> None:
    page = tmp_path / "ok.html"
    write_html(make_verification(()), page)
    text = page.read_text(encoding="utf-8")
    assert 'data-verdict="match"' in text and "Everything matched." in text
    dom = dump(tmp_path, page)
    assert dom.rows == [] and dom.attrs_of["html"]["data-rendered"] == "0"


def test_100k_problems_still_open(tmp_path: Path) -> None:
    many = tuple(
        PathResult(
            path=f"photos/{i // 1000:03d}/IMG_{i:06d}.jpg",
            kind=EntryKind.FILE,
            category=Category.ONLY_SRC,
            src_size=200_000 + i,
            reason="missing from the destination",
            how_src=How.LISTING,
        )
        for i in range(100_000)
    )
    page = tmp_path / "big.html"
    write_html(make_verification(many, identical=0), page)
    size_mb = page.stat().st_size / 1e6
    assert size_mb < 20, size_mb
    # (How fast it renders and opens is not asserted against a clock: a loaded machine
    # would make that a coin toss; the page drawing one page of rows is what keeps it
    # fast, and that is asserted below.)
    dom = dump(tmp_path, page, "#sort=-src_size")  # sorting sees every row, not one page
    assert dom.attrs_of["html"]["data-rendered"] == "100000"
    assert len(dom.rows) == PAGE  # one page drawn, the rest behind "show more"
    assert dom.rows[0][1] == "photos/099/IMG_099999.jpg"
    assert "hidden" not in dom.attrs_of["more"]
