"""DNS checks (fsmove/clever/dns.py) and `fsmove dns`, against a real dnsmasq on 127.0.0.1.

Nothing here asks real DNS: every query goes to a dnsmasq this file started (it answers
NXDOMAIN for every name it does not hold, without forwarding), or to a loopback port
nobody answers on.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsmove.clever.dns import (
    Answer,
    DnsChecker,
    DnsError,
    absolute_name,
    parse_nameserver,
    zone_target,
)
from fsmove.clever.dns_domain_check import check_domain
from fsmove.cli import app
from fsmove.errors import UsageError
from tests.servers.base import ServerNotInstalled
from tests.servers.dnsmasq import DnsmasqServer, Record, start_dnsmasq

PAR = "domain.par.clever-cloud.com"
MTL = "domain.mtl.clever-cloud.com"
CLI_TIMEOUT = 30

BASE_RECORDS = (
    Record(PAR, "A", "192.0.2.10", 300),
    Record(MTL, "A", "192.0.2.20", 300),
    Record("www.old.test", "CNAME", PAR, 3600),
    Record("ready.new.test", "CNAME", MTL, 60),
    Record("apex.test", "A", "192.0.2.2", 7200),
    Record("apex.test", "A", "192.0.2.1", 7200),
    Record("apex.test", "AAAA", "2001:db8::1", 7200),
    Record("low.test", "A", "192.0.2.5", 30),
    Record("txt.test", "TXT", "hello world"),
)


def _start(workdir: Path, records: tuple[Record, ...]) -> Iterator[DnsmasqServer]:
    try:
        with start_dnsmasq(workdir, records) as server:
            yield server
    except ServerNotInstalled as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsmasqServer]:
    """One dnsmasq with BASE_RECORDS for the module; tests never change its records."""
    yield from _start(tmp_path_factory.mktemp("dnsmasq"), BASE_RECORDS)


@pytest.fixture
def own_dnsmasq(tmp_path: Path) -> Iterator[DnsmasqServer]:
    """A dnsmasq for this test only, whose records the test changes."""
    moving = Record("www.move.test", "CNAME", PAR, 3600)
    yield from _start(tmp_path / "dnsmasq", (*BASE_RECORDS, moving))


@pytest.fixture
def checker(dnsmasq: DnsmasqServer) -> DnsChecker:
    return DnsChecker([dnsmasq.nameserver], timeout=2.0)


def _dead_port() -> int:
    """A loopback UDP port nobody listens on (queries to it are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- lookups -------------------------------------------------------------------------


def test_lookup_reads_cname_a_aaaa_txt_and_ttls(checker: DnsChecker) -> None:
    assert checker.lookup("www.old.test") == Answer("www.old.test.", "CNAME", 3600, (f"{PAR}.",))
    # Asking A of a CNAME resolves it: the target's addresses and their TTL.
    assert checker.lookup("www.old.test", "A") == Answer("www.old.test.", "A", 300, ("192.0.2.10",))
    assert checker.lookup("apex.test", "a") == Answer(
        "apex.test.", "A", 7200, ("192.0.2.1", "192.0.2.2")
    )
    assert checker.lookup("apex.test.", "AAAA").values == ("2001:db8::1",)
    assert checker.lookup("txt.test", "TXT").values == ("hello world",)
    # Names are case-insensitive and reported lowercase, absolute.
    assert checker.lookup("WWW.Old.TEST").values == (f"{PAR}.",)


def test_current_target_prefers_the_cname_else_the_addresses(checker: DnsChecker) -> None:
    assert checker.current_target("ready.new.test") == Answer(
        "ready.new.test.", "CNAME", 60, (f"{MTL}.",)
    )
    assert checker.current_target("apex.test") == Answer(
        "apex.test.", "A", 7200, ("192.0.2.1", "192.0.2.2", "2001:db8::1")
    )


def test_nxdomain_and_no_answer_are_empty_answers(checker: DnsChecker) -> None:
    assert checker.lookup("missing.test", "A") == Answer("missing.test.", "A", None, ())
    assert checker.lookup("apex.test", "CNAME") == Answer("apex.test.", "CNAME", None, ())
    assert checker.current_target("missing.test").values == ()
    assert checker.matches("missing.test", {"CNAME": []})


def test_ttl_check_gives_the_guide_advice(checker: DnsChecker) -> None:
    high = checker.ttl_check("www.old.test")
    assert (high.ttl, high.max_ttl, high.ok) == (3600, 60, False)
    assert high.advice == (
        "lower the TTL of www.old.test. from 3600 s to 60 s, then wait 3600 s before switching"
    )
    low = checker.ttl_check("low.test")
    assert (low.ttl, low.ok) == (30, True)
    assert "at most 60 s" in low.advice
    assert checker.ttl_check("www.old.test", max_ttl=3600).ok
    missing = checker.ttl_check("missing.test")
    assert (missing.ttl, missing.ok) == (None, True)
    assert "no record yet" in missing.advice


def test_matches_compares_exact_sets(checker: DnsChecker) -> None:
    assert checker.matches("ready.new.test", {"CNAME": [zone_target("mtl")]})
    assert checker.matches("ready.new.test", {"CNAME": ["DOMAIN.MTL.clever-cloud.com"]})
    assert not checker.matches("www.old.test", {"CNAME": [zone_target("mtl")]})
    assert checker.matches("apex.test", {"A": ["192.0.2.2", "192.0.2.1"], "AAAA": ["2001:db8::1"]})
    assert not checker.matches("apex.test", {"A": ["192.0.2.1"]})  # one old address left
    assert checker.matches("apex.test", {})


def test_check_domain_says_what_to_set(checker: DnsChecker) -> None:
    moving = check_domain(checker, "www.old.test", {"CNAME": [zone_target("mtl")]})
    assert moving.matches is False
    assert moving.records_to_set == (f"www.old.test. 60 IN CNAME {MTL}.",)
    apex = check_domain(checker, "apex.test", {"CNAME": [zone_target("mtl")]})
    assert apex.note is not None and "cannot coexist" in apex.note
    done = check_domain(checker, "ready.new.test", {"CNAME": [zone_target("mtl")]})
    assert (done.matches, done.records_to_set) == (True, ())
    assert "restore its usual TTL" in done.ttl.advice  # the guide's last step
    assert check_domain(checker, "apex.test", {}).matches is None


# --- failures --------------------------------------------------------------------------


def test_a_resolver_that_refuses_fails_fast_with_one_line() -> None:
    port = _dead_port()
    started = time.monotonic()
    with pytest.raises(DnsError) as info:
        DnsChecker([f"127.0.0.1:{port}"], timeout=60.0).lookup("www.old.test")
    # Far less than the timeout: the refusal ended it, not the clock (a margin no
    # machine's load closes).
    assert time.monotonic() - started < 30
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "\n" not in message
    assert info.value.exit_code == 1


def test_a_silent_resolver_times_out_with_one_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never read: queries get no reply
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(DnsError, match="did not answer") as info:
            DnsChecker([f"127.0.0.1:{port}"], timeout=0.5).lookup("www.old.test")
        assert time.monotonic() - started >= 0.5  # it waited its timeout...
        silent.setblocking(False)
        queries = 0
        with contextlib.suppress(BlockingIOError):
            while silent.recv(4096):
                queries += 1
    # ...asking a few times at most, not for ever (counted, whatever the machine's pace).
    assert 1 <= queries <= 4, queries
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: DnsChecker(["not-an-ip"]),
        lambda: DnsChecker(["127.0.0.1:99999"]),
        lambda: DnsChecker(["127.0.0.1"], timeout=0),
        lambda: zone_target("fra"),
        lambda: absolute_name("https://www.example.org/"),
        lambda: absolute_name(""),
    ],
    ids=["not-an-ip", "bad-port", "zero-timeout", "unknown-zone", "url", "empty"],
)
def test_bad_input_is_a_usage_error(call: object) -> None:
    with pytest.raises(UsageError):
        call()  # type: ignore[operator]


def test_nameserver_forms() -> None:
    assert parse_nameserver("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("2001:db8::53") == ("2001:db8::53", 53)
    assert zone_target(" MTL ") == f"{MTL}."


# --- watch -----------------------------------------------------------------------------


def test_watch_sees_the_switch_made_while_it_waits(own_dnsmasq: DnsmasqServer) -> None:
    checker = DnsChecker([own_dnsmasq.nameserver], timeout=1.0)
    ticks: list[Answer] = []
    failure: list[BaseException] = []
    third_tick = threading.Event()

    def tick(answer: Answer) -> None:
        ticks.append(answer)
        if len(ticks) >= 3:
            third_tick.set()

    def switch() -> None:
        # Switch only once the watch has read the old record three times.
        third_tick.wait(timeout=60)
        try:
            own_dnsmasq.set_records((*BASE_RECORDS, Record("www.move.test", "CNAME", MTL, 60)))
        except BaseException as exc:  # reported by the test, not lost in the thread
            failure.append(exc)

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        result = checker.watch(
            "www.move.test", {"CNAME": [zone_target("mtl")]}, timeout=120, interval=0.1,
            on_tick=tick,
        )
    finally:
        switcher.join(timeout=60)
    assert not failure and not switcher.is_alive()
    assert result.matched and result.name == "www.move.test."
    assert result.seen == (f"{MTL}.",)
    assert result.elapsed >= 3 * 0.1 and len(ticks) >= 4  # three polls waited, then the switch
    assert ticks[0].values == (f"{PAR}.",) and ticks[-1].values == (f"{MTL}.",)
    assert checker.lookup("www.move.test").ttl == 60


def test_watch_gives_up_at_its_timeout(checker: DnsChecker) -> None:
    started = time.monotonic()
    ticks: list[Answer] = []
    result = checker.watch("www.old.test", {"CNAME": [zone_target("mtl")]}, timeout=1.0,
                           interval=0.3, on_tick=ticks.append)
    took = time.monotonic() - started
    assert not result.matched and result.seen == (f"{PAR}.",)
    assert 1.0 <= result.elapsed <= took
    # It stopped at its timeout: no poll after it (polls are counted, not timed: at most
    # one at 0, 0.3, 0.6, 0.9 s and the one that reached 1.0 s).
    assert 1 <= len(ticks) <= 5, len(ticks)
    once_ticks: list[Answer] = []
    once = checker.watch("www.old.test", {"CNAME": [zone_target("mtl")]}, timeout=0,
                         on_tick=once_ticks.append)
    assert not once.matched and len(once_ticks) == 1  # asked once, did not wait
    assert checker.watch("ready.new.test", {"CNAME": [zone_target("mtl")]}, timeout=5).matched


def test_watch_of_a_dead_resolver_fails_at_once() -> None:
    checker = DnsChecker([f"127.0.0.1:{_dead_port()}"], timeout=60.0)
    started = time.monotonic()
    with pytest.raises(DnsError):
        checker.watch("www.old.test", {"CNAME": [zone_target("mtl")]}, timeout=120,
                      interval=0.1)
    assert time.monotonic() - started < 30  # far less than either timeout


# --- `fsmove dns`, end to end in a subprocess -------------------------------------------


def _fsmove(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsmove.cli", "dns", *args],
        capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL,
        check=False,
    )


def test_cli_says_what_to_set_and_exits_4(dnsmasq: DnsmasqServer) -> None:
    done = _fsmove("www.old.test", "ready.new.test", "--zone", "mtl",
                   "--nameserver", dnsmasq.nameserver)
    assert done.returncode == 4, done.stderr
    out = done.stdout
    assert f"now:      CNAME {PAR}. (TTL 3600 s)" in out
    assert ("lower the TTL of www.old.test. from 3600 s to 60 s, then wait 3600 s before "
            "switching") in out
    assert f"    www.old.test. 60 IN CNAME {MTL}." in out
    assert "matches:  yes" in out  # ready.new.test
    assert "1 of 2 domain(s) do not match yet" in out
    assert done.stderr == ""


def test_cli_exits_0_when_everything_matches(dnsmasq: DnsmasqServer) -> None:
    ns = dnsmasq.nameserver
    assert _fsmove("ready.new.test", "--zone", "MTL", "--nameserver", ns).returncode == 0
    both = _fsmove("apex.test", "--expect", "A=192.0.2.1", "--expect", "A=192.0.2.2",
                   "--nameserver", ns)
    assert both.returncode == 0, both.stdout + both.stderr
    nothing = _fsmove("apex.test", "missing.test", "--nameserver", ns)
    assert nothing.returncode == 0
    assert "expected: nothing" in nothing.stdout
    assert "now:      no record" in nothing.stdout


def test_cli_json_is_one_document(dnsmasq: DnsmasqServer) -> None:
    done = _fsmove("www.old.test", "ready.new.test", "--zone", "mtl",
                   "--nameserver", dnsmasq.nameserver, "--json")
    assert done.returncode == 4
    doc = json.loads(done.stdout)
    assert doc["all_match"] is False and doc["exit_code"] == 4 and doc["watch"] is None
    old, new = doc["domains"]
    assert old["name"] == "www.old.test." and old["matches"] is False
    assert old["current"] == {"name": "www.old.test.", "rtype": "CNAME", "ttl": 3600,
                              "values": [f"{PAR}."]}
    assert old["ttl"]["ok"] is False
    assert old["records_to_set"] == [f"www.old.test. 60 IN CNAME {MTL}."]
    assert new["matches"] is True and new["expected"] == {"CNAME": [f"{MTL}."]}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["www.old.test", "--zone", "fra"], "unknown Clever Cloud zone"),
        (["www.old.test", "--expect", "CNAME"], "TYPE=VALUE"),
        (["www.old.test", "--expect", "A=not-an-ip"], "not an IP address"),
        (["www.old.test", "--expect", "BOGUS=x"], "unknown DNS record type"),
        (["www.old.test", "--zone", "mtl", "--expect", f"CNAME={PAR}"], "either --zone"),
        (["www.old.test", "--watch"], "--watch needs"),
        (["http://www.old.test/"], "not a domain name"),
        (["-"], "not a domain name"),  # before session 34: queried, exit 4
        (["www.-old.test"], "not a domain name"),
        (["www.old.test", "--nameserver", "dns.example"], "not an IP address"),
        (["www.old.test", "--zone", "mtl", "--timeout", "0"], "--timeout"),
    ],
    ids=["zone", "expect-form", "expect-ip", "expect-type", "zone-and-cname", "watch-alone",
         "url", "dash", "label", "nameserver", "timeout"],
)
def test_cli_bad_input_exits_2_with_one_line(
    dnsmasq: DnsmasqServer, args: list[str], needle: str
) -> None:
    """In-process (CliRunner), to spare a Python start per case; the next test runs one
    case as a subprocess."""
    result = CliRunner().invoke(app, ["dns", *args, "--nameserver", dnsmasq.nameserver])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("fsmove: error: ") and needle in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_cli_unknown_zone_exits_2_end_to_end(dnsmasq: DnsmasqServer) -> None:
    done = _fsmove("www.old.test", "--zone", "fra", "--nameserver", dnsmasq.nameserver)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "fsmove: error: unknown Clever Cloud zone 'fra': use one of par, ldn, mtl, rbx, scw, "
        "sgp, syd, wsw\n"
    )


def test_cli_unreachable_resolver_exits_1(tmp_path: Path) -> None:
    port = _dead_port()
    done = _fsmove("www.old.test", "--zone", "mtl", "--nameserver", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert done.stderr.startswith(f"fsmove: error: DNS server 127.0.0.1:{port} ")
    assert done.stderr.count("\n") == 1 and done.stdout == ""


def test_cli_watch_times_out_with_4(dnsmasq: DnsmasqServer) -> None:
    done = _fsmove("www.old.test", "--zone", "mtl", "--nameserver", dnsmasq.nameserver,
                   "--watch", "--timeout", "1", "--interval", "0.2", "--json")
    assert done.returncode == 4
    doc = json.loads(done.stdout)
    assert doc["watch"]["timeout"] == 1.0 and 1.0 <= doc["watch"]["elapsed"] < 10


def test_cli_watch_ends_when_the_switch_is_seen(own_dnsmasq: DnsmasqServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmove.cli", "dns", "www.move.test", "ready.new.test",
         "--zone", "mtl", "--nameserver", own_dnsmasq.nameserver, "--watch",
         "--timeout", "20", "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    killer = threading.Timer(CLI_TIMEOUT, proc.kill)  # bounds the blocking readline below
    killer.start()
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the watch has read the old record
        assert f"www.move.test. CNAME: {PAR}." in first
        own_dnsmasq.set_records((*BASE_RECORDS, Record("www.move.test", "CNAME", MTL, 60)))
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"www.move.test. CNAME: {MTL}." in err
    assert "all 2 domain(s) match" in out


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_cli_watch_interrupted_exits_130(dnsmasq: DnsmasqServer, inherited: str) -> None:
    # "ignored": started as a background job of a non-interactive shell (or by a CI runner)
    # is, with SIGINT ignored; Python keeps that, and Ctrl-C was lost: the watch ran on
    # to its timeout (exit 4). The timeout is far away: only the interrupt ends it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "fsmove.cli", "dns", "www.old.test", "--zone", "mtl",
         "--nameserver", dnsmasq.nameserver, "--watch", "--timeout", "3600",
         "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=_ignore_sigint if inherited == "ignored" else None,
    )
    killer = threading.Timer(CLI_TIMEOUT, proc.kill)
    killer.start()
    try:
        assert proc.stderr is not None
        assert "www.old.test." in proc.stderr.readline()  # watching
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and out == ""
    assert err == "fsmove: interrupted: the watch stopped (fsmove changed nothing)\n"


def test_a_zone_apex_is_expected_to_hold_the_zones_addresses(tmp_path: Path) -> None:
    """``fsmove dns example.com --zone mtl`` on a zone's apex: a CNAME cannot be set
    there (DNS providers refuse it), so the apex is expected to hold the addresses of
    domain.mtl.clever-cloud.com., with a note on ALIAS/ANAME. Before session 36 fsmove
    asked for the CNAME and a --watch could never end. A name below the apex keeps the
    CNAME; dnsmasq is authoritative for the zone (its apex answers an SOA query)."""
    records = (*BASE_RECORDS, Record("shop.test", "A", "192.0.2.99", 300),
               Record("www.shop.test", "CNAME", PAR, 300),
               Record("done.test", "A", "192.0.2.20", 60))
    try:
        context = start_dnsmasq(tmp_path / "dnsmasq", records,
                                zones=("shop.test", "done.test", "clever-cloud.com"))
        with context as server:
            ns = server.nameserver
            checker = DnsChecker([ns], timeout=2.0)
            assert checker.is_apex("shop.test") is True
            assert checker.is_apex("www.shop.test") is False
            assert checker.is_apex("missing.shop.test") is False
            done = _fsmove("shop.test", "www.shop.test", "--zone", "mtl", "--nameserver", ns)
            assert done.returncode == 4, done.stdout + done.stderr
            out = done.stdout
            assert "expected: A 192.0.2.20" in out, out
            assert "    shop.test. 60 IN A 192.0.2.20" in out, out
            assert "shop.test is the apex of its DNS zone: it cannot hold a CNAME" in out
            assert f"ALIAS/ANAME record to {MTL}." in out
            assert "    shop.test. 60 IN CNAME" not in out
            assert f"    www.shop.test. 60 IN CNAME {MTL}." in out  # below the apex
            # An apex already switched: it matches, and the watch ends at once.
            switched = _fsmove("done.test", "--zone", "mtl", "--nameserver", ns, "--watch",
                               "--watch-timeout", "20", "--interval", "0.2")
            assert switched.returncode == 0, switched.stdout + switched.stderr
            assert "matches:  yes" in switched.stdout
            # Addresses the user gives stand for an apex (they were replaced by the
            # target's, and the advice to give them went round in circles).
            given = _fsmove("shop.test", "--zone", "mtl", "--expect", "A=192.0.2.99",
                            "--nameserver", ns)
            assert given.returncode == 0, given.stdout + given.stderr
        # The domain's own server answers for its zone only: the target's addresses
        # are REFUSED there. One line that says so (it was "check that it is up").
        with start_dnsmasq(tmp_path / "own", records, zones=("shop.test",)) as own:
            refused = _fsmove("shop.test", "--zone", "mtl", "--nameserver", own.nameserver)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            line = refused.stderr.strip().splitlines()[-1]
            assert line.startswith("fsmove: error: shop.test is the apex of its DNS zone"), line
            assert "ask a resolver that answers for other zones too" in line, line
    except ServerNotInstalled as exc:
        pytest.skip(str(exc))
