"""The libbpg command-line tools as a lossy layer: ``bpgenc -q Q -f 444`` / ``bpgdec``.

Used only when both tools are on PATH; the payload is the .bpg file as bpgenc writes it. Colour
conversion is libbpg's own, which is deterministic in bpgdec.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError
from .base import LossyCodec


class BpgCodec(LossyCodec):
    name = "bpg"
    backend_id = 2
    q_min = 0
    q_max = 51

    def __init__(self) -> None:
        missing = [t for t in ("bpgenc", "bpgdec") if shutil.which(t) is None]
        if missing:
            raise BackendUnavailableError(
                f"lossy backend 'bpg' needs libbpg's {' and '.join(missing)} on PATH; install "
                f"libbpg (https://bellard.org/bpg/) or use the built-in backend 'hevc'"
            )

    def version(self) -> str:
        proc = subprocess.run(["bpgenc", "-h"], capture_output=True)
        lines = (proc.stdout + proc.stderr).decode(errors="replace").splitlines()
        return lines[0].strip() if lines else "bpgenc"

    @staticmethod
    def _run(cmd: list[str]) -> None:
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()[-500:]
            raise ValueError(f"{cmd[0]} exited with status {proc.returncode}: {err}")

    def encode(self, img: np.ndarray, q: int) -> bytes:
        from PIL import Image

        self.check_q(q)
        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "in.png", Path(d) / "out.bpg"
            Image.fromarray(img, "RGB").save(src, compress_level=1)
            self._run(["bpgenc", "-q", str(q), "-f", "444", "-o", str(dst), str(src)])
            return dst.read_bytes()

    def decode(self, data: bytes) -> np.ndarray:
        from PIL import Image

        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "in.bpg", Path(d) / "out.png"
            src.write_bytes(data)
            self._run(["bpgdec", "-o", str(dst), str(src)])
            with Image.open(dst) as im:
                if im.mode != "RGB":
                    raise ValueError(f"bpgdec produced a {im.mode} image, expected 8-bit RGB")
                return np.asarray(im)
