#!/usr/bin/env bash
# The two commands of the README:
#   bash run.sh demo   set up (a venv, no system package needed) and run `fsmove demo`
#   bash run.sh test   set up (venv + the real servers, as root) and run the whole test suite
#                      (first a smoke subset with the lowest allowed dependency versions)
#   bash run.sh smoke-lowest   only that smoke subset
# Both are idempotent; the second is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${FSMOVE_VENV:-.venv}"

setup_python() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install -q -e ".[test]"
}

setup_servers() {
    if [ "$(id -u)" = "0" ]; then
        bash .ci/install-servers.sh
    else
        echo "run.sh: not root: skipping server installation (sudo bash .ci/install-servers.sh)" >&2
    fi
}

# The lowest allowed version of every runtime dependency (pyproject.toml's lower bounds,
# pinned by .ci/lowest-deps.py) in a second venv, and a smoke subset that touches each of
# them: typer (the CLI), rich (the live display), aioftp (its server, and the FTP client's
# parts of it), asyncssh (SFTP, the corked transport, the channel's own data packets:
# fast_send.py / fast_recv.py must still engage), xxhash (every digest), dnspython.
LOWEST_VENV="${FSMOVE_LOWEST_VENV:-.venv-lowest}"
LOWEST_SMOKE=(
    "tests/test_conformance.py::test_copy_into_a_root_that_does_not_exist[local]"
    "tests/test_conformance.py::test_copy_into_a_root_that_does_not_exist[sshd_server]"
    "tests/test_conformance.py::test_copy_into_a_root_that_does_not_exist[aioftp_server]"
    "tests/test_conformance.py::test_copy_into_a_root_that_does_not_exist[proftpd_tls_server]"
    "tests/test_conformance.py::test_read_ranges[sshd_server]"
    "tests/test_sftp_fast_channel.py::test_data_packets_take_the_fast_paths_both_ways_and_every_byte_arrives"
    "tests/test_jobs_and_resume.py::test_resume_replays_the_saved_options_and_prints_the_job_first"
    "tests/test_jobs_and_resume.py::test_status_states_header_percent_and_prune"
    "tests/test_dns.py::test_lookup_reads_cname_a_aaaa_txt_and_ttls"
    "tests/test_dns.py::test_cli_json_is_one_document"
    "tests/test_demo.py::test_demo_runs_to_the_end"
    "tests/faults/test_signals.py::test_copy_interrupted_at_any_moment_exits_130_and_resumes[file_done-15]"
)

smoke_lowest_versions() {
    if [ ! -x "$LOWEST_VENV/bin/python" ]; then
        "$PYTHON" -m venv "$LOWEST_VENV"
    fi
    "$VENV/bin/python" .ci/lowest-deps.py pyproject.toml > "$LOWEST_VENV/lowest.txt"
    "$LOWEST_VENV/bin/python" -m pip install -q -e ".[test]" -c "$LOWEST_VENV/lowest.txt"
    echo "run.sh: smoke tests with the lowest allowed versions:" $(cat "$LOWEST_VENV/lowest.txt")
    FSMOVE_NO_SKIPS=1 "$LOWEST_VENV/bin/python" -m pytest -q -p no:cacheprovider "${LOWEST_SMOKE[@]}"
}

case "${1:-}" in
    demo)
        setup_python
        shift
        exec "$VENV/bin/fsmove" demo "$@"
        ;;
    test)
        setup_python
        setup_servers
        shift
        "$VENV/bin/ruff" check fsmove transfers verify tests benchmarks
        if [ "$#" -eq 0 ]; then  # the whole suite: the lower bounds are part of it
            smoke_lowest_versions
        fi
        # Two workers (pytest-xdist), one per core: most tests wait on servers, relays,
        # rate limits and child processes rather than compute, and every test is
        # independent (free ports, its own folders, servers and XDG state per worker).
        # FSMOVE_TEST_WORKERS=0 runs in this process alone (e.g. with pdb).
        FSMOVE_NO_SKIPS=1 exec "$VENV/bin/python" -m pytest \
            -n "${FSMOVE_TEST_WORKERS:-2}" --dist worksteal "$@"
        ;;
    smoke-lowest)
        setup_python
        smoke_lowest_versions
        ;;
    *)
        echo "usage: bash run.sh demo | bash run.sh test [pytest args] | bash run.sh smoke-lowest" >&2
        exit 2
        ;;
esac
