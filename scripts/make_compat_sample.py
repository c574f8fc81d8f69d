"""Write a small .lbpg file with the lossless_bpg found on sys.path, for the test that files
written by a release keep decoding (tests/test_compat.py).

Run it with the release itself, not the working tree, e.g. for 0.3.2::

    rm -rf /tmp/lbpg-0.3.2 && mkdir /tmp/lbpg-0.3.2
    git archive eb1c35b lossless_bpg | tar -x -C /tmp/lbpg-0.3.2
    PYTHONPATH=/tmp/lbpg-0.3.2 .venv/bin/python scripts/make_compat_sample.py \\
        ../shared/datasets/train/usc_0000_0.png tests/data/v3_fast_sample

writes ``v3_fast_sample.lbpg`` (a 64x64 crop at (96, 96), Q 30, the default model of that
release) and ``v3_fast_sample.png`` (the crop's pixels), and prints the crop's SHA-256.
``--backend lic --q 40`` wrote ``v5_lic_sample.lbpg`` with 0.4.0's learned lossy layer, ``--q 46``
``v5_lic041_sample.lbpg`` with 0.4.1's, ``v5_lic042_sample.lbpg`` with 0.4.2's, ``v5_lic043_sample.lbpg`` with
0.4.3's (output names without dots: the suffix is replaced). ``--q 51 --model seq1`` (``seq2``,
``seq3``) wrote ``v6_seq1_sample.lbpg`` (...) with 0.6.0's sequential coder; ``--q 51 --model seq2
--metadata`` wrote ``v6_metadata_sample.lbpg`` (the crop with :func:`sample_metadata`) when files
first kept metadata.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image


def sample_metadata() -> tuple:
    """The metadata of the compat sample that carries some: Little CMS's sRGB profile, EXIF
    with orientation 6, XMP, a tEXt and a zTXt chunk, gamma and a time."""
    import struct
    import zlib

    from PIL import ImageCms

    from lossless_bpg import Chunk

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "lossless_bpg compat sample"
    return (
        Chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(profile, 9)),
        Chunk(b"gAMA", struct.pack(">I", 45455)),
        Chunk(b"eXIf", exif.tobytes()[6:]),
        Chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"),
        Chunk(b"tEXt", b"Title\0A 64x64 crop"),
        Chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"kept byte for byte", 9)),
        Chunk(b"tIME", struct.pack(">HBBBBB", 2026, 12, 7, 12, 0, 0)),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image", type=Path)
    p.add_argument("out", type=Path, help="output path without suffix")
    p.add_argument("--y", type=int, default=96)
    p.add_argument("--x", type=int, default=96)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--q", type=int, default=30)
    p.add_argument("--backend", default="hevc", help="lossy layer (releases from 0.4.0: hevc, bpg, lic)")
    p.add_argument("--model", help="residual model by name (releases from 0.6.0: seq1, seq2, seq3, ...)")
    p.add_argument("--metadata", action="store_true", help="keep sample_metadata() in the file (releases that keep "
                                                           "metadata)")
    args = p.parse_args()

    import lossless_bpg

    pixels = np.asarray(Image.open(args.image).convert("RGB"))
    crop = np.ascontiguousarray(pixels[args.y:args.y + args.size, args.x:args.x + args.size])
    extra = {} if args.backend == "hevc" else {"backend": args.backend}  # releases before 0.4 lack it
    if args.model:
        extra["model"] = args.model
    if args.metadata:
        extra["metadata"] = sample_metadata()
    data = lossless_bpg.compress(crop, quality=args.q, **extra)
    assert np.array_equal(lossless_bpg.decompress(data), crop)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".lbpg").write_bytes(data)
    Image.fromarray(crop).save(args.out.with_suffix(".png"), optimize=True)
    print(f"lossless_bpg {lossless_bpg.__version__} from {Path(lossless_bpg.__file__).parent}")
    print(f"{args.out.with_suffix('.lbpg')}: {len(data)} bytes; crop sha256 {hashlib.sha256(crop.tobytes()).hexdigest()}")


if __name__ == "__main__":
    main()
