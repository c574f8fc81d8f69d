"""Decode (and encode) times on a busy machine: ``--threads 1`` against the default, with a
busy loop pinned to one core (as a container's CPU set or a ``taskset`` job leaves it) and
with an unpinned one, and on an idle machine (issue 31, part 2).

    python scripts/busy_machine.py ../shared/datasets/kodak --images 3 [--model parallel]

Each command is the CLI in a fresh process (``decompress`` of files made once beforehand),
run one at a time; the busy loop runs at nice 15 so that it yields to the decoder whenever the
scheduler lets it. Prints a table of seconds per image (median of the images).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOADS = {
    "idle": None,
    "unpinned busy loop": ["nice", "-n", "15", "sh", "-c", "while :; do :; done"],
    "busy loop pinned to core 1": ["nice", "-n", "15", "taskset", "-c", "1", "sh", "-c", "while :; do :; done"],
}


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--model", default="default", help="residual model to compress with (default: the default)")
    args = ap.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs at least two cores")
    cli = [sys.executable, "-m", "lossless_bpg"]
    images = sorted(args.folder.glob("*.png"))[: args.images]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        subprocess.run([*cli, "compress", *map(str, images), "-o", str(out), "--model", args.model, "--quiet"],
                       check=True)
        files = sorted(out.glob("*.lbpg"))
        print("| load | decode, default threads s | decode, --threads 1 s | ratio |\n|---|---:|---:|---:|")
        for load, cmd in LOADS.items():
            busy = subprocess.Popen(cmd, start_new_session=True) if cmd else None
            try:
                times = {}
                for threads in ([], ["--threads", "1"]):
                    times[bool(threads)] = statistics.median(
                        _timed([*cli, "decompress", str(f), "-o", str(out / "png"), "--force", "--quiet", *threads])
                        for f in files)
            finally:
                if busy:
                    os.killpg(busy.pid, signal.SIGKILL)
            print(f"| {load} | {times[False]:.2f} | {times[True]:.2f} | {times[False] / times[True]:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
