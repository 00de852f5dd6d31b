"""The JSON and terminal renderings of a verification (the HTML one is ``html_report``).

JSON schema ``fsmove.verify/1`` (one object, UTF-8, keys always present):

* ``schema``: ``"fsmove.verify/1"``; ``tool``: ``{"name": "fsmove", "version"}``
* ``verdict``: ``"match"`` | ``"mismatch"`` | ``"unreadable"``; ``exit_code``: 0 | 4 | 3
* ``source``, ``destination``: endpoints as displayed (never a password)
* ``tier``: ``"quick"`` | ``"full"`` | ``"sample"``; ``sample_pct``, ``seed``: numbers or
  null (set with the sample tier); ``algorithm``: the digest algorithm's name
* ``started``, ``finished``: ISO 8601 UTC; ``timings``: ``{"total_s", "listing_s"}``
* ``totals``: counts per category (``identical``, ``only_in_source``,
  ``only_in_destination``, ``differs``, ``unreadable``), ``files``, ``dirs``,
  ``content_compared``, ``size_only``, ``skipped``, and ``read``: per side
  ``{"files", "bytes"}`` plus ``source.from_journal``
* ``legend``: category symbol → words
* ``paths``: every non-identical path (every path when the verification kept the
  identical ones), problems first: ``{"path", "kind", "category", "category_name",
  "src_size", "dst_size", "src_digest", "dst_digest", "how_src", "how_dst",
  "reason"}``; sizes in bytes, absent values null, ``how_*`` one of ``"listing"``,
  ``"read"``, ``"journal"`` or null when the path is absent on that side
* ``skipped``: symlinks and special files, not compared: ``{"side", "path", "reason"}``
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from fsmove import __version__
from fsmove.exitcodes import verification_exit_code
from fsmove.printable import printable

from .results import (
    Category,
    PathResult,
    Verification,
    verdict_for,
)

SCHEMA = "fsmove.verify/1"

_TOTAL_KEYS = {
    Category.IDENTICAL: "identical",
    Category.ONLY_SRC: "only_in_source",
    Category.ONLY_DST: "only_in_destination",
    Category.DIFFERS: "differs",
    Category.UNREADABLE: "unreadable",
}


def display_path(path: str) -> str:
    """A path as shown to people: the store root is ``.``."""
    return path or "."


def path_to_json(result: PathResult) -> dict[str, Any]:
    return {
        "path": result.path,
        "kind": result.kind.value,
        "category": result.category.value,
        "category_name": result.category.label,
        "src_size": result.src_size,
        "dst_size": result.dst_size,
        "src_digest": result.src_digest,
        "dst_digest": result.dst_digest,
        "how_src": result.how_src.value if result.how_src else None,
        "how_dst": result.how_dst.value if result.how_dst else None,
        "reason": result.reason,
    }


def to_json(v: Verification) -> dict[str, Any]:
    t = v.totals
    return {
        "schema": SCHEMA,
        "tool": {"name": "fsmove", "version": __version__},
        "verdict": verdict_for(v),
        "exit_code": int(verification_exit_code(v.outcome)),
        "source": v.src_display,
        "destination": v.dst_display,
        "tier": v.tier.value,
        "sample_pct": v.sample_pct,
        "seed": v.seed,
        "algorithm": v.algorithm,
        "started": v.started.isoformat(),
        "finished": v.finished.isoformat(),
        "timings": {"total_s": round(v.seconds, 3), "listing_s": round(v.listing_seconds, 3)},
        "totals": {
            **{key: t.count(c) for c, key in _TOTAL_KEYS.items()},
            "files": t.files,
            "dirs": t.dirs,
            "content_compared": t.content_compared,
            "size_only": t.size_only,
            "skipped": t.skipped,
            "read": {
                "source": {
                    "files": t.files_read_src,
                    "bytes": t.bytes_read_src,
                    "from_journal": t.src_from_journal,
                },
                "destination": {"files": t.files_read_dst, "bytes": t.bytes_read_dst},
            },
        },
        "legend": {c.value: c.label for c in Category},
        "paths": [path_to_json(r) for r in v.results],
        "skipped": [{"side": s.side.value, "path": s.path, "reason": s.reason} for s in v.skipped],
    }


def write_json(v: Verification, path: str | os.PathLike[str]) -> None:
    """Write the JSON report to ``path`` (through a temporary file, then renamed)."""
    write_atomically(Path(path), json.dumps(to_json(v), ensure_ascii=False, indent=1) + "\n")


def report_temp_path(target: Path) -> Path:
    """Where ``write_atomically`` writes ``target`` first."""
    return target.with_name(f".{target.name}.tmp")


def write_atomically(target: Path, text: str) -> None:
    """Write ``text`` as UTF-8 beside ``target``, then rename it into place (a failure
    leaves neither a part of it nor its temporary file)."""
    tmp = report_temp_path(target)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _how(v: Verification) -> str:
    t = v.totals
    if t.files_read_src == t.files_read_dst == t.src_from_journal == 0:
        if v.tier.value == "quick":
            return "compared listings and sizes, read no content"
        # A full or sampled check that had nothing to read (it reads a pair only when
        # both sides hold the file at the same size).
        which = "no sampled file" if v.tier.value == "sample" else "no file"
        return f"read no content: {which} was on both sides at the same size"
    src = f"source: read {t.files_read_src} files ({human_size(t.bytes_read_src)})"
    if t.src_from_journal:
        src += f", {t.src_from_journal} digests from the copy journal"
    dst = f"destination: read {t.files_read_dst} files ({human_size(t.bytes_read_dst)})"
    return f"{src}; {dst}"


def verdict_sentence(v: Verification) -> str:
    t = v.totals
    verdict = verdict_for(v)
    if verdict == "match":
        return "Everything matched."
    if verdict == "mismatch":
        extra = f"; {t.unreadable} could not be read" if t.unreadable else ""
        return f"MISMATCH: {t.mismatched} paths differ between source and destination{extra}."
    return f"INCOMPLETE: {t.unreadable} paths could not be read; everything else matched."


def tier_words(v: Verification) -> str:
    if v.tier.value == "sample":
        return f"sample {v.sample_pct:g}% (seed {v.seed})"
    return {"quick": "quick (listings and sizes)", "full": "full content"}[v.tier.value]


def _packed(items: list[str], width: int = 78) -> list[str]:
    """``items`` joined by ", " on indented lines of at most ``width`` columns (an
    item is never split: 80-column terminals and logs read it whole)."""
    lines: list[str] = []
    line = ""
    for item in items:
        candidate = f"{line}, {item}" if line else item
        if line and len(candidate) + 2 > width:
            lines.append(f"  {line},")
            line = item
        else:
            line = candidate
    if line:
        lines.append(f"  {line}")
    return lines


def terminal_summary(v: Verification, *, max_problems: int = 20) -> str:
    """A few lines for the terminal: verdict, totals per category, tier, time, and the
    first ``max_problems`` problems in ``rclone check --combined`` style."""
    t = v.totals
    lines = [
        verdict_sentence(v),
        f"  {v.src_display}  ->  {v.dst_display}",
        *_packed([f"{c.value} {c.label}: {t.count(c)}" for c in Category]
                 + [f"({t.files} files, {t.dirs} directories)"]),
        f"  tier: {tier_words(v)}; {v.algorithm}; {v.seconds:.1f} s",
        f"  {_how(v)}",
    ]
    if t.skipped:
        noun = "symlink or special file" if t.skipped == 1 else "symlinks or special files"
        lines.append(f"  {t.skipped} {noun} not compared")
    problems = v.problems
    for r in problems[:max_problems]:
        reason = f"  ({printable(r.reason)})" if r.reason else ""
        lines.append(f"{r.category.value} {printable(display_path(r.path))}{reason}")
    if len(problems) > max_problems:
        lines.append(f"... and {len(problems) - max_problems} more (see the report file)")
    return "\n".join(lines)
