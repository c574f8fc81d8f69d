"""Make 16 held-out 768x512 test photographs from two Debian wallpaper packages.

Neither Kodak nor the training data: KDE's ColdRipple, ColorfulCups, Grey and Kite (KDE
wallpapers that are not among the training set's `kde` sources) and the 12 photographs of MATE's
`nature` backgrounds (no training source comes from mate-backgrounds). Used to judge encoder
and model changes on whole photographs without tuning on Kodak. Each is scaled (Lanczos) to a
height of 512 from the package's largest copy, then cropped to its middle 768 columns.

    python scripts/make_heldout_photos.py /tmp/heldout     # needs apt-get download (Debian)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PACKAGES = {
    "plasma-workspace-wallpapers": ("usr/share/wallpapers", ["ColdRipple", "ColorfulCups", "Grey", "Kite"]),
    "mate-backgrounds": ("usr/share/backgrounds/mate/nature", None),
}


def largest(paths: list[Path]) -> Path:
    return max(paths, key=lambda p: Image.open(p).size[0] * Image.open(p).size[1])


def crop_768x512(src: Path, dst: Path) -> None:
    im = Image.open(src).convert("RGB")
    w, h = im.size
    im = im.resize((round(w * 512 / h), 512), Image.LANCZOS)
    left = (im.size[0] - 768) // 2
    im.crop((left, 0, left + 768, 512)).save(dst)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for package, (root, names) in PACKAGES.items():
            subprocess.run(["apt-get", "download", package], cwd=work, check=True, capture_output=True)
            deb = next(work.glob(f"{package}_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work / package)], check=True)
            base = work / package / root
            if names:  # KDE: one folder per wallpaper, several sizes of it
                sources = {n: largest(sorted((base / n / "contents" / "images").glob("*.*"))) for n in names}
            else:
                sources = {p.stem: p for p in sorted(base.glob("*.jpg"))}
            for name, src in sources.items():
                crop_768x512(src, out / f"{package.split('-')[0]}_{name}_768x512.png")
    print(f"{len(list(out.glob('*.png')))} photographs in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/heldout"))
