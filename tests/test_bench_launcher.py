"""benchmarks/launcher.py counts the CPU of a helper process the client leaves behind in
another session (as lftp leaves its ssh children on pseudo-terminals)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parents[1] / "benchmarks" / "launcher.py"

#: burns 0.1 s of its own CPU, then writes how much it used
ORPHAN = (
    "import sys, time\n"
    "while time.process_time() < 0.1:\n"
    "    pass\n"
    "open(sys.argv[1], 'w').write(repr(time.process_time()))\n"
)


def test_cpu_of_an_orphan_in_its_own_session_counts(tmp_path: Path):
    spent = tmp_path / "orphan-cpu"
    client = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {ORPHAN!r}, {str(spent)!r}],"
        " start_new_session=True)\n"
    )
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-S", str(LAUNCHER), str(report_path), sys.executable, "-c", client],
        check=False,
        timeout=120,
    )
    assert done.returncode == 0
    report = json.loads(report_path.read_text())
    assert report["subreaper"] is True
    orphan_cpu = float(spent.read_text())  # written: the orphan ran to its end
    assert report["user"] + report["sys"] >= orphan_cpu
    assert report["user"] + report["sys"] > report["client_user"] + report["client_sys"]


def test_the_first_byte_is_a_copied_files_not_the_probes(tmp_path: Path):
    """fsmove's FTP write probe leaves bytes of its own in the destination root for a
    moment: they are not the copy's first byte. A copied file's bytes count, under its
    temporary name too; an empty file does not."""
    from benchmarks.measure import first_file_with_data
    from fsmove.transfers.tree import probe_scratch_name

    root = tmp_path / "dst"
    (root / "sub").mkdir(parents=True)
    (root / probe_scratch_name()).write_bytes(b"probe")
    (root / (probe_scratch_name() + ".b")).write_bytes(b"probe")
    (root / "sub" / "empty.txt").write_bytes(b"")
    assert not first_file_with_data(root)
    (root / "sub" / ".fsmove.0123456789abcdef.part").write_bytes(b"x")
    assert first_file_with_data(root)
