"""A realistic, deterministic sample bucket: what a PHP site's FS Bucket looks like.

Nested upload folders by year and month (photos and their thumbnails), a theme's css, js
and fonts, a page cache, documents with spaces and accents in their names, a few big
backups and videos, an empty file and an empty folder. Contents are pseudo-random bytes
(incompressible, like real photos) drawn from a seeded generator, so the same size and
seed always give the same tree, byte for byte.
"""

from __future__ import annotations

import enum
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
#: Pieces in which file contents are drawn and written (bounds memory).
_WRITE_PIECE = 4 * MiB
DEFAULT_SEED = 2024


class SampleSize(enum.Enum):
    SMALL = "small"
    NORMAL = "normal"


@dataclass(frozen=True)
class _Profile:
    photos: int
    #: Share of photos that also get two thumbnails.
    thumbnail_share: float
    photo_size: tuple[int, int]
    thumbnail_size: tuple[int, int]
    big_photo_share: float
    big_photo_size: tuple[int, int]
    cache_pages: int
    large_files: int
    large_size: tuple[int, int]
    #: Scales the theme files and documents (their sizes are given for a real site).
    fixed_scale: float = 1.0


_PROFILES = {
    SampleSize.NORMAL: _Profile(
        photos=120, thumbnail_share=0.55, photo_size=(80 * KiB, 700 * KiB),
        thumbnail_size=(5 * KiB, 48 * KiB), big_photo_share=0.08,
        big_photo_size=(1 * MiB, 3 * MiB), cache_pages=40, large_files=3,
        large_size=(24 * MiB, 40 * MiB),
    ),
    SampleSize.SMALL: _Profile(
        photos=14, thumbnail_share=0.5, photo_size=(40 * KiB, 200 * KiB),
        thumbnail_size=(5 * KiB, 20 * KiB), big_photo_share=0.0,
        big_photo_size=(1 * MiB, 1 * MiB), cache_pages=6, large_files=1,
        large_size=(1536 * KiB, 2 * MiB), fixed_scale=0.2,
    ),
}

_THEME_FILES = (
    ("themes/atelier/style.css", (20 * KiB, 60 * KiB)),
    ("themes/atelier/css/editor.css", (5 * KiB, 20 * KiB)),
    ("themes/atelier/css/print.css", (5 * KiB, 10 * KiB)),
    ("themes/atelier/js/app.min.js", (80 * KiB, 240 * KiB)),
    ("themes/atelier/js/vendor/jquery-3.7.1.min.js", (87 * KiB, 88 * KiB)),
    ("themes/atelier/fonts/Inter-Regular.woff2", (90 * KiB, 110 * KiB)),
    ("themes/atelier/fonts/Inter-Bold.woff2", (90 * KiB, 110 * KiB)),
    ("themes/atelier/screenshot.png", (300 * KiB, 900 * KiB)),
)

_DOCUMENTS = (
    ("documents/Rapport annuel 2023.pdf", (400 * KiB, 2 * MiB)),
    ("documents/Tarifs été 2024.pdf", (100 * KiB, 600 * KiB)),
    ("documents/contrats/Contrat signé — Müller & Fils.pdf", (100 * KiB, 400 * KiB)),
    ("documents/presse/Communiqué de presse (FR).docx", (30 * KiB, 90 * KiB)),
    ("documents/présentations/Équipe 2024.pptx", (1 * MiB, 3 * MiB)),
    ("uploads/2024/06/photo d'équipe.jpg", (200 * KiB, 900 * KiB)),
    ("uploads/2024/06/写真 東京.jpg", (150 * KiB, 500 * KiB)),
)

_LARGE = (
    "backups/db-2024-06-30.sql.gz",
    "videos/visite de l'atelier.mp4",
    "backups/uploads-2023.tar.gz",
)

_EMPTY_FILE = "cache/.keep"
_EMPTY_DIR = "uploads/2025/01"


@dataclass(frozen=True)
class SampleFile:
    path: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Sample:
    root: Path
    files: tuple[SampleFile, ...]
    #: Every folder, the empty one included (paths relative to the root).
    dirs: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def largest(self) -> SampleFile:
        return max(self.files, key=lambda f: f.size)


def _size(rng: random.Random, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return rng.randint(low, high)


def _time(rng: random.Random, year: int, month: int) -> float:
    day = rng.randint(1, 28)
    moment = datetime(year, month, day, rng.randint(7, 22), rng.randint(0, 59),
                      rng.randint(0, 59), tzinfo=UTC)
    return moment.timestamp()


def plan_sample(size: SampleSize, *, seed: int = DEFAULT_SEED) -> tuple[SampleFile, ...]:
    """The files of the sample (path, size, mtime), without writing anything."""
    p = _PROFILES[size]
    rng = random.Random(f"fsmove-demo-{seed}-{size.value}")
    months = [(2023, m) for m in range(1, 13)] + [(2024, m) for m in range(1, 7)]
    files: list[SampleFile] = []
    for i in range(p.photos):
        year, month = rng.choice(months)
        stem = f"uploads/{year}/{month:02d}/IMG_{4000 + i * 7}"
        when = _time(rng, year, month)
        big = rng.random() < p.big_photo_share
        files.append(SampleFile(f"{stem}.jpg",
                                _size(rng, p.big_photo_size if big else p.photo_size), when))
        if rng.random() < p.thumbnail_share:
            for dims in ("150x150", "300x200"):
                files.append(SampleFile(f"{stem}-{dims}.jpg", _size(rng, p.thumbnail_size),
                                        when + 2))
    for path, bounds in _THEME_FILES + _DOCUMENTS:
        scaled = (int(bounds[0] * p.fixed_scale), int(bounds[1] * p.fixed_scale))
        files.append(SampleFile(path, _size(rng, scaled), _time(rng, 2024, rng.randint(1, 6))))
    for i in range(p.cache_pages):
        files.append(SampleFile(f"cache/pages/{i % 4}/page-{i:03d}.html",
                                _size(rng, (5 * KiB, 40 * KiB)), _time(rng, 2024, 6)))
    for path in _LARGE[: p.large_files]:
        files.append(SampleFile(path, _size(rng, p.large_size), _time(rng, 2024, 6)))
    files.append(SampleFile(_EMPTY_FILE, 0, _time(rng, 2023, 1)))
    return tuple(sorted(files, key=lambda f: f.path))


def _write(path: Path, nbytes: int, rng: random.Random) -> None:
    with open(path, "wb") as out:
        left = nbytes
        while left:
            n = min(left, _WRITE_PIECE)
            out.write(rng.randbytes(n))
            left -= n


def make_sample(root: Path, size: SampleSize, *, seed: int = DEFAULT_SEED) -> Sample:
    """Write the sample under ``root`` (which must be empty or absent)."""
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: the sample needs an empty folder")
    files = plan_sample(size, seed=seed)
    rng = random.Random(f"fsmove-demo-content-{seed}")
    dirs: set[str] = set()
    for path in [f.path for f in files] + [f"{_EMPTY_DIR}/."]:
        parent = os.path.dirname(path)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    for d in sorted(dirs):
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in files:
        target = root / f.path
        _write(target, f.size, rng)
        os.utime(target, (f.mtime, f.mtime))
    return Sample(root=root, files=files, dirs=tuple(sorted(dirs)))
