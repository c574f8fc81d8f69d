"""One measurement: encode, decode, verify, time and peak memory of one codec on one image."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Self

import numpy as np

from .codecs import CODECS, Encoded


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class PeakRss:
    """Samples this process's resident memory in a background thread (Linux /proc)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak = interval, _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def image_key(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img).tobytes() + str(img.shape).encode()).hexdigest()[:24]


def measure(path: str, codec_name: str) -> dict:
    """Row for ``codec_name`` on the image at ``path``; failures become rows, never raise."""
    from ..imageio import load_rgb

    codec = CODECS[codec_name]
    img = load_rgb(path)
    h, w, _ = img.shape
    row = {
        "image": Path(path).name,
        "image_key": image_key(img),
        "codec": codec.name,
        "settings": codec.settings,
        "width": w,
        "height": h,
        "bytes": None,
        "bpsp": None,
        "encode_s": None,
        "decode_s": None,
        "peak_mb": None,
        "exact": False,
        "error": "",
    }
    try:
        with PeakRss() as mem:
            t0 = time.perf_counter()
            encoded = codec.encode(img)
            t1 = time.perf_counter()
            data, details = (encoded.data, encoded.details) if isinstance(encoded, Encoded) else (encoded, {})
            out = codec.decode(data)
            t2 = time.perf_counter()
        row.update(bytes=len(data), bpsp=8.0 * len(data) / (h * w * 3), encode_s=t1 - t0,
                   decode_s=t2 - t1, peak_mb=round(mem.peak, 1))
        row["exact"] = bool(out.shape == img.shape and np.array_equal(out, img))
        if not row["exact"]:
            row["error"] = "round trip is not exact"
        # Q and the size split as the encoder counted them (for lbpg: every residual stream,
        # escapes included), never re-derived from the file here.
        row.update(details)
    except Exception as exc:  # noqa: BLE001 (a failing codec is a result, not a crash)
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row
