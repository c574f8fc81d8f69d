"""Where the third-party programs (libbpg's bpgenc/bpgdec, FLIF's flif) are found.

``third_party/<package>/build.sh`` builds them from pinned sources into ``third_party/local/bin``
of the checkout and keeps each build in a cache shared by every clone, keyed by the source's
sha256. Lookup order, first hit wins:

1. ``$LBPG_THIRD_PARTY_BIN`` (folders, ``os.pathsep``-separated), for a prefix the user chose;
2. ``third_party/local/bin`` of the checkout this package runs from;
3. the build cache (``$LBPG_THIRD_PARTY_CACHE``, else ``~/.cache/lossless_bpg/third_party``),
   the entry of the pinned sha256;
4. ``PATH``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: package -> (version, sha256 of the release tarball); the build scripts pin the same values
#: (a test checks that they agree).
PINS = {
    "libbpg": ("0.9.8", "9c251a4aa72fbbb0ece6f649ac2a76e0d2765607df556614d6bb151619246e8f"),
    "flif": ("0.4", "486ea70fb38088ab0ce1fc4a43ac271c8a0de52369cc396a1d14f95ba8493de8"),
}
#: program -> the package that builds it
PROGRAMS = {"bpgenc": "libbpg", "bpgdec": "libbpg", "flif": "flif"}

CHECKOUT_PREFIX = Path(__file__).resolve().parents[1] / "third_party" / "local"


def cache_root() -> Path:
    if env := os.environ.get("LBPG_THIRD_PARTY_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lossless_bpg" / "third_party"


def search_dirs(program: str) -> list[Path]:
    """Folders searched for ``program`` before PATH, in order."""
    dirs = [Path(d) for d in os.environ.get("LBPG_THIRD_PARTY_BIN", "").split(os.pathsep) if d]
    dirs.append(CHECKOUT_PREFIX / "bin")
    if program in PROGRAMS:
        dirs.append(cache_root() / PINS[PROGRAMS[program]][1] / "bin")
    return dirs


def find_program(program: str) -> str | None:
    """Full path of ``program``, or None when it is nowhere (see the module docstring)."""
    for d in search_dirs(program):
        path = d / program
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which(program)


def missing_programs(*programs: str) -> list[str]:
    return [p for p in programs if find_program(p) is None]


def how_to_build(programs: list[str]) -> str:
    """One line: what is missing, where it was looked for and the command that builds it."""
    names = ", ".join(programs)
    packages = sorted({PROGRAMS[p] for p in programs if p in PROGRAMS})
    if not packages:
        return f"{names} not on PATH"
    build = " or ".join(f"third_party/{p}/build.sh" for p in packages)
    return (f"{names} not found in third_party/local/bin, the build cache or PATH; build "
            f"{'it' if len(programs) == 1 else 'them'} with `make third-party` ({build})")
