"""``--list-all``: the JSON and HTML reports list every file with its digest (identical
ones included), the record of what was moved. The HTML report is opened in headless
Chromium: the verdict, and one table row per path; a screenshot is kept in
``tests/output/verify-list-all.png``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fsmove.verify.digest import ALGORITHM, digest_bytes
from tests.test_report_html import OUTPUT, chromium, dump

FILES = {
    "photos/2024/IMG_0001.jpg": b"\xff\xd8" + b"jpeg" * 3000,
    "photos/2024/IMG_0002.jpg": b"\xff\xd8" + b"JPEG" * 2000,
    "docs/Rapport annuel é.pdf": b"%PDF-1.7 " * 500,
    "empty.txt": b"",
}


def _fsmove(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsmove.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)


def test_list_all_reports_every_file_with_its_digest(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for rel, data in FILES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    copied = _fsmove("copy", str(src), str(dst), "--journal", str(tmp_path / "j.db"), "-q")
    assert copied.returncode == 0, copied.stderr

    OUTPUT.mkdir(exist_ok=True)
    page, doc = OUTPUT / "verify-list-all.html", tmp_path / "record.json"
    checked = _fsmove("verify", str(src), str(dst), "--list-all", "--no-journal",
                      "--report", str(page), "--report", str(doc))
    assert checked.returncode == 0, checked.stderr

    report = json.loads(doc.read_text())
    assert report["verdict"] == "match"
    files = {p["path"]: p for p in report["paths"] if p["kind"] == "file"}
    assert set(files) == set(FILES)
    for rel, data in FILES.items():
        assert files[rel]["category"] == "="
        assert files[rel]["src_digest"] == files[rel]["dst_digest"] == digest_bytes(data)
    assert report["algorithm"] == ALGORITHM

    dom = dump(tmp_path, page)
    assert dom.attrs_of["html"]["data-verdict"] == "match"
    assert dom.attrs_of["html"]["data-rendered"] == str(len(report["paths"]))
    rows = {row[1]: row for row in dom.rows}
    assert len(dom.rows) == len(report["paths"])  # one row per path, no more
    for rel, data in FILES.items():
        assert rows[rel][0] == "="
        assert rows[rel][4].startswith(digest_bytes(data)[:12])
    text = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert "Everything matched." in text and "Every path, problems first" in text

    shot = OUTPUT / "verify-list-all.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, page.as_uri(), f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_without_list_all_a_clean_report_lists_no_row(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.txt").write_bytes(b"alpha")
    assert _fsmove("copy", str(src), str(dst), "-q", "--journal",
                   str(tmp_path / "j.db")).returncode == 0
    doc = tmp_path / "r.json"
    assert _fsmove("verify", str(src), str(dst), "--report", str(doc)).returncode == 0
    assert json.loads(doc.read_text())["paths"] == []
