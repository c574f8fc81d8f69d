"""x265 settings of the HEVC lossy layer against total file size, on held-out photographs.

Each image is coded at the Q the default encoder picks for it (found once, cached in the
photographs' folder), with `--adapt none` and no Q search, once per setting: the baseline
(preset slow, tune ssim) and each argument as extra x265-params, or as ``preset=NAME``:

    python scripts/make_heldout_photos.py /tmp/heldout
    python scripts/experiments/x265_settings.py /tmp/heldout "rd=6" "ctu=32" "preset=veryslow"

Results: benchmarks/x265_settings.md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lossless_bpg import codec
from lossless_bpg.lossy.hevc import HevcCodec
from lossless_bpg.residual.weights import load_model


def main(folder: Path, settings: list[str]) -> None:
    model = load_model("fast")
    images = [(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in sorted(folder.glob("*.png"))]
    cache = folder / "default_q.json"
    if cache.exists():
        qs = json.loads(cache.read_text())
    else:
        qs = {name: codec.compress(im, model, adapt="none").q for name, im in images}
        cache.write_text(json.dumps(qs))
    sizes: dict[str, dict[str, tuple[int, int]]] = {}
    for setting in ["", *settings]:
        preset, extra = (setting.split("=", 1)[1], "") if setting.startswith("preset=") else ("slow", setting)
        HevcCodec.__init__.__defaults__ = (preset, "ssim", extra)  # what the codec's registry builds
        start = time.perf_counter()
        sizes[setting] = {}
        for name, im in images:
            r = codec.compress(im, model, quality=qs[name], adapt="none", effort=1)
            sizes[setting][name] = (r.lossy_bytes, r.residual_bytes)
        base, this = sizes[""], sizes[setting]
        change = [sum(this[n]) / sum(base[n]) - 1 for n, _ in images]
        total = sum(map(sum, this.values())) / sum(map(sum, base.values())) - 1
        print(f"{setting or 'baseline':32s} total {total:+.3%}  images {min(change):+.2%} .. {max(change):+.2%}  "
              f"lossy bytes {sum(v[0] for v in this.values())}  {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
