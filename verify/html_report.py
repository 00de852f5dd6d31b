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

from fsmove.transfers.backend import EntryKind

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

_CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--muted:#57606a;--line:#d0d7de;
--bg:#f6f8fa;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
body{margin:0;color:#1f2328;background:#fff}
main{max-width:1400px;margin:0 auto;padding:0 24px 48px}
.verdict{padding:18px 24px;color:#fff}
.verdict h1{margin:0;font-size:26px}
.verdict p{margin:6px 0 0;font-size:15px;opacity:.95;word-break:break-all}
.v-match{background:var(--ok)}.v-mismatch{background:var(--bad)}
.v-unreadable{background:var(--warn)}
h2{font-size:19px;margin:28px 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:18px 0 6px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:130px;
cursor:pointer;background:#fff;font:inherit;text-align:left}
.card[aria-pressed=true]{outline:3px solid #0969da}
.card b{display:block;font-size:24px}
.card>span{color:var(--muted);font-size:13px}
.card .cat{font-size:18px;vertical-align:3px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:14px 0;
font-size:14px}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;word-break:break-all}
.controls{display:flex;gap:12px;align-items:center;margin:8px 0 10px;flex-wrap:wrap}
#q{font-size:15px;padding:6px 10px;width:min(520px,90vw);border:1px solid var(--line);
border-radius:6px}
#shown{color:var(--muted);font-size:14px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;
vertical-align:top}
th{background:var(--bg);position:sticky;top:0;cursor:pointer;user-select:none;
white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
td.path{word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
td.num{text-align:right;white-space:nowrap}
td.dig{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;color:var(--muted);
white-space:nowrap}
.cat{display:inline-block;min-width:1.6em;text-align:center;border-radius:4px;
font-weight:700;color:#fff;padding:1px 4px}
.c-d{background:var(--bad)}.c-p{background:#bc4c00}.c-u{background:var(--warn)}
.c-m{background:#8250df}.c-i{background:var(--ok)}
tr.c-row-d td{background:#fff5f5}
.legend{font-size:13px;color:var(--muted);margin:4px 0}
.legend .cat{margin-right:4px}
button.more{margin:12px 0;font:inherit;padding:6px 14px}
.none{color:var(--muted);font-style:italic}
"""

_JS = r"""
(function(){
"use strict";
var PAGE = /*PAGE*/0;
var ORDER = /*ORDER*/[];
var CLS = {"*":"c-d","+":"c-p","!":"c-u","-":"c-m","=":"c-i"};
var NAMES = /*NAMES*/{};
var rows = JSON.parse(document.getElementById("fsmove-rows").textContent);
rows.forEach(function(r, i){
  r.rank = ORDER.indexOf(r[0]);
  r.hay = (r[1] + "\u0000" + r[9] + "\u0000" + (r[5]||"") + "\u0000" + (r[6]||"")).toLowerCase();
  r.i = i;
});
var KEYS = {cat:function(r){return r.rank;}, path:function(r){return r[1];},
  src_size:function(r){return r[3];}, dst_size:function(r){return r[4];},
  src_digest:function(r){return r[5];}, dst_digest:function(r){return r[6];},
  reason:function(r){return r[9];}};
var tbody = document.getElementById("fsmove-tbody");
var q = document.getElementById("q");
var shown = document.getElementById("shown");
var more = document.getElementById("more");
var sortKey = null, sortDir = 1, limit = PAGE, only = null, view = rows;
function size(n){
  if (n === null) return "\u2014";
  if (n < 1024) return n + " B";
  var u = ["KiB","MiB","GiB","TiB"], x = n / 1024, k = 0;
  while (x >= 1024 && k < u.length - 1) { x /= 1024; k++; }
  return x.toFixed(1) + " " + u[k];
}
function td(text, cls, title){
  var c = document.createElement("td");
  if (cls) c.className = cls;
  c.textContent = text;
  if (title) c.title = title;
  return c;
}
function compute(){
  var needle = q.value.trim().toLowerCase();
  view = rows.filter(function(r){
    return (only === null || r[0] === only) && (!needle || r.hay.indexOf(needle) >= 0);
  });
  if (sortKey) {
    var f = KEYS[sortKey];
    view.sort(function(a, b){
      var x = f(a), y = f(b);
      if (x === y) return a.i - b.i;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * sortDir;
    });
  }
}
function draw(){
  var frag = document.createDocumentFragment();
  var n = Math.min(limit, view.length);
  for (var i = 0; i < n; i++) {
    var r = view[i], tr = document.createElement("tr");
    tr.className = "c-row-" + CLS[r[0]].slice(2);
    var c0 = document.createElement("td"), b = document.createElement("span");
    b.className = "cat " + CLS[r[0]];
    b.textContent = r[0];
    b.title = NAMES[r[0]];
    c0.appendChild(b);
    tr.appendChild(c0);
    tr.appendChild(td((r[1] === "" ? "." : r[1]) + (r[2] === "dir" ? "/" : ""), "path", r[2]));
    tr.appendChild(td(size(r[3]), "num", r[3] === null ? "" : r[3] + " bytes"));
    tr.appendChild(td(size(r[4]), "num", r[4] === null ? "" : r[4] + " bytes"));
    tr.appendChild(td(r[5] ? r[5].slice(0, 12) + "\u2026" : "\u2014", "dig",
      r[5] ? r[5] + " (" + r[7] + ")" : (r[7] || "")));
    tr.appendChild(td(r[6] ? r[6].slice(0, 12) + "\u2026" : "\u2014", "dig",
      r[6] ? r[6] + " (" + r[8] + ")" : (r[8] || "")));
    tr.appendChild(td(r[9], "reason"));
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
  shown.textContent = "showing " + n + " of " + view.length +
    (view.length === rows.length ? "" : " (filtered from " + rows.length + ")");
  more.hidden = n >= view.length;
  more.textContent = "Show " + Math.min(PAGE, view.length - n) + " more";
}
function remember(){
  var parts = [];
  if (q.value) parts.push("q=" + encodeURIComponent(q.value));
  if (only !== null) parts.push("only=" + encodeURIComponent(only));
  if (sortKey) parts.push("sort=" + (sortDir < 0 ? "-" : "") + sortKey);
  try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : " "); }
  catch (e) { /* file:// in some browsers */ }
}
function refresh(){ limit = PAGE; compute(); draw(); remember(); }
function marks(){
  document.querySelectorAll("th[data-k]").forEach(function(o){
    if (o.getAttribute("data-k") === sortKey)
      o.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
    else o.removeAttribute("aria-sort");
  });
  document.querySelectorAll("button.card[data-cat]").forEach(function(o){
    o.setAttribute("aria-pressed", String(o.getAttribute("data-cat") === only));
  });
}
(location.hash || "").replace(/^#/, "").split("&").forEach(function(kv){
  var i = kv.indexOf("="), k = kv.slice(0, i), v = "";
  if (i < 0) return;
  try { v = decodeURIComponent(kv.slice(i + 1)); } catch (e) { return; }
  if (k === "q") q.value = v;
  if (k === "only" && ORDER.indexOf(v) >= 0) only = v;
  if (k === "sort") {
    sortDir = v.charAt(0) === "-" ? -1 : 1;
    v = v.replace(/^-/, "");
    if (KEYS[v]) sortKey = v;
  }
});
q.addEventListener("input", refresh);
more.addEventListener("click", function(){ limit += PAGE; draw(); });
document.querySelectorAll("th[data-k]").forEach(function(th){
  th.tabIndex = 0;
  function go(){
    var k = th.getAttribute("data-k");
    sortDir = (sortKey === k) ? -sortDir : 1;
    sortKey = k;
    marks();
    refresh();
  }
  th.addEventListener("click", go);
  th.addEventListener("keydown", function(e){ if (e.key === "Enter") go(); });
});
document.querySelectorAll("button.card[data-cat]").forEach(function(btn){
  btn.addEventListener("click", function(){
    var c = btn.getAttribute("data-cat");
    only = (only === c) ? null : c;
    marks();
    refresh();
  });
});
marks();
limit = PAGE; compute(); draw();
document.documentElement.setAttribute("data-rendered", String(rows.length));
})();
"""

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
        j["path"],
        j["kind"],
        j["src_size"],
        j["dst_size"],
        j["src_digest"],
        j["dst_digest"],
        j["how_src"],
        j["how_dst"],
        j["reason"],
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
            f"<tr><td>{_e(r.category.value)}</td><td>{_e(display_path(r.path))}{slash}</td>"
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
        f"<li>{_e(s.side.value)}: <code>{_e(s.path)}</code> ({_e(s.reason)})</li>"
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
        _JS.replace("/*PAGE*/0", str(PAGE))
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
<style>{_CSS}</style>
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
