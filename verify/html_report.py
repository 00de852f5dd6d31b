"""The HTML rendering of a verification: one self-contained file a person can open.

Layout: the verdict first (words and colour), then the summary (totals per category
with the legend, tier, seed, algorithm, endpoints, timings, what was read), then the
problems in a table, worst first, with a search box and sortable columns, then the
symlinks and special files that were not compared.

No external asset of any kind: CSS and JavaScript are inline, no font, image or CDN.

Size: only the paths in ``Verification.results`` go in the table (every non-identical
path; identical ones only if the verifier kept them), identical paths are counted in the
summary. The rows travel as one JSON array inside ``<script type="application/json">``
(``<``, ``>`` and ``&`` escaped as ``\\u003c``..., so no path can close the script) and
the script draws ``PAGE`` rows at a time with a "show more" button, so a report with
100,000 problems still opens quickly; search and sort always work on every row. The
first ``NOSCRIPT_ROWS`` problems are also written as plain HTML inside ``<noscript>``
for readers without JavaScript. The search, the category shown (click a total) and the
sort live in the URL's fragment (``#q=text&only=*&sort=-src_size``), so a filtered view
can be bookmarked or shared. Every text is escaped, paths included (they may hold
``<``, ``&``, quotes or any UTF-8): the script only ever sets ``textContent``.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from fsmove.printable import printable
from fsmove.transfers.backend import EntryKind

from .html_assets import SCRIPT, STYLE
from .report import (
    display_path,
    human_size,
    path_to_json,
    tier_words,
    verdict_sentence,
    write_atomically,
)
from .results import SEVERITY_ORDER, Category, PathResult, Verification, verdict_for

PAGE = 1000
NOSCRIPT_ROWS = 200


_CAT_CLASS = {
    Category.DIFFERS: "c-d",
    Category.ONLY_SRC: "c-p",
    Category.UNREADABLE: "c-u",
    Category.ONLY_DST: "c-m",
    Category.IDENTICAL: "c-i",
}

_COLUMNS = (
    ("cat", "Category"),
    ("path", "Path"),
    ("src_size", "Source size"),
    ("dst_size", "Dest. size"),
    ("src_digest", "Source digest"),
    ("dst_digest", "Dest. digest"),
    ("reason", "Reason"),
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: no "<", ">" or "&" can end or confuse it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _row(r: PathResult) -> list[object]:
    j = path_to_json(r)
    return [
        j["category"],
        # Shown, not obeyed: a right-to-left override (U+202E) rendered "gpj.exe" as
        # "exe.jpg" (session 33); the JSON report keeps the exact name.
        printable(j["path"]),
        j["kind"],
        j["src_size"],
        j["dst_size"],
        j["src_digest"],
        j["dst_digest"],
        j["how_src"],
        j["how_dst"],
        printable(j["reason"]) if isinstance(j["reason"], str) else j["reason"],
    ]


def _facts(v: Verification) -> str:
    t = v.totals
    src_read = f"{t.files_read_src} files, {human_size(t.bytes_read_src)}"
    if t.src_from_journal:
        src_read += f"; {t.src_from_journal} digests taken from the copy journal"
    items = [
        ("Source", v.src_display),
        ("Destination", v.dst_display),
        ("Tier", tier_words(v)),
        ("Seed", "" if v.seed is None else str(v.seed)),
        ("Digest algorithm", v.algorithm),
        ("Compared", f"{t.files} files, {t.dirs} directories"),
        ("Content compared", f"{t.content_compared} files (size only: {t.size_only})"),
        ("Source read", src_read),
        ("Destination read", f"{t.files_read_dst} files, {human_size(t.bytes_read_dst)}"),
        ("Started", v.started.isoformat(timespec="seconds")),
        ("Finished", v.finished.isoformat(timespec="seconds")),
        ("Duration", f"{v.seconds:.1f} s (listing {v.listing_seconds:.1f} s)"),
    ]
    return "".join(f"<dt>{_e(k)}</dt><dd>{_e(val)}</dd>" for k, val in items if val != "")


def _cards(v: Verification) -> str:
    out = []
    for c in SEVERITY_ORDER:
        out.append(
            f'<button class="card" type="button" data-cat="{_e(c.value)}" aria-pressed="false"'
            f' title="show only these"><b><span class="cat {_CAT_CLASS[c]}">{_e(c.value)}</span>'
            f" {v.totals.count(c)}</b><span>{_e(c.label)}</span></button>"
        )
    return "".join(out)


def _noscript_rows(v: Verification) -> str:
    rows = []
    for r in v.problems[:NOSCRIPT_ROWS]:
        slash = "/" if r.kind is EntryKind.DIR else ""
        rows.append(
            f"<tr><td>{_e(r.category.value)}</td><td>{_e(printable(display_path(r.path)))}"
            f"{slash}</td>"
            f"<td>{_e(r.src_size if r.src_size is not None else '')}</td>"
            f"<td>{_e(r.dst_size if r.dst_size is not None else '')}</td>"
            f"<td>{_e(r.reason)}</td></tr>"
        )
    more = len(v.problems) - NOSCRIPT_ROWS
    tail = f"<p>... and {more} more (enable JavaScript or read the JSON report).</p>"
    return (
        "<noscript><table><tr><th>Category</th><th>Path</th><th>Source size</th>"
        f"<th>Dest. size</th><th>Reason</th></tr>{''.join(rows)}</table>"
        f"{tail if more > 0 else ''}</noscript>"
    )


def _skipped(v: Verification) -> str:
    if not v.skipped:
        return ""
    items = "".join(
        f"<li>{_e(s.side.value)}: <code>{_e(printable(s.path))}</code> "
        f"({_e(printable(s.reason))})</li>"
        for s in v.skipped[:NOSCRIPT_ROWS]
    )
    more = len(v.skipped) - NOSCRIPT_ROWS
    tail = f"<li>... and {more} more</li>" if more > 0 else ""
    return (
        f"<h2>Not compared ({len(v.skipped)})</h2>"
        "<p class=legend>Symlinks and special files are never copied by fsmove.</p>"
        f"<ul>{items}{tail}</ul>"
    )


def render_html(v: Verification) -> str:
    """The whole report as one HTML document (a str)."""
    verdict = verdict_for(v)
    legend = " ".join(
        f'<span class="cat {_CAT_CLASS[c]}">{_e(c.value)}</span>{_e(c.label)}'
        for c in SEVERITY_ORDER
    )
    header_cells = "".join(f'<th data-k="{k}" scope="col">{_e(t)}</th>' for k, t in _COLUMNS)
    problems = len(v.problems)
    listed = (
        f"{problems} paths need attention"
        if problems
        else "No problem: every compared path is identical."
    )
    # With --list-all the identical paths are rows too: the table is the record of
    # every file and its digest, problems still first.
    every = any(r.category is Category.IDENTICAL for r in v.results)
    heading = f"{'Every path, problems first' if every else 'Problems first'} — {listed}"
    rows = _script_json([_row(r) for r in v.results])
    js = (
        SCRIPT.replace("/*PAGE*/0", str(PAGE))
        .replace("/*ORDER*/[]", json.dumps([c.value for c in SEVERITY_ORDER]))
        .replace("/*NAMES*/{}", json.dumps({c.value: c.label for c in Category}))
    )
    return f"""<!DOCTYPE html>
<html lang="en" data-verdict="{_e(verdict)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="fsmove">
<title>fsmove verify: {_e(verdict)}: {_e(v.src_display)} → {_e(v.dst_display)}</title>
<style>{STYLE}</style>
</head>
<body>
<header class="verdict v-{_e(verdict)}" id="verdict">
<h1>{_e(verdict_sentence(v))}</h1>
<p>{_e(v.src_display)} → {_e(v.dst_display)}</p>
</header>
<main>
<section id="summary">
<div class="cards">{_cards(v)}</div>
<dl class="facts">{_facts(v)}</dl>
</section>
<section id="problems">
<h2>{_e(heading)}</h2>
<p class="legend">{legend}</p>
<div class="controls">
<input id="q" type="search" placeholder="Search paths, reasons, digests…"
 aria-label="Search paths, reasons and digests" autocomplete="off">
<span id="shown" aria-live="polite"></span>
</div>
<table id="fsmove-table">
<thead><tr>{header_cells}</tr></thead>
<tbody id="fsmove-tbody"></tbody>
</table>
<button class="more" id="more" type="button" hidden>Show more</button>
{_noscript_rows(v)}
</section>
{_skipped(v)}
</main>
<script type="application/json" id="fsmove-rows">{rows}</script>
<script>{js}</script>
</body>
</html>
"""


def write_html(v: Verification, path: str | os.PathLike[str]) -> None:
    """Write the HTML report to ``path`` (through a temporary file, then renamed)."""
    write_atomically(Path(path), render_html(v))
