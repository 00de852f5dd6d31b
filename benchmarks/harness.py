"""The benchmark harness: pick cells, build corpora, start servers, run, write results."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path

from tests.servers.account import ensure_account
from tests.servers.relay import DEFAULT_WINDOW

from .cells import PEERS, Cell, all_cells, reference_after, select
from .chart import write_chart
from .corpora import (
    REAL_TREE_SOURCE,
    Corpus,
    ensure_corpus,
    full_specs,
    million_spec,
    quick_specs,
)
from .environment import Sites, open_sites
from .execution import Settings, run_resume, run_transfer
from .machine import describe
from .report import build_document, markdown, write_json
from .results import RunResult
from .runners.base import Runner
from .runners.fsmove_runner import FsmoveRunner
from .runners.lftp_runner import LftpRunner
from .runners.rclone_runner import RcloneRunner
from .tree_resume import run_tree_resume

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_WORKDIR = Path("/tmp/fsmove-bench")


def _what(corpus: Corpus) -> str:
    spec = corpus.spec
    if spec.kind == "real-tree":
        sampled = f", one file in {spec.sample_every}" if spec.sample_every > 1 else ""
        return f"copy of {REAL_TREE_SOURCE} (no caches, tests, site-packages{sampled})"
    if spec.kind == "random-large":
        return f"{spec.files} x {spec.max_size >> 20} MiB, seeded random bytes"
    sizes = (
        f"{spec.min_size >> 20}-{spec.max_size >> 20} MiB"
        if spec.min_size >= 1 << 20
        else f"{spec.min_size:,}-{spec.max_size:,} bytes"
    )
    return (
        f"{sizes}, log-uniform, {spec.files_per_dir} "
        "per folder, nested, seeded random bytes"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="fsmove side by side with rclone and lftp through a simulated WAN.",
    )
    p.add_argument("--quick", action="store_true", help="reduced corpora (about 3 minutes)")
    p.add_argument(
        "--cells",
        help="comma-separated globs over cell ids, e.g. 'small-*-60ms,resume-*' (--list); "
        "scale-sftp-ftp-0ms and million-* run only when named",
    )
    p.add_argument("--tools", help="comma-separated subset of fsmove,rclone,lftp")
    p.add_argument(
        "--scale-peers",
        action="store_true",
        help="run rclone and lftp in the scale and million-file cells too",
    )
    p.add_argument("--list", action="store_true", help="print the cell ids and exit")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="corpora, servers")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="where latest.* are written")
    p.add_argument("--timeout", type=float, help="seconds per tool run (default 300, quick 60)")
    p.add_argument(
        "--scale-timeout",
        type=float,
        help="seconds per tool run in the 100,000-file cells (default 3600, quick 600)",
    )
    p.add_argument(
        "--million-timeout",
        type=float,
        help="seconds per tool run in the million-file cells (default 21600, quick 900)",
    )
    p.add_argument(
        "--million-files",
        type=int,
        help="files in the million-file corpus (default 1,000,000; quick 20,000)",
    )
    args = p.parse_args(argv)
    if args.million_files is not None and args.million_files < 2:
        p.error("--million-files must be at least 2")
    return args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _line(r: RunResult) -> str:
    if not r.ok:
        return f"  {r.tool:7s} FAILED {r.error or r.verification}"
    parts = [f"{r.wall_s:8.2f} s"]
    if r.files_per_s is not None:
        parts.append(f"{r.files_per_s:9.1f} files/s")
    if r.mb_per_s is not None:
        parts.append(f"{r.mb_per_s:8.1f} MB/s")
    parts.append(f"cpu {r.cpu_s:.1f} s, rss {r.peak_rss_mib:.0f} MiB")
    if r.first_byte_s is not None:
        parts.append(f"first byte {r.first_byte_s:.2f} s")
    if r.tree_resume is not None:
        t = r.tree_resume
        parts.append(
            f"killed at {t.killed_at_fraction:.0%} of the files, re-sent {t.resent_files:,} "
            f"files ({t.resent_bytes:,} bytes)"
        )
    if r.resume is not None:
        parts.append(
            f"killed at {r.resume.killed_at_fraction:.0%}, re-sent {r.resume.resent >> 20} MiB"
        )
    return f"  {r.tool:7s} " + ", ".join(parts)


def _run_cell(
    cell: Cell,
    *,
    runners: dict[str, Runner],
    corpora: dict[str, Corpus],
    sites: Sites,
    settings: Settings,
    warmed: set[str],
) -> list[RunResult]:
    results = []
    corpus = corpora[cell.corpus]
    _log(f"{cell.id}: {corpus.file_count:,} files, {corpus.total_bytes / 1e6:,.1f} MB")
    if cell.kind == "transfer" and cell.corpus not in warmed:
        # The first copy after a corpus is built runs ~2x slower, whichever tool it is
        # (large-ftp-0ms: rclone alone 2.9 s then 1.2-1.5 s, fsmove 4.1-4.6 s then
        # 1.6-2.1 s; benchmarks/README.md): the first tool of the corpus's first cell
        # copies it once unmeasured, so no tool is measured in that state.
        warmed.add(cell.corpus)
        warm = run_transfer(cell=cell, runner=runners[cell.tools[0]], corpus=corpus,
                            route=sites.route(cell.route, cell.rtt_ms), settings=settings)
        _log(f"  (warm-up, not counted: {warm.tool} {warm.wall_s or 0:.2f} s)")
    for tool in cell.tools:
        runner = runners[tool]
        if cell.kind == "resume":
            result = run_resume(
                cell=cell, runner=runner, corpus=corpus, sites=sites, settings=settings
            )
        elif cell.kind == "million-resume":
            result = run_tree_resume(
                cell=cell,
                runner=runner,
                corpus=corpus,
                route=sites.route(cell.route, cell.rtt_ms),
                settings=settings,
            )
        else:
            result = run_transfer(
                cell=cell,
                runner=runner,
                corpus=corpus,
                route=sites.route(cell.route, cell.rtt_ms),
                settings=settings,
                first_byte=cell.polls_first_byte,
            )
        _log(_line(result))
        results.append(result)
    return results


def _write(out: Path, meta: dict[str, object], runs: list[RunResult]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    document = build_document(meta=meta, runs=runs)
    write_json(document, out / "latest.json")
    (out / "latest.md").write_text(markdown(document, runs))
    title = f"fsmove vs rclone and lftp — {meta['date']} ({'quick' if meta['quick'] else 'full'})"
    write_chart(runs, out / "ratios.png", title=title)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        every = all_cells(scale_peers=args.scale_peers)
        cells = select(every, patterns=args.cells, tools=args.tools)
    except ValueError as exc:
        _log(f"error: {exc}")
        return 2
    if args.list:
        for cell in all_cells(scale_peers=args.scale_peers):
            when = "" if cell.default else "  (only when --cells names it)"
            print(f"{cell.id:30s} {cell.kind:15s} tools: {','.join(cell.tools)}{when}")
        return 0
    if not cells:
        _log("error: no cell matches --cells/--tools (see --list)")
        return 2
    specs = quick_specs() if args.quick else full_specs()
    if args.million_files is not None:
        specs["million"] = million_spec(args.million_files)
    started = time.monotonic()
    machine = describe()
    runners: dict[str, Runner] = {
        "fsmove": FsmoveRunner(),
        "rclone": RcloneRunner(),
        "lftp": LftpRunner(),
    }
    used = sorted({t for c in cells for t in c.tools}, key=list(runners).index)
    account = ensure_account()
    settings = Settings(
        scratch_dir=args.workdir / "scratch",
        timeout_s=args.timeout or (60.0 if args.quick else 300.0),
        scale_timeout_s=args.scale_timeout or (600.0 if args.quick else 3600.0),
        million_timeout_s=args.million_timeout or (900.0 if args.quick else 21600.0),
        secrets=(account.password,),
        log=_log,
    )
    runs: list[RunResult] = []
    with open_sites(args.workdir) as sites:
        corpora: dict[str, Corpus] = {}
        for name in dict.fromkeys(c.corpus for c in cells):
            t = time.monotonic()
            corpora[name] = ensure_corpus(specs[name], sites.corpora_dir)
            _log(f"corpus {name}: ready in {time.monotonic() - t:.1f} s")
        meta: dict[str, object] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": args.quick,
            "command": shlex.join(["python", "-m", "benchmarks.run", *(argv or sys.argv[1:])]),
            "machine": machine,
            "versions": {t: runners[t].version() for t in used},
            "link": (
                "RTT 0: clients talk to the servers directly on loopback; RTT 60 ms: a "
                "userspace relay delays each direction by 30 ms (a connection costs one "
                f"round trip more, {DEFAULT_WINDOW >> 20} MiB in flight per direction and "
                "connection). Peers: rclone --transfers 32 --checkers 32 --ftp-concurrency "
                "64; lftp mirror --parallel=32, no FXP (copies through the client)."
            ),
            "peers": list(PEERS),
            "corpora": {
                n: {"files": c.file_count, "bytes": c.total_bytes, "what": _what(c)}
                for n, c in corpora.items()
            },
        }
        warmed: set[str] = set()
        for cell in cells:
            runs += _run_cell(
                cell, runners=runners, corpora=corpora, sites=sites, settings=settings,
                warmed=warmed,
            )
            again = reference_after(cell, cells)
            if again is not None:
                _log(f"{again.id} again: the reference of {cell.id} is its mean before "
                     "and after (a shared machine's speed drifts over half an hour)")
                runs += _run_cell(
                    again, runners=runners, corpora=corpora, sites=sites,
                    settings=settings, warmed=warmed,
                )
            meta["total_s"] = round(time.monotonic() - started)
            meta["load_average_at_end"] = describe()["load_average_at_start"]
            _write(args.out, meta, runs)
    elapsed = time.monotonic() - started
    _log(f"done in {elapsed:.0f} s: {args.out}/latest.md, latest.json, ratios.png")
    return 0
