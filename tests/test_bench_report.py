"""The benchmark's judging and reporting logic (benchmarks/results.py, goals.py, report.py)
on made-up results: no server, no tool, no clock."""

from __future__ import annotations

import json

import pytest

from benchmarks.cells import all_cells, ratio_goal, reference_after, select
from benchmarks.goals import check_goals
from benchmarks.report import build_document, markdown
from benchmarks.results import RunResult, TreeResumeFigures, million_rows, ratios

GB = 10**9


def run(
    tool: str,
    *,
    cell: str = "small-ftp-0ms",
    ok: bool = True,
    wall: float = 10.0,
    cpu: float = 4.0,
    files: int = 2000,
    size: int = GB,
    first_byte: float | None = 0.5,
    rss: float = 50.0,
    **more: object,
) -> RunResult:
    kind = str(more.pop("kind", "transfer"))
    corpus, route, rtt = cell.split("-")[0], cell.split("-")[1], int(cell.split("-")[-1][:-2])
    if kind != "transfer":
        corpus = str(more.pop("corpus", corpus))
        route = str(more.pop("route", route))
    return RunResult(
        cell=cell,
        kind=kind,
        corpus=corpus,
        route=route,
        rtt_ms=rtt,
        tool=tool,
        ok=ok,
        files=files,
        bytes=size,
        wall_s=wall,
        cpu_user_s=cpu * 0.75,
        cpu_sys_s=cpu * 0.25,
        peak_rss_mib=rss,
        first_byte_s=first_byte,
        first_byte_poll_s=0.01,
        **more,  # type: ignore[arg-type]
    )


def meta() -> dict[str, object]:
    return {
        "date": "2026-12-04 03:00 UTC",
        "quick": True,
        "command": "python -m benchmarks.run --quick",
        "machine": {
            "cores": 2,
            "ram_gib": 8,
            "cpu_model": "x",
            "python": "3.11",
            "kernel": "k",
            "load_average_at_start": [1.0, 1.0, 1.0],
        },
        "versions": {"fsmove": "0"},
        "link": "loopback",
        "corpora": {"small": {"files": 2000, "bytes": GB, "what": "small files"}},
        "total_s": 1,
    }


def test_goal_ratios_follow_issue_18():
    assert ratio_goal(corpus="small", route="ftp", rtt_ms=60) == 4.0
    assert ratio_goal(corpus="small", route="sftp", rtt_ms=60) == 4.0
    assert ratio_goal(corpus="large", route="ftp", rtt_ms=60) == 1.3
    assert ratio_goal(corpus="large", route="sftp", rtt_ms=60) == 1.0
    assert ratio_goal(corpus="small", route="ftp", rtt_ms=0) == 1.0
    assert ratio_goal(corpus="real", route="sftp", rtt_ms=0) == 1.0


def test_ratio_uses_best_peer_throughput_and_leanest_peer_cpu():
    runs = [
        run("fsmove", wall=10.0, cpu=6.0),
        run("rclone", wall=8.0, cpu=3.0),  # fastest peer
        run("lftp", wall=12.0, cpu=2.0),  # leanest peer
    ]
    (ra,) = ratios(runs)
    assert ra.best_peer == "rclone"
    assert ra.ratio == pytest.approx(0.8)
    assert ra.target == 1.0 and ra.met is False
    assert ra.cpu_unit == "s/1k files"
    assert ra.fsmove_cpu == pytest.approx(3.0)  # 6 s for 2,000 files
    assert ra.leanest_peer == "lftp" and ra.leanest_peer_cpu == pytest.approx(1.0)
    assert ra.cpu_ratio == pytest.approx(3.0) and ra.cpu_met is False


def test_large_files_are_judged_per_gb_and_failed_peers_do_not_count():
    cell = "large-ftp-60ms"
    runs = [
        run("fsmove", cell=cell, files=2, size=2 * GB, wall=10.0, cpu=2.4),
        run("rclone", cell=cell, files=2, size=2 * GB, wall=13.0, cpu=2.0),
        run("lftp", cell=cell, files=2, size=2 * GB, wall=1.0, cpu=0.1, ok=False),
    ]
    (ra,) = ratios(runs)
    assert ra.metric == "MB/s" and ra.cpu_unit == "s/GB"
    assert ra.best_peer == "rclone" and ra.ratio == pytest.approx(1.3)
    assert ra.target == 1.3 and ra.met is True
    assert ra.fsmove_cpu == pytest.approx(1.2) and ra.leanest_peer_cpu == pytest.approx(1.0)
    assert ra.cpu_ratio == pytest.approx(1.2) and ra.cpu_met is True


def test_a_cell_without_a_peer_result_is_not_measured():
    runs = [run("fsmove"), run("rclone", ok=False), run("lftp", ok=False)]
    (ra,) = ratios(runs)
    assert ra.ratio is None and ra.cpu_ratio is None
    checks = {g.goal.split()[0]: g for g in check_goals(runs)}
    assert checks["throughput"].unmeasured == ("small-ftp-0ms",)
    assert checks["throughput"].verdict is None


def test_goal_checks_name_the_cells_that_miss():
    runs = [
        run("fsmove", cell="small-ftp-0ms", wall=10.0, cpu=2.0, first_byte=0.4),
        run("lftp", cell="small-ftp-0ms", wall=11.0, cpu=2.0, first_byte=0.2),
        run("fsmove", cell="small-ftp-60ms", wall=10.0, cpu=2.0, first_byte=3.0),
        run("lftp", cell="small-ftp-60ms", wall=30.0, cpu=1.0, first_byte=0.9),
    ]
    checks = {g.goal.split()[0]: g for g in check_goals(runs)}
    throughput = checks["throughput"]
    assert throughput.met == ("small-ftp-0ms",)
    assert throughput.missed == ("small-ftp-60ms",)  # 3x, the goal there is 4x
    assert throughput.verdict is False
    assert checks["client"].met == ("small-ftp-0ms",)
    assert checks["client"].missed == ("small-ftp-60ms",)
    assert checks["first"].missed == ("small-ftp-60ms",)  # only fsmove is judged
    assert checks["peak"].verdict is True


def million_runs(*, million_wall: float, rss: float = 250.0) -> list[RunResult]:
    common = {"route": "local-sftp", "corpus": "scale"}
    return [
        run(
            "fsmove", cell="scale-local-sftp-0ms", kind="scale", files=100_000, wall=100.0, **common
        ),
        run(
            "fsmove",
            cell="million-local-sftp-0ms",
            kind="million",
            files=1_000_000,
            wall=million_wall,
            rss=rss,
            route="local-sftp",
            corpus="million",
        ),
    ]


def test_million_rate_is_compared_with_the_100k_cell_of_its_route():
    (row,) = million_rows(million_runs(million_wall=1100.0))
    assert [r.cell for r in row.references] == ["scale-local-sftp-0ms"]
    assert row.rate_ratio == pytest.approx(1000 / 1100)  # 909 vs 1,000 files/s
    assert row.rate_met is True and row.rss_met is True
    assert row.cpu_ratio == pytest.approx(0.1)  # the same 4 s of CPU for 10 times the files
    (slow,) = million_rows(million_runs(million_wall=1112.0, rss=301.0))
    assert slow.rate_met is False and slow.rss_met is False


def test_million_without_its_100k_cell_has_no_rate_verdict():
    (row,) = million_rows(million_runs(million_wall=1000.0)[1:])
    assert row.references == () and row.rate_ratio is None and row.rate_met is None


def test_million_rate_reference_is_the_mean_of_the_100k_runs_before_and_after():
    """The machine slowed during the million files: the 100,000-file run after them is
    slower too, and the million-file rate is judged against the mean of both."""
    before, million = million_runs(million_wall=1100.0)  # 1,000 then 909 files/s
    after = run("fsmove", cell="scale-local-sftp-0ms", kind="scale", files=100_000,
                wall=125.0, route="local-sftp", corpus="scale")  # 800 files/s
    (row,) = million_rows([before, million, after])
    assert row.references == (before, after)
    assert row.reference_rate == pytest.approx(900.0)
    assert row.rate_ratio == pytest.approx(909.09 / 900.0, rel=1e-4)
    assert row.rate_met is True
    (alone,) = million_rows([before, million])
    assert alone.rate_ratio == pytest.approx(0.909, rel=1e-3)
    runs = [before, million, after]
    text = markdown(build_document(meta=meta(), runs=runs), runs)
    assert "| 900.0 (1,000.0, 800.0) | 1.01x | **met** |" in text


def test_the_harness_runs_the_100k_cell_of_a_million_cell_s_route_again_after_it():
    cells = {c.id: c for c in all_cells()}
    chosen = [cells[i] for i in ("scale-local-sftp-0ms", "scale-sftp-ftp-0ms",
                                 "million-local-sftp-0ms", "million-sftp-ftp-0ms",
                                 "million-resume-local-sftp-0ms")]
    again = [reference_after(c, chosen) for c in chosen]
    assert [a.id if a else None for a in again] == [
        None, None, "scale-local-sftp-0ms", "scale-sftp-ftp-0ms", None]
    # without its 100k cell selected before it, a million-file cell runs alone
    assert reference_after(cells["million-local-sftp-0ms"],
                           [cells["million-local-sftp-0ms"]]) is None


def tree_resume(*, replaced: int, rewritten: int, bound: int | None) -> TreeResumeFigures:
    return TreeResumeFigures(
        files=1_000_000,
        complete_at_kill=500_000,
        partial_at_kill=3,
        killed_at_fraction=0.5,
        replaced=replaced,
        rewritten=rewritten,
        resent_bytes=1234,
        in_flight_bound=bound,
        first_run_killed=True,
    )


def test_tree_resume_goal_is_files_in_flight():
    assert tree_resume(replaced=100, rewritten=28, bound=128).met is True
    assert tree_resume(replaced=100, rewritten=29, bound=128).met is False
    assert tree_resume(replaced=0, rewritten=0, bound=None).met is None


def test_document_and_markdown_hold_every_figure():
    runs = [
        run("fsmove", cell="small-sftp-0ms", wall=9.0, cpu=5.0, first_byte=0.8),
        run("rclone", cell="small-sftp-0ms", wall=10.0, cpu=4.0, first_byte=0.3),
        *million_runs(million_wall=1050.0),
        run(
            "fsmove",
            cell="million-resume-local-sftp-0ms",
            kind="million-resume",
            files=1_000_000,
            route="local-sftp",
            corpus="million",
            tree_resume=tree_resume(replaced=5, rewritten=0, bound=128),
        ),
    ]
    document = build_document(meta=meta(), runs=runs)
    data = json.loads(json.dumps(document))
    (ratio,) = data["ratios"]
    assert ratio["ratio"] == pytest.approx(10 / 9, abs=1e-3)
    assert ratio["cpu_ratio"] == pytest.approx(1.25) and ratio["cpu_met"] is True
    assert {fb["cell"] for fb in data["first_bytes"]} == {
        "small-sftp-0ms",
        "scale-local-sftp-0ms",
        "million-local-sftp-0ms",
    }
    assert data["million"][0]["rate_ratio"] == pytest.approx(1000 / 1050, abs=1e-3)
    resumed = next(r for r in data["runs"] if r["kind"] == "million-resume")
    assert resumed["tree_resume"]["resent_files"] == 5 and resumed["tree_resume"]["met"]
    goals = {g["goal"].split(":")[0]: g for g in data["goals"]}
    assert "million-file cells" in goals
    text = markdown(document, runs)
    for heading in (
        "## Goals (issue 18)",
        "## Ratios: fsmove / best peer, and CPU",
        "## First byte",
        "## Million-file cells",
        "## Million-file resume",
    ):
        assert heading in text
    assert "| small-sftp-0ms | 0.80 (0.01) | 0.30 (0.01) | **met** |" in text


def test_million_cells_run_only_when_named():
    every = all_cells()
    default = select(every, patterns=None, tools=None)
    assert not [c for c in default if c.id.startswith("million")]
    assert "scale-local-sftp-0ms" in {c.id for c in default}
    named = select(every, patterns="scale-*,million-*", tools=None)
    assert {c.id for c in named} == {
        "scale-local-sftp-0ms",
        "scale-sftp-ftp-0ms",
        "million-local-sftp-0ms",
        "million-sftp-ftp-0ms",
        "million-resume-local-sftp-0ms",
        "million-resume-sftp-ftp-0ms",
    }


def test_many_file_cells_get_their_own_time_limit(tmp_path):
    from benchmarks.execution import Settings

    settings = Settings(
        scratch_dir=tmp_path,
        timeout_s=60.0,
        secrets=(),
        log=print,
        scale_timeout_s=600.0,
        million_timeout_s=900.0,
    )
    limits = {c.id: settings.timeout_for(c) for c in all_cells()}
    assert limits["small-ftp-0ms"] == 60.0 and limits["resume-ftp-sftp-0ms"] == 60.0
    assert limits["scale-local-sftp-0ms"] == 600.0 and limits["scale-sftp-ftp-0ms"] == 600.0
    assert limits["million-sftp-ftp-0ms"] == 900.0
    assert limits["million-resume-local-sftp-0ms"] == 900.0


def test_a_failed_fsmove_run_misses_its_goals():
    runs = [run("fsmove", ok=False, first_byte=None), run("rclone"), run("lftp")]
    checks = {g.goal.split()[0]: g for g in check_goals(runs)}
    for name in ("throughput", "client", "first"):
        assert checks[name].missed == ("small-ftp-0ms",), name
        assert checks[name].verdict is False
