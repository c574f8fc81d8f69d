"""Keep what a GPU window's call sends under the device tool's 64 MiB.

The device tool copies the working tree (tracked files and untracked ones git does not ignore)
plus the paths a call carries, 64 MiB in all; the repository's tracked checkpoints and old
model weights alone are over 100 MB. Before the call, move the large tracked files the run does
not need into the ignored folder .device_stash/ (they stay committed: nothing is lost even if
the session ends before they are moved back); afterwards move them back:

    .venv/bin/python scripts/device_tree.py stash --keep training_runs/lic_cpu/checkpoint.pt
    .venv/bin/python scripts/device_tree.py size --carry data/gpu_bundle   # what the call would send
    ...  run(command=..., carry=[...])
    .venv/bin/python scripts/device_tree.py restore

Kept always: the residual models the default and fast names point to (training starts from
them). `git checkout -- .` also brings stashed files back.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STASH = ROOT / ".device_stash"
LIMIT = 64 << 20
#: Tracked files at least this large are stashed unless kept.
LARGE = 1 << 20


def _git_files(*args: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", *args], cwd=ROOT, check=True, capture_output=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def _always_kept() -> set[Path]:
    sys.path.insert(0, str(ROOT))
    from lossless_bpg.residual.registry import Registry

    registry = Registry()
    return {registry.card(name).card_path.with_suffix(".pt") for name in ("default", "fast")}


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total


def size(carry: list[str]) -> int:
    """Bytes the call would send: tracked files present, untracked ones not ignored, carried paths."""
    tracked = [p for p in _git_files() if p.exists()]
    untracked = _git_files("--others", "--exclude-standard")
    return _size(tracked) + _size(untracked) + _size([ROOT / c for c in carry])


def stash(keep: list[str]) -> list[Path]:
    kept = _always_kept() | {(ROOT / k).resolve() for k in keep}
    moved = []
    for path in _git_files():
        if path.is_file() and path.stat().st_size >= LARGE and path.resolve() not in kept:
            target = STASH / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
            moved.append(path)
    return moved


def restore() -> list[Path]:
    moved = []
    if STASH.exists():
        for stashed in sorted(p for p in STASH.rglob("*") if p.is_file()):
            target = ROOT / stashed.relative_to(STASH)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(stashed, target)
            moved.append(target)
        shutil.rmtree(STASH)
    return moved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("stash", help="move large tracked files the run does not need aside")
    s.add_argument("--keep", nargs="*", default=[], help="tracked files the run needs (besides default and fast)")
    z = sub.add_parser("size", help="what a call would send, against the 64 MiB limit")
    z.add_argument("--carry", nargs="*", default=[])
    sub.add_parser("restore", help="move the stashed files back")
    args = p.parse_args()
    if args.verb == "stash":
        moved = stash(args.keep)
        print(f"stashed {len(moved)} files ({_size([STASH])/2**20:.1f} MiB) in {STASH.relative_to(ROOT)}/")
    elif args.verb == "restore":
        print(f"restored {len(restore())} files")
    if args.verb in ("stash", "size"):
        total = size(getattr(args, "carry", []))
        print(f"a call would send {total / 2**20:.1f} MiB of the {LIMIT / 2**20:.0f} MiB allowed"
              + ("" if total <= LIMIT else ": TOO LARGE"))
        if total > LIMIT:
            sys.exit(1)


if __name__ == "__main__":
    main()
