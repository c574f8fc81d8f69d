"""Decode time per file, in one process on one thread, of folders of .lbpg files (the first
file decoded once before timing); folders may repeat to see the drift:

    python scripts/experiments/decode_times.py OUT_none OUT_auto OUT_none
"""

import statistics
import sys
import time
from pathlib import Path

import torch

from lossless_bpg.codec import decompress
from lossless_bpg.residual import load_model


def main() -> None:
    torch.set_num_threads(1)
    model = load_model()
    folders = [sorted(Path(d).glob("*.lbpg")) for d in sys.argv[1:]]
    decompress(folders[0][0].read_bytes(), model)
    for name, files in zip(sys.argv[1:], folders):
        seconds = []
        for path in files:
            data = path.read_bytes()
            start = time.perf_counter()
            decompress(data, model)
            seconds.append(time.perf_counter() - start)
        print(f"{name}: median {statistics.median(seconds):.2f} s, mean {statistics.mean(seconds):.2f} s, "
              f"max {max(seconds):.2f} s", flush=True)


if __name__ == "__main__":
    main()
