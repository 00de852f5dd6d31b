"""The style sheet and the script of the HTML report (``html_report.py``), inline in
every page: no external asset of any kind (no font, image or CDN).

The script reads the rows from the page's JSON island and draws ``PAGE`` of them at a
time; search, the category shown and the sort live in the URL's fragment. It only ever
sets ``textContent``, so no path can inject markup. ``render_html`` fills the
``/*PAGE*/``, ``/*ORDER*/`` and ``/*NAMES*/`` placeholders.
"""

from __future__ import annotations

STYLE = """
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

SCRIPT = r"""
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
