"""Seeded benchmark corpora, built once and cached, each with a manifest of digests.

* ``small``: many files of 1 KiB to 256 KiB (log-uniform sizes) in nested folders.
* ``large``: a few big files.
* ``real``: a copy of a real tree, the Python standard library of this machine's Debian
  ``python3.11`` package (``/usr/lib/python3.11`` without caches, site packages and the
  test suite): text and binary files, empty files, zero-to-hundreds-of-KiB sizes.
* ``scale``: very many tiny files (the 100,000-file cells).
* ``million``: the same kind of files, 1,000,000 of them (20,000 with ``--quick``); built
  only when a ``million-*`` cell is selected (about 1-2 minutes, ~4.5 GB of disk with
  one 4 KiB block per file, and as much again for a destination).
* ``resume``: one big file for the kill-and-resume cell.

Content comes from ``random.Random(seed)``: the same spec gives the same bytes on every
machine. A corpus is rebuilt when its spec changes (the spec is stored beside it).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import xxhash

SEED = 20240611
REAL_TREE_SOURCE = Path("/usr/lib/python3.11")
_REAL_TREE_SKIP = {"__pycache__", "site-packages", "dist-packages", "test", "idlelib"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    kind: str  # "random-small" | "random-large" | "real-tree"
    files: int
    min_size: int = 0
    max_size: int = 0
    files_per_dir: int = 25
    #: real-tree only: keep one file out of ``sample_every`` (sorted by path).
    sample_every: int = 1


@dataclass(frozen=True, slots=True)  # slots: a million of them are held at once
class ManifestEntry:
    path: str  # relative, "/"-separated
    size: int
    digest: str  # xxh3-128 hex of the whole file


@dataclass(frozen=True)
class Corpus:
    spec: CorpusSpec
    root: Path
    entries: tuple[ManifestEntry, ...]

    @property
    def file_count(self) -> int:
        return len(self.entries)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)


def full_specs() -> dict[str, CorpusSpec]:
    return {
        "small": CorpusSpec("small", "random-small", 2000, 1024, 256 * 1024),
        "large": CorpusSpec("large", "random-large", 2, 512 << 20, 512 << 20),
        "real": CorpusSpec("real", "real-tree", 0, sample_every=2),
        # between the two: files of one to several blocks, many at once (a site's media)
        "medium": CorpusSpec("medium", "random-small", 48, 1 << 20, 64 << 20, files_per_dir=8),
        # one file per folder, ~2,200 folders up to four levels deep: the walk's cost
        "deep": CorpusSpec("deep", "random-small", 2000, 64, 64 * 1024, files_per_dir=1),
        "flat": CorpusSpec("flat", "random-small", 5000, 1, 4096, files_per_dir=5000),
        "scale": CorpusSpec("scale", "random-small", 100_000, 64, 2048, files_per_dir=100),
        "resume": CorpusSpec("resume", "random-large", 1, 1 << 30, 1 << 30),
        "million": million_spec(1_000_000),
    }


def quick_specs() -> dict[str, CorpusSpec]:
    return {
        "small": CorpusSpec("small", "random-small", 200, 1024, 256 * 1024),
        "large": CorpusSpec("large", "random-large", 2, 32 << 20, 32 << 20),
        "real": CorpusSpec("real", "real-tree", 0, sample_every=8),
        "medium": CorpusSpec("medium", "random-small", 12, 1 << 20, 8 << 20, files_per_dir=8),
        "deep": CorpusSpec("deep", "random-small", 200, 64, 64 * 1024, files_per_dir=1),
        "flat": CorpusSpec("flat", "random-small", 500, 1, 4096, files_per_dir=500),
        "scale": CorpusSpec("scale", "random-small", 5_000, 64, 2048, files_per_dir=100),
        "resume": CorpusSpec("resume", "random-large", 1, 128 << 20, 128 << 20),
        "million": million_spec(20_000),
    }


def million_spec(files: int) -> CorpusSpec:
    """The million-file corpus (``files`` of them): the scale corpus's kind of files."""
    return CorpusSpec("million", "random-small", files, 64, 2048, files_per_dir=100)


def hash_file(path: Path) -> str:
    with path.open("rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size < _CHUNK:  # one read: no 4 MiB buffer per tiny file
            return xxhash.xxh3_128_hexdigest(f.readall())
    return _hash_stream(path)


def _hash_stream(path: Path) -> str:
    h = xxhash.xxh3_128()
    buf = bytearray(_CHUNK * 4)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _nested_dir(index: int, files_per_dir: int) -> str:
    """Folder of file ``index``: up to three levels, ``d07/d03/d01`` style."""
    d = index // files_per_dir
    parts = [f"d{d % 10:02d}"]
    d //= 10
    while d:
        parts.append(f"d{d % 10:02d}")
        d //= 10
    return "/".join(reversed(parts))


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    if low >= high:
        return low
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _write_random(path: Path, size: int, rng: random.Random) -> str:
    h = xxhash.xxh3_128()
    with path.open("wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, _CHUNK))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def _write_small(path: str, size: int, rng: random.Random) -> str:
    """A file under one chunk: the same bytes as ``_write_random``, in fewer calls."""
    data = rng.randbytes(size) if size else b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return xxhash.xxh3_128_hexdigest(data)


def _build_random(spec: CorpusSpec, root: Path) -> list[ManifestEntry]:
    rng = random.Random(f"{SEED}:{spec.name}")
    entries = []
    big = spec.kind == "random-large"
    made: str | None = None
    for i in range(spec.files):
        size = spec.max_size if big else _log_uniform(rng, spec.min_size, spec.max_size)
        if big:
            rel = f"big-{i:02d}.bin"
            entries.append(ManifestEntry(rel, size, _write_random(root / rel, size, rng)))
            continue
        folder = _nested_dir(i, spec.files_per_dir)
        if folder != made:
            os.makedirs(root / folder, exist_ok=True)
            made = folder
        rel = f"{folder}/f{i:06d}.dat"
        if size < _CHUNK:
            digest = _write_small(f"{root}/{rel}", size, rng)
        else:
            digest = _write_random(root / rel, size, rng)
        entries.append(ManifestEntry(rel, size, digest))
    return entries


def _build_real(spec: CorpusSpec, root: Path) -> list[ManifestEntry]:
    if not REAL_TREE_SOURCE.is_dir():
        raise FileNotFoundError(
            f"{REAL_TREE_SOURCE} is missing: install Debian's python3.11 (apt-get install "
            "python3.11) for the real-tree corpus, or leave the 'real' cells out (--cells)"
        )
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(REAL_TREE_SOURCE):
        dirnames[:] = sorted(d for d in dirnames if d not in _REAL_TREE_SKIP)
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                found.append(p)
    found.sort()
    entries = []
    for p in found[:: spec.sample_every]:
        rel = p.relative_to(REAL_TREE_SOURCE).as_posix()
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest)
        entries.append(ManifestEntry(rel, dest.stat().st_size, hash_file(dest)))
    return entries


def ensure_corpus(spec: CorpusSpec, base: Path) -> Corpus:
    """The corpus ``spec`` under ``base/<name>``, built now unless cached and unchanged."""
    root = base / spec.name
    manifest_path = base / f"{spec.name}.manifest.json"
    if manifest_path.exists() and root.is_dir():
        data = json.loads(manifest_path.read_text())
        if data.get("spec") == asdict(spec):
            entries = tuple(ManifestEntry(**e) for e in data["entries"])
            return Corpus(spec, root, entries)
    if root.exists():
        shutil.rmtree(root)
    manifest_path.unlink(missing_ok=True)
    root.mkdir(parents=True)
    if spec.kind == "real-tree":
        built = _build_real(spec, root)
    else:
        built = _build_random(spec, root)
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o755)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"spec": asdict(spec), "entries": [asdict(e) for e in built]}))
    tmp.replace(manifest_path)
    return Corpus(spec, root, tuple(built))
