#!/usr/bin/env bash
# The two commands of the README:
#   bash run.sh demo   set up (a venv, no system package needed) and run `fsmove demo`
#   bash run.sh test   set up (venv + the real servers, as root) and run the whole test suite
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
        FSMOVE_NO_SKIPS=1 exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: bash run.sh demo | bash run.sh test [pytest args]" >&2
        exit 2
        ;;
esac
