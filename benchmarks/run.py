"""Run the benchmark: ``python -m benchmarks.run [--quick] [--cells GLOBS]`` from the repo.

``python benchmarks/run.py`` works too. See benchmarks/README.md.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import main

if __name__ == "__main__":
    raise SystemExit(main())
