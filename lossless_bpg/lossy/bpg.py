"""The libbpg command-line tools as a lossy layer: ``bpgenc -q Q -f 444`` / ``bpgdec``.

The tools are those ``make third-party`` builds (third_party/local/bin of the checkout, then the
build cache), else the ones on PATH; see ``lossless_bpg.third_party``. The payload is the .bpg
file as bpgenc writes it. Colour conversion is libbpg's own, which is deterministic in bpgdec.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError
from ..third_party import find_program, how_to_build
from .base import LossyCodec


class BpgCodec(LossyCodec):
    name = "bpg"
    backend_id = 2
    q_min = 0
    q_max = 51

    def __init__(self) -> None:
        found = {t: find_program(t) for t in ("bpgenc", "bpgdec")}
        missing = [t for t, path in found.items() if path is None]
        if missing:
            raise BackendUnavailableError(
                f"lossy backend 'bpg' needs libbpg: {how_to_build(missing)}; or use the built-in "
                f"backend 'hevc'"
            )
        self.bpgenc, self.bpgdec = str(found["bpgenc"]), str(found["bpgdec"])

    def version(self) -> str:
        proc = subprocess.run([self.bpgenc, "-h"], capture_output=True, check=False)
        lines = (proc.stdout + proc.stderr).decode(errors="replace").splitlines()
        return lines[0].strip() if lines else "bpgenc"

    @staticmethod
    def _run(cmd: list[str]) -> None:
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()[-500:]
            raise ValueError(f"{Path(cmd[0]).name} exited with status {proc.returncode}: {err}")

    def encode(self, img: np.ndarray, q: int) -> bytes:
        from PIL import Image

        self.check_q(q)
        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "in.png", Path(d) / "out.bpg"
            Image.fromarray(img, "RGB").save(src, compress_level=1)
            self._run([self.bpgenc, "-q", str(q), "-f", "444", "-o", str(dst), str(src)])
            return dst.read_bytes()

    def decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        from PIL import Image

        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "in.bpg", Path(d) / "out.png"
            src.write_bytes(data)
            self._run([self.bpgdec, "-o", str(dst), str(src)])
            with Image.open(dst) as im:
                if im.mode != "RGB":
                    raise ValueError(f"bpgdec produced a {im.mode} image, expected 8-bit RGB")
                if size is not None and (im.height, im.width) != size:
                    raise ValueError(f"the BPG layer holds a {im.width}x{im.height} picture, "
                                     f"expected {size[1]}x{size[0]}")
                return np.asarray(im)
